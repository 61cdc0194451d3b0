package netcode

import "errors"

// Errors returned by the store and transactions. Each refusal wraps one of
// these, so callers match them with errors.Is; nothing is stored when a write
// is refused.
var (
	// ErrInvalidPath: a path or prefix breaks a rule of the data model.
	ErrInvalidPath = errors.New("netcode: invalid path")
	// ErrBadLock: a read lock is malformed (not Start < End <= write time,
	// or End older than the write time minus MaxRewind).
	ErrBadLock = errors.New("netcode: malformed read lock")
	// ErrTooOld: the write time is older than now - MaxChangeAge.
	ErrTooOld = errors.New("netcode: write older than MaxChangeAge")
	// ErrTooNew: the write time is later than now + MaxFutureSkew.
	ErrTooNew = errors.New("netcode: write too far in the future")
	// ErrValueTooLarge: a value exceeds Limits.MaxValueSize.
	ErrValueTooLarge = errors.New("netcode: value too large")
	// ErrTooManyLocks: a value carries more than Limits.MaxLocks locks.
	ErrTooManyLocks = errors.New("netcode: too many read locks")
	// ErrTooManyReads: a transaction read more than Limits.MaxReads times.
	ErrTooManyReads = errors.New("netcode: too many reads in one transaction")
	// ErrTooManyWrites: a transaction wrote more than Limits.MaxWrites paths.
	ErrTooManyWrites = errors.New("netcode: too many writes in one transaction")
	// ErrConflict: a different value already exists at the same path and time.
	ErrConflict = errors.New("netcode: conflicting value at the same path and time")
	// ErrStoreFull: the store holds Limits.MaxPaths paths, or a path holds
	// Limits.MaxLivePerPath values that can still change.
	ErrStoreFull = errors.New("netcode: store limit reached")
	// ErrZeroTime: a write time has Nanos <= 0; the zero Time means
	// "before everything" and no write may sort before it.
	ErrZeroTime = errors.New("netcode: non-positive write time")
	// ErrUnknownFunction: a call names a function that is not registered.
	ErrUnknownFunction = errors.New("netcode: unknown function")
	// ErrDuplicateFunction: a function name is registered twice.
	ErrDuplicateFunction = errors.New("netcode: function already registered")
	// ErrFunctionPanic: a function panicked; it is reported as its error.
	ErrFunctionPanic = errors.New("netcode: function panicked")
	// ErrBadConfig: a Config field is out of range.
	ErrBadConfig = errors.New("netcode: bad config")
)

package physics

import "errors"

// Errors returned by World. Each is wrapped with the detail of the failure;
// match them with errors.Is.
var (
	// ErrConfig reports a Config that fails Validate.
	ErrConfig = errors.New("physics: invalid config")
	// ErrPath reports an empty or over-long body path.
	ErrPath = errors.New("physics: invalid path")
	// ErrShape reports a shape with an unknown kind, a non-finite or
	// out-of-range coordinate, a negative radius or an inverted box.
	ErrShape = errors.New("physics: invalid shape")
	// ErrMotion reports a keyframe with a non-finite or out-of-range
	// position, velocity or time, or keyframes not in strictly increasing
	// time order.
	ErrMotion = errors.New("physics: invalid motion")
	// ErrQuery reports a query argument that cannot be answered: a zero or
	// non-finite ray direction, a negative distance, an inverted time range.
	ErrQuery = errors.New("physics: invalid query")
	// ErrTime reports a time outside [MinTime, MaxTime].
	ErrTime = errors.New("physics: time out of range")
	// ErrTooOld reports a query or write at a time before the history window
	// (earlier than the last Advance minus Config.Window): the motion there
	// may already be trimmed, so no exact answer exists.
	ErrTooOld = errors.New("physics: time before the history window")
	// ErrTooManyBodies reports that adding a body would exceed
	// Config.MaxBodies.
	ErrTooManyBodies = errors.New("physics: too many bodies")
	// ErrHistoryFull reports that a body's motion would hold more than
	// Config.MaxKeyframes keyframes. Advance trims history; a caller that
	// sees this writes keyframes faster than the window ages them out.
	ErrHistoryFull = errors.New("physics: motion history full")
	// ErrDuplicate reports the same path twice in one Seed call.
	ErrDuplicate = errors.New("physics: duplicate path")
)

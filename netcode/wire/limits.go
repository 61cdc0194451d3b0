package wire

import "fmt"

// Limits bound everything a peer can make this side allocate or parse. A
// zero field takes its default (see DefaultLimits). Both ends of a
// connection must use the same MaxPaths, because path ids are assigned by
// the encoder and checked by the decoder against it; the other limits only
// need the sender's to be no larger than the receiver's.
type Limits struct {
	MaxFrameBytes int // bytes in one frame
	MaxMessages   int // messages in one frame
	MaxPaths      int // path dictionary entries per direction
	MaxPathBytes  int // bytes in one path or prefix
	MaxBatch      int // items in one Values, Write, ValidStates, PathDefs or CallResult
	MaxValueBytes int // bytes in one value or call argument
	MaxLocks      int // locks on one value, reads in one CallResult
	MaxTextBytes  int // bytes in a name, error text, token, resume token or nonce
	MaxPrefixes   int // prefixes in one Watch or Unwatch
}

// DefaultLimits returns the defaults: a 1 MiB frame, 4096 dictionary
// entries, 1 KiB paths (the data model's bound), 64 KiB values.
func DefaultLimits() Limits {
	return Limits{
		MaxFrameBytes: 1 << 20,
		MaxMessages:   1024,
		MaxPaths:      4096,
		MaxPathBytes:  1024,
		MaxBatch:      4096,
		MaxValueBytes: 64 << 10,
		MaxLocks:      128,
		MaxTextBytes:  4096,
		MaxPrefixes:   256,
	}
}

// Hard ceilings: FlatBuffers offsets are 32-bit signed, and a dictionary
// larger than this would let a limit misconfiguration cost gigabytes.
const (
	maxFrameCeiling = 1 << 30
	maxPathsCeiling = 1 << 20
)

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&l.MaxFrameBytes, d.MaxFrameBytes)
	def(&l.MaxMessages, d.MaxMessages)
	def(&l.MaxPaths, d.MaxPaths)
	def(&l.MaxPathBytes, d.MaxPathBytes)
	def(&l.MaxBatch, d.MaxBatch)
	def(&l.MaxValueBytes, d.MaxValueBytes)
	def(&l.MaxLocks, d.MaxLocks)
	def(&l.MaxTextBytes, d.MaxTextBytes)
	def(&l.MaxPrefixes, d.MaxPrefixes)
	return l
}

// Validate reports a limit that is negative or above its ceiling. Zero
// fields are valid: they mean the default.
func (l Limits) Validate() error {
	l = l.withDefaults()
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{
		{"MaxFrameBytes", l.MaxFrameBytes, maxFrameCeiling},
		{"MaxMessages", l.MaxMessages, maxFrameCeiling},
		{"MaxPaths", l.MaxPaths, maxPathsCeiling},
		{"MaxPathBytes", l.MaxPathBytes, maxFrameCeiling},
		{"MaxBatch", l.MaxBatch, maxFrameCeiling},
		{"MaxValueBytes", l.MaxValueBytes, maxFrameCeiling},
		{"MaxLocks", l.MaxLocks, maxFrameCeiling},
		{"MaxTextBytes", l.MaxTextBytes, maxFrameCeiling},
		{"MaxPrefixes", l.MaxPrefixes, maxFrameCeiling},
	} {
		if f.v < 1 || f.v > f.max {
			return fmt.Errorf("%w: Limits.%s = %d, want 1..%d", ErrInvalid, f.name, f.v, f.max)
		}
	}
	return nil
}

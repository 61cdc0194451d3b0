package netcode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrBadFloats: a value is not a float vector (its length is not a
// multiple of 8 bytes).
var ErrBadFloats = errors.New("netcode: not a float vector")

// AppendFloats appends v to dst as little-endian IEEE 754 float64s, 8
// bytes each: the value format the interpolation and smoothing helpers
// read.
func AppendFloats(dst []byte, v ...float64) []byte {
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	}
	return dst
}

// Floats decodes a value written by AppendFloats. A nil or empty value is
// an empty vector.
func Floats(b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadFloats, len(b))
	}
	v := make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}

// Interpolate finds the samples of history (oldest first, as
// Client.History returns) around the synced time t: within the history,
// a is the latest sample at or before t, b the next one, and alpha in
// [0, 1] is how far t lies from a to b. ok is false only for an empty
// history.
//
// There is no extrapolation. Before the first sample the first two are
// returned with alpha 0, after the last the last two with alpha 1: the
// nearest sample holds. Extrapolating from a remote entity's last samples
// overshoots every stop and turn and then needs a correction of its own;
// the view delay exists so that t normally lies between two samples.
// With one sample, a and b are that sample. When a and b share Nanos,
// alpha is 1.
func Interpolate(history []PathValue, t int64) (a, b PathValue, alpha float64, ok bool) {
	n := len(history)
	switch {
	case n == 0:
		return PathValue{}, PathValue{}, 0, false
	case n == 1:
		return history[0], history[0], 0, true
	case t < history[0].Time.Nanos:
		return history[0], history[1], 0, true
	case t >= history[n-1].Time.Nanos:
		return history[n-2], history[n-1], 1, true
	}
	// Binary search for the first sample after t; 1 <= i <= n-1 here.
	lo, hi := 0, n-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if history[m].Time.Nanos > t {
			hi = m
		} else {
			lo = m + 1
		}
	}
	a, b = history[lo-1], history[lo]
	span := b.Time.Nanos - a.Time.Nanos
	if span <= 0 {
		return a, b, 1, true
	}
	alpha = float64(t-a.Time.Nanos) / float64(span)
	return a, b, min(max(alpha, 0), 1), true
}

// InterpolateFloats interpolates float vectors (AppendFloats values)
// linearly between the samples around t (see Interpolate). Where the
// two samples cannot be blended — one is a deletion, their lengths
// differ — the value steps at b's time: a's value before it, b's from
// it on. ok is false when there is no sample, the value shown is a
// deletion, or it does not decode.
func InterpolateFloats(history []PathValue, t int64) ([]float64, bool) {
	a, b, alpha, ok := Interpolate(history, t)
	if !ok {
		return nil, false
	}
	show := func(v PathValue) ([]float64, bool) {
		if v.Value == nil {
			return nil, false
		}
		f, err := Floats(v.Value)
		return f, err == nil
	}
	if alpha >= 1 {
		return show(b)
	}
	if alpha <= 0 || a.Value == nil || b.Value == nil || len(a.Value) != len(b.Value) {
		return show(a)
	}
	v, err := Floats(a.Value)
	if err != nil {
		return nil, false
	}
	// b has a's length, so it decodes too; read it in place.
	for i := range v {
		vb := math.Float64frombits(binary.LittleEndian.Uint64(b.Value[8*i:]))
		v[i] += (vb - v[i]) * alpha
	}
	return v, true
}

// InterpolateFloats returns the confirmed float vector of path as seen
// ViewDelay behind Now: what to draw for a remote entity. Watch the path
// with WatchHistory so samples are there from the start.
func (c *Client) InterpolateFloats(path string) ([]float64, bool) {
	return InterpolateFloats(c.core.History(path), c.Now()-int64(c.ViewDelay()))
}

// Smoother defaults and bounds.
const (
	// DefaultSmoothEpsilon is the offset, per component, below which an
	// offset is forgotten.
	DefaultSmoothEpsilon = 1e-4
	// DefaultSmoothKeys bounds the keys a Smoother holds offsets for.
	DefaultSmoothKeys = 4096
)

// Smoother hides correction snaps: it keeps a visual offset per key that
// decays exponentially with time constant tau, so a corrected value glides
// to its new place instead of jumping. It is pure (time is an argument)
// and not safe for concurrent use; the game goroutine owns it.
//
// Per frame, for each drawn entity with a float-vector state:
//
//	if corrected { s.Correct(key, before, after) } // the state jumped
//	draw(s.Apply(key, after, now))
type Smoother struct {
	// Epsilon: an offset whose every component is below it (in absolute
	// value) is forgotten. Default DefaultSmoothEpsilon.
	Epsilon float64
	// MaxKeys bounds the offsets held; when full, a new key evicts the
	// smallest offset. Default DefaultSmoothKeys.
	MaxKeys int

	tau     float64 // nanoseconds
	offsets map[string]*offset
}

type offset struct {
	v     []float64
	at    int64 // the time v is as of
	fresh bool  // added to since the last Apply: decay starts at the next Apply
}

// NewSmoother returns a Smoother whose offsets decay with time constant
// tau: after tau a jump is shown at 37 % of its size, after 3·tau at 5 %.
// A tau of zero or less disables smoothing (corrections show at once).
func NewSmoother(tau time.Duration) *Smoother {
	return &Smoother{
		Epsilon: DefaultSmoothEpsilon,
		MaxKeys: DefaultSmoothKeys,
		tau:     float64(tau),
		offsets: make(map[string]*offset),
	}
}

// Correct records that the state of key jumped from shown (the state the
// game was drawing, without offset) to corrected: the jump shown −
// corrected is added to key's offset, so the drawn value does not move
// at this instant. The offset starts decaying at the next Apply. Vectors
// of different lengths, or a length other than the offset's, reset the
// offset instead.
func (s *Smoother) Correct(key string, shown, corrected []float64) {
	if s.tau <= 0 {
		return
	}
	o := s.offsets[key]
	if len(shown) != len(corrected) {
		delete(s.offsets, key)
		return
	}
	if o == nil {
		if len(s.offsets) >= max(s.MaxKeys, 1) {
			s.evictSmallest()
		}
		o = &offset{v: make([]float64, len(shown))}
		s.offsets[key] = o
	} else if len(o.v) != len(shown) {
		o.v = make([]float64, len(shown))
	}
	for i := range shown {
		o.v[i] += shown[i] - corrected[i]
	}
	o.fresh = true
}

// Apply returns actual plus key's offset decayed to now (synced
// nanoseconds; a time before the previous Apply counts as no time). The
// result is a new slice. An offset that decayed below Epsilon is
// forgotten.
func (s *Smoother) Apply(key string, actual []float64, now int64) []float64 {
	out := append([]float64(nil), actual...)
	o := s.offsets[key]
	if o == nil {
		return out
	}
	if len(o.v) != len(actual) {
		delete(s.offsets, key)
		return out
	}
	if o.fresh {
		o.at, o.fresh = now, false
	}
	f := 1.0
	if dt := now - o.at; dt > 0 {
		f = math.Exp(-float64(dt) / s.tau)
		o.at = now
	}
	small := true
	for i := range o.v {
		o.v[i] *= f
		out[i] += o.v[i]
		if math.Abs(o.v[i]) >= s.Epsilon {
			small = false
		}
	}
	if small {
		delete(s.offsets, key)
	}
	return out
}

// Offset returns key's current offset (as of the last Apply or Correct),
// nil when none.
func (s *Smoother) Offset(key string) []float64 {
	if o := s.offsets[key]; o != nil {
		return append([]float64(nil), o.v...)
	}
	return nil
}

// Forget drops key's offset (the entity is gone).
func (s *Smoother) Forget(key string) { delete(s.offsets, key) }

// Len returns how many keys hold an offset.
func (s *Smoother) Len() int { return len(s.offsets) }

func (s *Smoother) evictSmallest() {
	var victim string
	best := math.Inf(1)
	for k, o := range s.offsets {
		m := 0.0
		for _, x := range o.v {
			m = max(m, math.Abs(x))
		}
		if m < best || (m == best && k < victim) {
			victim, best = k, m
		}
	}
	delete(s.offsets, victim)
}

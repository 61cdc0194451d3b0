package netcode

import "encoding/binary"

// Digest is a 64-bit digest of what an authority's result for this outcome
// tells its caller: each write in order (its path, time, flags without
// FlagPredicted, whether its value is nil, and the value's bytes), then
// each read lock in order (its path, Start and End). Lengths are included,
// so no two different sequences of fields run together into the same
// bytes. It is never 0, which the wire keeps for "no digest".
//
// A client sends its prediction's digest with the call (wire.Call.Digest);
// an authority whose run has the same digest, its outputs valid, answers
// with a matched result instead of the outputs and reads, and the client
// takes its prediction as the authority's outcome. A different outcome
// goes unnoticed only if its 64-bit digest is the same: for honest peers
// about one chance in 2^64 per call; a client that crafts a collision (the
// digest is not cryptographic) misleads only itself.
func (o *Outcome) Digest() uint64 {
	h := digest(digestSeed)
	h = h.uint(uint64(len(o.Writes)))
	for i := range o.Writes {
		w := &o.Writes[i]
		h = h.str(w.Path).time(w.Time).uint(uint64(w.Flags &^ FlagPredicted))
		if w.Value == nil {
			h = h.uint(0)
		} else {
			h = h.uint(1).bytes(w.Value)
		}
	}
	h = h.uint(uint64(len(o.Locks)))
	for i := range o.Locks {
		l := &o.Locks[i]
		h = h.str(l.Path).time(l.Start).time(l.End)
	}
	if d := h.final(); d != 0 {
		return d
	}
	return 1
}

// digest is the state of a 64-bit hash that takes its input 8 bytes at a
// time: each word is xored in, then the state is multiplied by an odd
// constant and its high half folded into the low one (each step is a
// bijection of the state, so two inputs that differ in one word differ
// after it); Digest ends with a finalizer that spreads every bit.
type digest uint64

const (
	digestSeed = 0x9e3779b97f4a7c15
	digestMul  = 0xbf58476d1ce4e5b9
)

func (h digest) uint(v uint64) digest {
	h = (h ^ digest(v)) * digestMul
	return h ^ h>>31
}

func (h digest) time(t Time) digest {
	return h.uint(uint64(t.Nanos)).uint(uint64(t.Version)<<32 | uint64(t.Creator))
}

func (h digest) str(s string) digest {
	h = h.uint(uint64(len(s)))
	for len(s) >= 8 {
		h = h.uint(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
		s = s[8:]
	}
	var w uint64
	for i := 0; i < len(s); i++ {
		w |= uint64(s[i]) << (8 * i)
	}
	return h.uint(w)
}

func (h digest) bytes(b []byte) digest {
	h = h.uint(uint64(len(b)))
	for len(b) >= 8 {
		h = h.uint(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	var w uint64
	for i, c := range b {
		w |= uint64(c) << (8 * i)
	}
	return h.uint(w)
}

// final spreads every bit of the state over the result (the MurmurHash3
// finalizer's constants).
func (h digest) final() uint64 {
	x := uint64(h)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

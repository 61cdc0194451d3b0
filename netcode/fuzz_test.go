package netcode

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// refValidPath is the path rule written the plain way, for differential
// fuzzing of ValidatePath.
func refValidPath(p string) bool {
	if p == "" || len(p) > MaxPathLen {
		return false
	}
	segs := strings.Split(p, "/")
	if len(segs) > MaxPathSegments {
		return false
	}
	for _, s := range segs {
		if s == "" {
			return false
		}
	}
	return true
}

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"players/42/pos", "", "/a", "a/", "a//b", strings.Repeat("a/", 40), "ü/ß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := ValidatePath(p)
		if (err == nil) != refValidPath(p) {
			t.Fatalf("ValidatePath(%q) = %v, reference says valid=%v", p, err, refValidPath(p))
		}
		perr := ValidatePrefix(p + "/")
		if (perr == nil) != refValidPath(p) && len(p)+1 <= MaxPathLen {
			t.Fatalf("ValidatePrefix(%q) = %v, reference says valid=%v", p+"/", perr, refValidPath(p))
		}
		if err == nil && !HasPrefix(p, p) {
			t.Fatalf("HasPrefix(%q, itself) = false", p)
		}
	})
}

var traceFuzz = false

// byteReader hands out bytes of fuzz input, zero when exhausted.
type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) next() byte {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *byteReader) done() bool { return r.i >= len(r.b) }

// FuzzInsertSequence drives a store with arbitrary sequences of inserts
// (well-formed or not, with any locks) and finality ticks. It must never
// panic, and the store's invariants must hold after every step. While no
// tick has passed, the states must also equal the reference evaluator's for
// the values accepted so far.
func FuzzInsertSequence(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 8; i++ {
		seed := make([]byte, 64+r.IntN(256))
		for j := range seed {
			seed[j] = byte(r.Uint32())
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		cfg.Limits.MaxLivePerPath = 64
		cfg.Limits.MaxPaths = 16
		s := mustStore(t, cfg)
		in := &byteReader{b: data}
		paths := []string{"a", "b", "c", "d/e", "d/f"}
		now := int64(10 * time.Second)
		var accepted []PathValue
		ticked := false
		timeAt := func() Time {
			return Time{
				Nanos:   now - int64(in.next())*int64(5*time.Millisecond) + int64(in.next()%8)*int64(time.Millisecond),
				Version: uint32(in.next() % 2),
				Creator: uint32(in.next() % 4),
			}
		}
		for step := 0; !in.done() && step < 200; step++ {
			op := in.next()
			if op%8 == 0 {
				now += int64(in.next()) * int64(10*time.Millisecond)
				s.Tick(now)
				if traceFuzz {
					fmt.Printf("tick now=%d horizon=%d\n", now, s.horizon)
				}
				ticked = true
			} else {
				v := PathValue{Path: paths[int(in.next())%len(paths)], Time: timeAt()}
				if in.next()%5 != 0 {
					v.Value = []byte{in.next()}
				}
				if in.next()%9 == 0 {
					v.Flags = FlagEvent
				}
				for n := in.next() % 4; n > 0; n-- {
					l := ReadLock{Path: paths[int(in.next())%len(paths)], End: v.Time}
					if x := in.next(); x%3 != 0 {
						l.End = Time{Nanos: v.Time.Nanos - int64(x)*int64(time.Millisecond)}
					}
					if x := in.next(); x%4 != 0 {
						l.Start = timeAt()
					}
					v.Locks = append(v.Locks, l)
				}
				_, err := s.Insert(now, v)
				if traceFuzz {
					fmt.Printf("insert now=%d %s@%v flags=%d locks=%v -> %v\n", now, v.Path, v.Time, v.Flags, v.Locks, err)
				}
				if err == nil {
					dup := false
					for i := range accepted {
						if keyOf(&accepted[i]) == keyOf(&v) {
							dup = true
						}
					}
					if !dup {
						accepted = append(accepted, v)
					}
				}
			}
			if err := s.Verify(); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if !ticked {
				got, err := storeStates(s, accepted)
				if err != nil {
					t.Fatal(err)
				}
				if d := diffStates(referenceStates(accepted), got); d != "" {
					t.Fatalf("step %d: states differ from the reference:\n%s", step, d)
				}
			}
		}
		st := s.Stats()
		if st.LiveValues < 0 || st.FinalValues < 0 || st.Ghosts < 0 {
			t.Fatalf("negative counters: %+v", st)
		}
		_ = fmt.Sprint(st)
	})
}

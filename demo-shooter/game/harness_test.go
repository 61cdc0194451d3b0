package game

import (
	"math"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// t0 is where test games start: far enough from zero for every rewind.
const t0 = int64(10 * time.Second)

const ms = int64(time.Millisecond)

// harness runs the game's functions against one store, the way the
// authority does (Registry.Run, then Store.Commit), with no network.
type harness struct {
	t      testing.TB
	s      *netcode.Store
	cfg    netcode.Config
	reg    *netcode.Registry
	seq    map[uint32]uint64
	shots  []Shot // emitted shot events, in commit order
	trace  []byte // every committed write, for determinism checks
	ticked int64
}

func newHarness(t testing.TB) *harness {
	s, err := netcode.NewStore(netcode.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, s: s, cfg: s.Config(), reg: Registry(), seq: map[uint32]uint64{}}
}

// call runs name for caller at write time at, with the caller's view
// delay, and commits it at at.
func (h *harness) call(caller uint32, at int64, delay time.Duration, name string, args []byte) error {
	h.t.Helper()
	h.seq[caller]++
	c := netcode.Call{ID: netcode.CallID{Creator: caller, Seq: h.seq[caller]}, Name: name, Args: args, Time: at, ViewDelay: delay}
	out := h.reg.Run(h.s, &h.cfg, c, 0)
	if out.Err != nil {
		return out.Err
	}
	for _, w := range out.Writes {
		h.trace = append(append(append(h.trace, w.Path...), w.Value...), byte(w.Flags))
		if w.Path == ShotEvents {
			s, err := DecodeShot(w.Value)
			if err != nil {
				h.t.Fatalf("shot event: %v", err)
			}
			h.shots = append(h.shots, s)
		}
	}
	if _, err := h.s.Commit(at, &out); err != nil {
		h.t.Fatalf("commit %s at %d: %v", name, at, err)
	}
	if at-h.ticked > 100*ms {
		h.s.Tick(at)
		h.ticked = at
	}
	return nil
}

func (h *harness) must(caller uint32, at int64, name string, args []byte) {
	h.t.Helper()
	if err := h.call(caller, at, 0, name, args); err != nil {
		h.t.Fatalf("%s by %d at %d: %v", name, caller, at, err)
	}
}

// place puts player id at (x, y) px, alive and still, written at at.
func (h *harness) place(id uint32, at int64, x, y float64) {
	h.t.Helper()
	m := Motion{T: at, X: int64(math.Round(x * MilliPx)), Y: int64(math.Round(y * MilliPx)), Stop: Never}
	for _, v := range []struct {
		f string
		b []byte
	}{
		{FieldName, []byte("p")},
		{FieldMotion, m.Append(nil)},
		{FieldLife, Life{Health: MaxHealth}.append(nil)},
		{FieldScore, Score{}.append(nil)},
	} {
		pv := netcode.PathValue{Path: PlayerPath(id, v.f), Time: netcode.Time{Nanos: at, Creator: id}, Value: v.b}
		if _, err := h.s.Insert(at, pv); err != nil {
			h.t.Fatal(err)
		}
	}
}

// View over the store.
func (h *harness) Read(path string) ([]byte, bool) { return h.ReadAt(path, math.MaxInt64) }
func (h *harness) ReadAt(path string, t int64) ([]byte, bool) {
	v, ok := h.s.Latest(path, netcode.Time{Nanos: t})
	if !ok || v.Value == nil {
		return nil, false
	}
	return v.Value, true
}
func (h *harness) Children(prefix string) []string { return h.s.Children(prefix) }

func (h *harness) motion(id uint32) Motion {
	h.t.Helper()
	b, ok := h.Read(PlayerPath(id, FieldMotion))
	if !ok {
		h.t.Fatalf("player %d has no motion", id)
	}
	m, err := DecodeMotion(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func (h *harness) life(id uint32) Life {
	h.t.Helper()
	b, _ := h.Read(PlayerPath(id, FieldLife))
	l, err := decodeLife(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

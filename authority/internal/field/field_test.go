package field

import (
	"math"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

func TestPosRoundTripAndMotion(t *testing.T) {
	p := Pos{Ms: 1000, X: 100.25, Y: 16000, VX: 200, VY: -400}
	q, err := DecodePos(p.Encode())
	if err != nil || q != p {
		t.Fatalf("round trip: %+v, %v; want %+v", q, err, p)
	}
	x, y := q.At(1500 * int64(time.Millisecond))
	if x != 200.25 || y != 15800 {
		t.Fatalf("At +0.5 s = (%v, %v), want (200.25, 15800)", x, y)
	}
	x, y = q.At(1_000_000 * int64(time.Millisecond))
	if x != MaxCoord || y != 0 {
		t.Fatalf("At far later = (%v, %v): not held inside the field", x, y)
	}
	if _, err := DecodePos(make([]byte, 5)); err == nil {
		t.Fatal("a 5-byte pos decoded")
	}
}

func TestHits(t *testing.T) {
	tests := []struct {
		angle, tx, ty float64
		want          bool
	}{
		{0, 100, 0, true},
		{0, 100, HitRadius - 1, true},
		{0, 100, HitRadius + 1, false},
		{math.Pi, 100, 0, false},  // behind
		{0, Range + 10, 0, false}, // out of range
		{math.Pi / 2, 0, 300, true},
	}
	for _, tt := range tests {
		if got := Hits(0, 0, tt.angle, tt.tx, tt.ty); got != tt.want {
			t.Errorf("Hits(angle %v, at %v,%v) = %v, want %v", tt.angle, tt.tx, tt.ty, got, tt.want)
		}
	}
}

// view is a store-less View over fixed values, each valid since time 0.
type view map[string][]byte

func (v view) Latest(path string, before netcode.Time) (netcode.PathValue, bool) {
	b, ok := v[path]
	if !ok {
		return netcode.PathValue{}, false
	}
	return netcode.PathValue{Path: path, Time: netcode.Time{Nanos: 1}, Value: b}, true
}

func (v view) Children(string) []string { return nil }

func run(t *testing.T, reg *netcode.Registry, v view, name string, caller uint32, at int64, args []byte) netcode.Outcome {
	t.Helper()
	cfg := netcode.DefaultConfig()
	out := reg.Run(v, &cfg, netcode.Call{ID: netcode.CallID{Creator: caller, Seq: 1}, Name: name, Args: args, Time: at, ViewDelay: 100 * time.Millisecond}, 0)
	if out.Err != nil {
		t.Fatalf("%s: %v", name, out.Err)
	}
	return out
}

func TestMoveAndShoot(t *testing.T) {
	reg := Registry()
	if len(reg.Layers()) != 1 {
		t.Fatal("no spatial layer")
	}
	ms := int64(time.Millisecond)
	// A first move places the player; one that keeps the velocity writes
	// nothing; one that changes it writes where the player is now.
	out := run(t, reg, view{}, FuncMove, 1, 1000*ms, MoveArgs(100, 0, 50, 60))
	if len(out.Writes) != 1 || out.Writes[0].Path != PosPath(1) {
		t.Fatalf("first move wrote %v", out.Writes)
	}
	v := view{PosPath(1): out.Writes[0].Value}
	if out := run(t, reg, v, FuncMove, 1, 1500*ms, MoveArgs(100, 0, 0, 0)); len(out.Writes) != 0 {
		t.Fatalf("a move keeping the velocity wrote %v", out.Writes)
	}
	out = run(t, reg, v, FuncMove, 1, 1500*ms, MoveArgs(0, 50, 0, 0))
	p, _ := DecodePos(out.Writes[0].Value)
	if p.X != 100 || p.Y != 60 || p.VY != 50 {
		t.Fatalf("turning move wrote %+v, want (100, 60) heading (0, 50)", p)
	}
	// Player 2 stands at (300, 60) as of the view time: a shot along x hits.
	v[PosPath(1)] = out.Writes[0].Value
	v[PosPath(2)] = Pos{Ms: 1000, X: 300, Y: 60}.Encode()
	out = run(t, reg, v, FuncShoot, 1, 1500*ms, ShootArgs(2, 0))
	s, err := DecodeShot(out.Writes[0].Value)
	if err != nil || !s.Hit || s.Target != 2 || s.Seq != 1 {
		t.Fatalf("shot %+v, %v; want a hit on 2", s, err)
	}
	out = run(t, reg, v, FuncShoot, 1, 1500*ms, ShootArgs(2, math.Pi/2))
	if s, _ := DecodeShot(out.Writes[0].Value); s.Hit {
		t.Fatal("a shot at a right angle hit")
	}
}

package game

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/physics"
)

func TestMotionAt(t *testing.T) {
	diag := int64(Speed*MilliPx) * DiagonalPermille / 1000
	for _, tc := range []struct {
		name   string
		m      Motion
		at     int64
		wx, wy int64
	}{
		{"still", Motion{T: t0, X: 5, Y: 7, Stop: Never}, t0 + 9e9, 5, 7},
		{"before start", Motion{T: t0, X: 5, Y: 7, VX: 1000, Stop: Never}, t0 - 1e9, 5, 7},
		{"right half a second", Motion{T: t0, VX: Speed * MilliPx, Stop: Never}, t0 + 5e8, 110_000, 0},
		{"diagonal", func() Motion {
			m := Motion{T: t0, Stop: Never}
			m.VX, m.VY = (KeyUp | KeyRight).Velocity()
			return m
		}(), t0 + 25e7, diag / 4, -diag / 4},
		{"stopped", Motion{T: t0, VX: -1000, Stop: t0 + 2e9}, t0 + 9e9, -2000, 0},
		{"carried drift ends", Motion{T: t0, Drifts: []Drift{{End: t0 + 1e9, DX: 3000, DY: -500}}, Stop: Never}, t0 + 5e9, 3000, -500},
		{"inside drift", Motion{T: t0, VX: 1000, Drifts: []Drift{{End: t0 + 2e9, DX: 3000}}, Stop: Never}, t0 + 5e8, 2000, 0},
		{"drifts add", Motion{T: t0, Drifts: []Drift{{End: t0 + 2e9, DX: 3000}, {End: t0 + 1e9, DX: -1000, DY: 7}}, Stop: Never}, t0 + 5e9, 5000, 7},
		{"drift outlasts the stop", Motion{T: t0, VX: 1000, Stop: t0 + 1e9, Drifts: []Drift{{End: t0 + 3e9, DY: 2000}}}, t0 + 5e9, 1000, 6000},
		{"truncates towards zero", Motion{T: t0, VX: -1, Stop: Never}, t0 + 5e8, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if x, y := tc.m.At(tc.at); x != tc.wx || y != tc.wy {
				t.Fatalf("At = (%d, %d), want (%d, %d)", x, y, tc.wx, tc.wy)
			}
			got, err := DecodeMotion(tc.m.Append(nil))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.m, got); d != "" {
				t.Fatalf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Motion{T: t0, Stop: Never}.Append(nil)
	bad := func(f func(b []byte)) []byte { b := append([]byte(nil), good...); f(b); return b }
	for _, tc := range []struct {
		name string
		err  error
		fn   func() error
	}{
		{"motion short", ErrBadValue, func() error { _, err := DecodeMotion(good[1:]); return err }},
		{"motion keys", ErrBadValue, func() error { _, err := DecodeMotion(bad(func(b []byte) { b[40] = 0x80 })); return err }},
		{"motion speed", ErrBadValue, func() error { _, err := DecodeMotion(bad(func(b []byte) { b[31] = 0x7f })); return err }},
		{"motion drift count", ErrBadValue, func() error { _, err := DecodeMotion(bad(func(b []byte) { b[motionHead-1] = 1 })); return err }},
		{"motion drift before T", ErrBadValue, func() error {
			_, err := DecodeMotion(Motion{T: t0, Stop: Never, Drifts: []Drift{{End: t0}}}.Append(nil))
			return err
		}},
		{"motion too many drifts", ErrBadValue, func() error {
			_, err := DecodeMotion(Motion{T: t0, Stop: Never, Drifts: make([]Drift, maxDrifts+1)}.Append(nil))
			return err
		}},
		{"gravity empty", ErrBadValue, func() error { _, err := decodeGravity([]byte{0}); return err }},
		{"gravity count", ErrBadValue, func() error {
			_, err := decodeGravity(append(appendGravity(nil, []Gravity{{Time: 1, Start: 2, End: 3}}), 0))
			return err
		}},
		{"gravity times", ErrBadValue, func() error {
			_, err := decodeGravity(appendGravity(nil, []Gravity{{Time: 5, Start: 4, End: 6}}))
			return err
		}},
		{"gravity centre", ErrBadValue, func() error {
			_, err := decodeGravity(appendGravity(nil, []Gravity{{Center: physics.V(2e6, 0), Time: 1, Start: 2, End: 3}}))
			return err
		}},
		{"shot", ErrBadValue, func() error { _, err := DecodeShot([]byte{1}); return err }},
		{"keys", ErrBadArgs, func() error { _, err := decodeKeys([]byte{0x10}); return err }},
		{"angle NaN", ErrBadArgs, func() error { _, err := decodeAngle(AimArgs(math.NaN())); return err }},
		{"name empty", ErrBadArgs, func() error { _, err := decodeName(nil); return err }},
		{"name not UTF-8", ErrBadArgs, func() error { _, err := decodeName([]byte{0xff}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestArena(t *testing.T) {
	for i, p := range spawns {
		for j, w := range walls {
			if circleHitsBox(p, 2*PlayerRadius, w.Min, w.Max) {
				t.Errorf("spawn %d %v within a diameter of wall %d", i, p, j)
			}
		}
	}
	if !Blocked(physics.V(280, 100), physics.V(280, 260)) || Blocked(physics.V(300, 690), physics.V(900, 690)) {
		t.Fatal("line of sight")
	}
}

// TestMovementExact: key changes at known times give exact positions, the
// same bytes in two independent runs.
func TestMovementExact(t *testing.T) {
	run := func() (*harness, [][]byte) {
		h := newHarness(t)
		h.place(1, t0, 640, 520)
		h.must(1, t0+1e9, FuncSetKeys, SetKeysArgs(KeyRight))
		h.must(1, t0+1e9+250*ms, FuncSetKeys, SetKeysArgs(KeyUp|KeyLeft))
		h.must(1, t0+1e9+500*ms, FuncSetKeys, SetKeysArgs(0))
		var all [][]byte
		for i := 0; i < 3; i++ {
			b, _ := h.ReadAt(PlayerPath(1, FieldMotion), t0+1e9+int64(i)*250*ms+1)
			all = append(all, b)
		}
		return h, all
	}
	h, a := run()
	_, b := run()
	if d := cmp.Diff(a, b); d != "" {
		t.Fatalf("two runs differ:\n%s", d)
	}
	diag := int64(Speed*MilliPx) * DiagonalPermille / 1000
	wantX := int64(640_000) + Speed*MilliPx/4 - diag/4
	wantY := int64(520_000) - diag/4
	m := h.motion(1)
	if x, y := m.At(t0 + 9e9); x != wantX || y != wantY {
		t.Fatalf("final position (%d, %d), want (%d, %d)", x, y, wantX, wantY)
	}
	p, ok := PlayerAt(h, 1, t0+1e9+375*ms)
	if !ok || p.Pos != physics.V(float64(640_000+Speed*MilliPx/4-diag/8)/MilliPx, float64(520_000-diag/8)/MilliPx) {
		t.Fatalf("PlayerAt mid-diagonal: %+v", p.Pos)
	}
}

func TestCollisions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   Keys
		others [][2]float64
		start  [2]float64
		at     time.Duration
		want   [2]float64 // px, within 0.01
	}{
		{"left border", KeyLeft, nil, [2]float64{60, 60}, 2 * time.Second, [2]float64{PlayerRadius, 60}},
		{"cover from above", KeyDown, nil, [2]float64{280, 100}, 2 * time.Second, [2]float64{280, 150 - PlayerRadius}},
		{"free", KeyRight, nil, [2]float64{300, 690}, time.Second, [2]float64{520, 690}},
		{"another player", KeyRight, [][2]float64{{500, 690}}, [2]float64{300, 690}, 2 * time.Second, [2]float64{500 - 2*PlayerRadius, 690}},
		{"slides along the wall it touches", KeyLeft | KeyUp, nil, [2]float64{PlayerRadius, 300}, 100 * time.Millisecond, [2]float64{PlayerRadius, 300 - float64(Speed*DiagonalPermille)/1000/10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.place(1, t0, tc.start[0], tc.start[1])
			for i, o := range tc.others {
				h.place(uint32(2+i), t0, o[0], o[1])
			}
			h.must(1, t0+1e9, FuncSetKeys, SetKeysArgs(tc.keys))
			got := h.motion(1).Pos(t0 + 1e9 + int64(tc.at))
			if math.Abs(got.X-tc.want[0]) > 0.01 || math.Abs(got.Y-tc.want[1]) > 0.01 {
				t.Fatalf("at %v: %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}

// TestLagCompensatedShot: the target moves away after the shooter's view
// time. With the view delay the shot reads the target where the shooter
// saw it and hits; without it, it misses.
func TestLagCompensatedShot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  time.Duration
		target uint32
	}{
		{"with view delay", 300 * time.Millisecond, 2},
		{"without", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.place(1, t0, 300, 690)
			h.place(2, t0, 700, 690)
			h.must(2, t0+1e9, FuncSetKeys, SetKeysArgs(KeyUp))
			w := t0 + 1e9 + 300*ms
			if err := h.call(1, w, tc.delay, FuncShoot, ShootArgs(0)); err != nil {
				t.Fatal(err)
			}
			if len(h.shots) != 1 {
				t.Fatalf("%d shot events", len(h.shots))
			}
			s := h.shots[0]
			if s.Target != tc.target || s.ViewTime != w-int64(tc.delay) {
				t.Fatalf("shot %+v, want target %d", s, tc.target)
			}
			wantHealth := int32(MaxHealth)
			if tc.target != 0 {
				wantHealth -= Damage
				if math.Abs(s.End.X-(700-PlayerRadius)) > 1e-6 {
					t.Fatalf("hit point %v", s.End)
				}
			}
			if l := h.life(2); l.Health != wantHealth {
				t.Fatalf("target health %d, want %d", l.Health, wantHealth)
			}
			last, _ := h.Read(PlayerPath(1, FieldShot))
			if got, _ := DecodeShot(last); got != s {
				t.Fatalf("stored shot %+v, emitted %+v", got, s)
			}
		})
	}
}

func TestMaxRewind(t *testing.T) {
	h := newHarness(t)
	h.place(1, t0, 300, 690)
	w := t0 + 3e9
	if err := h.call(1, w, 5*time.Second, FuncShoot, ShootArgs(0)); err != nil {
		t.Fatal(err)
	}
	if got, want := h.shots[0].ViewTime, w-int64(h.cfg.MaxRewind); got != want {
		t.Fatalf("view time %d, want %d (clamped to MaxRewind)", got, want)
	}
}

func TestWallsBlockShots(t *testing.T) {
	h := newHarness(t)
	h.place(1, t0, 280, 100)
	h.place(2, t0, 280, 260)
	h.must(1, t0+1e9, FuncShoot, ShootArgs(math.Pi/2))
	s := h.shots[0]
	if s.Target != 0 || math.Abs(s.End.Y-150) > 1e-9 {
		t.Fatalf("shot through the wall: %+v", s)
	}
	if h.life(2).Health != MaxHealth {
		t.Fatal("target behind the wall took damage")
	}
}

func TestKillDeadRespawnCooldowns(t *testing.T) {
	h := newHarness(t)
	h.place(1, t0, 300, 690)
	h.place(2, t0, 700, 690)
	at := t0 + 1e9
	if err := h.call(1, at, 0, FuncShoot, ShootArgs(0)); err != nil {
		t.Fatal(err)
	}
	if err := h.call(1, at+int64(ShotCooldown)-1, 0, FuncShoot, ShootArgs(0)); !errors.Is(err, ErrCooldown) {
		t.Fatalf("shot inside the cooldown: %v", err)
	}
	for i := 1; i < MaxHealth/Damage; i++ {
		at += int64(ShotCooldown)
		h.must(1, at, FuncShoot, ShootArgs(0))
	}
	if s := h.shots[len(h.shots)-1]; !s.Killed || s.Target != 2 {
		t.Fatalf("last shot %+v, want a kill", s)
	}
	dead := h.life(2)
	if dead.Alive() || dead.DiedAt != at || !h.motion(2).Dead {
		t.Fatalf("target after the kill: %+v %+v", dead, h.motion(2))
	}
	p, _ := PlayerAt(h, 1, at+1)
	q, _ := PlayerAt(h, 2, at+1)
	if p.Score != (Score{Kills: 1}) || q.Score != (Score{Deaths: 1}) {
		t.Fatalf("scores %+v %+v", p.Score, q.Score)
	}
	for _, f := range []struct {
		name string
		args []byte
		err  error
	}{
		{FuncShoot, ShootArgs(math.Pi), ErrDead},
		{FuncSetKeys, SetKeysArgs(KeyLeft), ErrDead},
		{FuncGravity, GravityArgs(true), ErrDead},
		{FuncRespawn, nil, ErrCooldown},
	} {
		if err := h.call(2, at+ms, 0, f.name, f.args); !errors.Is(err, f.err) {
			t.Fatalf("%s by the dead: %v, want %v", f.name, err, f.err)
		}
	}
	// A dead player is not hit: the shot passes to the wall behind.
	h.must(1, at+int64(ShotCooldown), FuncShoot, ShootArgs(0))
	if s := h.shots[len(h.shots)-1]; s.Target != 0 {
		t.Fatalf("shot hit the dead: %+v", s)
	}
	back := at + int64(RespawnDelay)
	h.must(2, back, FuncRespawn, nil)
	if l := h.life(2); l.Health != MaxHealth || h.motion(2).Dead {
		t.Fatalf("after respawn: %+v", l)
	}
	if err := h.call(2, back+ms, 0, FuncRespawn, nil); !errors.Is(err, ErrAlive) {
		t.Fatalf("respawn while alive: %v", err)
	}
	if err := h.call(9, back+ms, 0, FuncShoot, ShootArgs(0)); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("shot by a stranger: %v", err)
	}
}

// pos returns player id's exact position at t, gravity included.
func (h *harness) pos(id uint32, t int64) physics.Vec2 {
	h.t.Helper()
	p, ok := PlayerAt(h, id, t)
	if !ok {
		h.t.Fatalf("player %d has no motion at %d", id, t)
	}
	return p.Pos
}

func TestGravity(t *testing.T) {
	near := func(a, b physics.Vec2) bool { return a.Sub(b).Len() < 0.01 }
	for _, tc := range []struct {
		name string
		pull bool
		dx   float64 // displacement of the near player after a second of drift
		end  float64 // its x once the field is over
	}{
		{"pull", true, -GravitySpeed, 300 + 2*PlayerRadius}, // stops a diameter from the centre
		{"push", false, GravitySpeed, 500 + 2*GravitySpeed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.place(1, t0, 300, 230)
			h.place(2, t0, 500, 230) // 200 px away
			h.place(3, t0, 900, 230) // 600 px away
			m2, _ := h.Read(PlayerPath(2, FieldMotion))
			m3, _ := h.Read(PlayerPath(3, FieldMotion))
			w := t0 + 1e9
			c := netcode.Call{ID: netcode.CallID{Creator: 1, Seq: 1}, Name: FuncGravity, Args: GravityArgs(tc.pull), Time: w}
			out := h.reg.Run(h.s, &h.cfg, c, 0)
			if out.Err != nil {
				t.Fatal(out.Err)
			}
			// The use writes the caster's record only, and reads no
			// other player's motion: a late key change of theirs cannot
			// invalidate it.
			for _, wr := range out.Writes {
				if wr.Path != PlayerPath(1, FieldGravity) {
					t.Fatalf("gravity wrote %s", wr.Path)
				}
			}
			for _, l := range out.Locks {
				if l.Path != PlayerPath(1, FieldMotion) && strings.HasSuffix(l.Path, "/"+FieldMotion) {
					t.Fatalf("gravity read %s", l.Path)
				}
			}
			if _, err := h.s.Commit(w, &out); err != nil {
				t.Fatal(err)
			}
			h.seq[1]++
			if b, _ := h.Read(PlayerPath(2, FieldMotion)); !bytes.Equal(b, m2) {
				t.Fatal("the victim's motion was written")
			}
			if b, _ := h.Read(PlayerPath(3, FieldMotion)); !bytes.Equal(b, m3) {
				t.Fatal("the far player's motion was written")
			}
			start := w + int64(GravityDelay)
			if p := h.pos(2, start); p != physics.V(500, 230) {
				t.Fatalf("moved before the wind-up ended: %v", p)
			}
			if p := h.pos(2, start+1e9); !near(p, physics.V(500+tc.dx, 230)) {
				t.Fatalf("near player at %v, want x %v", p, 500+tc.dx)
			}
			if p := h.pos(2, start+5e9); !near(p, physics.V(tc.end, 230)) {
				t.Fatalf("near player at %v once the field is over, want x %v", p, tc.end)
			}
			if p := h.pos(3, start+1e9); p != physics.V(900, 230) {
				t.Fatalf("far player moved: %v", p)
			}
			if p := h.pos(1, start+1e9); p != physics.V(300, 230) {
				t.Fatalf("caster moved by its own field: %v", p)
			}
			// A key change of the victim carries the drift on from where
			// it is, without counting it twice.
			h.must(2, start+500*ms, FuncSetKeys, SetKeysArgs(KeyDown))
			if m := h.motion(2); len(m.Drifts) != 1 || m.Drifts[0].DX == 0 || m.Drifts[0].DY != 0 {
				t.Fatalf("drift not carried on setKeys: %+v", m)
			}
			if p := h.pos(2, start+1e9); !near(p, physics.V(500+tc.dx, 230+Speed/2)) {
				t.Fatalf("after the key change at %v, want (%v, %v)", p, 500+tc.dx, 230+Speed/2)
			}
			if p := h.pos(2, start+5e9); math.Abs(p.X-tc.end) > 0.01 {
				t.Fatalf("after the key change, x %v once the field is over, want %v", p.X, tc.end)
			}
			if err := h.call(1, w+int64(GravityCooldown)-1, 0, FuncGravity, GravityArgs(true)); !errors.Is(err, ErrCooldown) {
				t.Fatalf("gravity inside the cooldown: %v", err)
			}
			// The record keeps the last gravityKeep uses, newest first.
			for i := range gravityKeep + 1 {
				h.must(1, w+int64(i+1)*int64(GravityCooldown), FuncGravity, GravityArgs(true))
			}
			b, _ := h.Read(PlayerPath(1, FieldGravity))
			uses, err := decodeGravity(b)
			if err != nil || len(uses) != gravityKeep || uses[0].Time != w+int64(gravityKeep+1)*int64(GravityCooldown) {
				t.Fatalf("record %+v, %v", uses, err)
			}
		})
	}
}

// TestGravityFields checks which players a field takes, and that
// overlapping fields are evaluated in (start, caster) order.
func TestGravityFields(t *testing.T) {
	const r = GravityRadius
	g := func(x float64, pull bool, start int64) []byte {
		return appendGravity(nil, []Gravity{{Pull: pull, Center: physics.V(x, 360), Time: start - int64(GravityDelay), Start: start, End: start + int64(GravityDuration)}})
	}
	s := t0 + 2e9
	for _, tc := range []struct {
		name    string
		m       Motion
		records map[uint32][]byte
		at      int64
		want    physics.Vec2
	}{
		{"outside the radius", Motion{T: t0, X: 100_000, Y: 360_000, Stop: Never}, map[uint32][]byte{7: g(100+r+1, true, s)}, s + 1e9, physics.V(100, 360)},
		{"on the radius", Motion{T: t0, X: 100_000, Y: 360_000, Stop: Never}, map[uint32][]byte{7: g(100+r, true, s)}, s + 1e9, physics.V(100+GravitySpeed, 360)},
		{"walked into range after the start", Motion{T: t0, X: 100_000, Y: 360_000, VX: Speed * MilliPx, Stop: Never}, map[uint32][]byte{7: g(100+2*Speed+r+50, false, s)}, s + 1e9, physics.V(100+3*Speed, 360)},
		{"started before the motion", Motion{T: s + 1, X: 100_000, Y: 360_000, Stop: Never}, map[uint32][]byte{7: g(200, true, s)}, s + 1e9, physics.V(100, 360)},
		{"own field", Motion{T: t0, X: 100_000, Y: 360_000, Stop: Never}, map[uint32][]byte{1: g(200, true, s)}, s + 1e9, physics.V(100, 360)},
		{"dead", Motion{T: t0, X: 100_000, Y: 360_000, Stop: Never, Dead: true}, map[uint32][]byte{7: g(200, true, s)}, s + 1e9, physics.V(100, 360)},
		{"held inside the border", Motion{T: t0, X: 20_000, Y: 360_000, Stop: Never}, map[uint32][]byte{7: g(200, false, s)}, s + 2e9, physics.V(PlayerRadius, 360)},
		{
			// Player 7's push starts first and takes the player out of
			// player 8's reach before that starts.
			"in order of start", Motion{T: t0, X: 400_000, Y: 360_000, Stop: Never},
			map[uint32][]byte{8: g(400+r-10, true, s+1e8), 7: g(400+10, false, s)},
			s + 3e9, physics.V(400-2*GravitySpeed, 360),
		},
		{
			"two at once", Motion{T: t0, X: 400_000, Y: 360_000, Stop: Never},
			map[uint32][]byte{8: g(400-100, false, s), 7: g(400+150, false, s)},
			s + 3e9, physics.V(400, 360),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			pv := netcode.PathValue{Path: PlayerPath(1, FieldMotion), Time: netcode.Time{Nanos: tc.m.T, Creator: 1}, Value: tc.m.Append(nil)}
			if _, err := h.s.Insert(tc.m.T, pv); err != nil {
				t.Fatal(err)
			}
			for id, b := range tc.records {
				pv := netcode.PathValue{Path: PlayerPath(id, FieldGravity), Time: netcode.Time{Nanos: s - int64(GravityDelay), Creator: id}, Value: b}
				if _, err := h.s.Insert(pv.Time.Nanos, pv); err != nil {
					t.Fatal(err)
				}
			}
			if p := h.pos(1, tc.at); p.Sub(tc.want).Len() > 0.01 {
				t.Fatalf("at %v, want %v", p, tc.want)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	h := newHarness(t)
	for id := uint32(1); id <= MaxPlayers; id++ {
		h.must(id, t0+int64(id)*ms, FuncJoin, JoinArgs("p"))
	}
	if err := h.call(MaxPlayers+1, t0+1e9, 0, FuncJoin, JoinArgs("late")); !errors.Is(err, ErrFull) {
		t.Fatalf("join a full arena: %v", err)
	}
	// Spawn points of the first players are distinct.
	seen := map[physics.Vec2]bool{}
	for id := uint32(1); id <= uint32(len(spawns)); id++ {
		p := h.motion(id).Pos(t0 + 1e9)
		if seen[p] {
			t.Fatalf("player %d spawned on another at %v", id, p)
		}
		seen[p] = true
	}
	h.must(3, t0+2e9, FuncJoin, JoinArgs("renamed"))
	if p, _ := PlayerAt(h, 3, t0+3e9); p.Name != "renamed" || p.Life.Health != MaxHealth {
		t.Fatalf("rejoin: %+v", p)
	}
	if ids := PlayerIDs(h); len(ids) != MaxPlayers || ids[0] != 1 || ids[9] != 10 {
		t.Fatalf("ids %v", ids)
	}
	// With every player's gravity record there, each call stays within
	// the read-lock limit.
	for id := uint32(1); id <= MaxPlayers; id++ {
		h.must(id, t0+3e9+int64(id)*ms, FuncGravity, GravityArgs(id%2 == 0))
	}
	at := t0 + 3e9 + int64(GravityDelay) + 500*ms
	for _, c := range []struct {
		name string
		args []byte
	}{{FuncSetKeys, SetKeysArgs(KeyLeft)}, {FuncShoot, ShootArgs(1)}, {FuncJoin, JoinArgs("again")}} {
		c := netcode.Call{ID: netcode.CallID{Creator: 5, Seq: 1000 + uint64(len(c.name))}, Name: c.name, Args: c.args, Time: at}
		out := h.reg.Run(h.s, &h.cfg, c, 0)
		if out.Err != nil {
			t.Fatalf("%s with %d records: %v", c.Name, MaxPlayers, out.Err)
		}
		if len(out.Locks) > 2*MaxPlayers+6 {
			t.Fatalf("%s: %d read locks", c.Name, len(out.Locks))
		}
	}
}

// TestShooterAlive: a shooter fires when it is alive at W or was alive
// at its view time: killed within its view delay it still trades, killed
// before it does not, and respawned within it fires though the view time
// still finds it dead.
func TestShooterAlive(t *testing.T) {
	const delay = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		after time.Duration // from the kill to the shot
		err   error
	}{
		{"killed within the view delay", delay - 10*time.Millisecond, nil},
		{"killed before the view time", delay + 10*time.Millisecond, ErrDead},
		{"respawned within the view delay", RespawnDelay + delay/2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.place(1, t0, 300, 690)
			h.place(2, t0, 700, 690)
			kill := t0 + 1e9
			for i := range MaxHealth / Damage {
				kill = t0 + 1e9 + int64(i)*int64(ShotCooldown)
				h.must(2, kill, FuncShoot, ShootArgs(math.Pi))
			}
			if !h.motion(1).Dead {
				t.Fatal("shooter not killed")
			}
			at := kill + int64(tc.after)
			if tc.after >= RespawnDelay {
				h.must(1, kill+int64(RespawnDelay), FuncRespawn, nil)
			}
			n := len(h.shots)
			err := h.call(1, at, delay, FuncShoot, ShootArgs(0))
			if !errors.Is(err, tc.err) {
				t.Fatalf("shot %v after the kill: %v, want %v", tc.after, err, tc.err)
			}
			if fired := len(h.shots) > n; fired != (tc.err == nil) {
				t.Fatalf("shot event emitted: %v", fired)
			}
		})
	}
}

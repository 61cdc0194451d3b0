package game

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		{"drift window", Motion{T: t0, DriftStart: t0 + 1e9, DriftEnd: t0 + 2e9, DX: 3000, DY: -500, Stop: Never}, t0 + 5e9, 3000, -500},
		{"inside drift", Motion{T: t0, VX: 1000, DriftStart: t0 - 1e9, DriftEnd: t0 + 2e9, DX: 3000, Stop: Never}, t0 + 5e8, 2000, 0},
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

func TestGravity(t *testing.T) {
	for _, tc := range []struct {
		name string
		pull bool
		dx   float64 // displacement of the near player after a second of drift
	}{
		{"pull", true, -GravitySpeed},
		{"push", false, GravitySpeed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.place(1, t0, 300, 690)
			h.place(2, t0, 500, 690) // 200 px away
			h.place(3, t0, 900, 690) // 600 px away
			w := t0 + 1e9
			h.must(1, w, FuncGravity, GravityArgs(tc.pull))
			start := w + int64(GravityDelay)
			if p := h.motion(2).Pos(start); p != physics.V(500, 690) {
				t.Fatalf("moved before the wind-up ended: %v", p)
			}
			if p := h.motion(2).Pos(start + 1e9); math.Abs(p.X-(500+tc.dx)) > 0.01 || p.Y != 690 {
				t.Fatalf("near player at %v, want x %v", p, 500+tc.dx)
			}
			if p := h.motion(3).Pos(start + 1e9); p != physics.V(900, 690) {
				t.Fatalf("far player moved: %v", p)
			}
			if tc.pull {
				// The pulled player stops on touching the caller.
				if p := h.motion(2).Pos(start + 2e9); math.Abs(p.X-(300+2*PlayerRadius)) > 0.01 {
					t.Fatalf("pulled player at %v, want touching the caller", p)
				}
			}
			// The drift survives a key change of its victim.
			h.must(2, start+500*ms, FuncSetKeys, SetKeysArgs(KeyDown))
			if m := h.motion(2); m.DriftEnd != start+int64(GravityDuration) || m.DX == 0 {
				t.Fatalf("drift lost on setKeys: %+v", m)
			}
			// Another's gravity does not replace a drift still to end: its
			// victim's client could not know in time that the drift stopped.
			before := h.motion(2)
			near := before.Pos(start + 600*ms)
			h.place(4, start+550*ms, near.X, near.Y-100)
			h.must(4, start+600*ms, FuncGravity, GravityArgs(!tc.pull))
			if got := h.motion(2); got != before {
				t.Fatalf("drift replaced by a second gravity: %+v, was %+v", got, before)
			}
			if err := h.call(1, w+int64(GravityCooldown)-1, 0, FuncGravity, GravityArgs(true)); !errors.Is(err, ErrCooldown) {
				t.Fatalf("gravity inside the cooldown: %v", err)
			}
			h.must(1, w+int64(GravityCooldown), FuncGravity, GravityArgs(true))
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

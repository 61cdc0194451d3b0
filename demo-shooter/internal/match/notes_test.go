package match

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/physics"
)

// fakeView is a game.View over values written at given times.
type fakeView map[string][]struct {
	t int64
	v []byte
}

func (f fakeView) write(path string, t int64, v []byte) {
	f[path] = append(f[path], struct {
		t int64
		v []byte
	}{t, v})
	slices.SortFunc(f[path], func(a, b struct {
		t int64
		v []byte
	}) int {
		return int(a.t - b.t)
	})
}

func (f fakeView) Read(path string) ([]byte, bool) {
	h := f[path]
	if len(h) == 0 {
		return nil, false
	}
	return h[len(h)-1].v, true
}

func (f fakeView) ReadAt(path string, t int64) ([]byte, bool) {
	h := f[path]
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].t < t {
			return h[i].v, true
		}
	}
	return nil, false
}

func (f fakeView) Children(prefix string) []string {
	var out []string
	for p := range f {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			seg, _, _ := strings.Cut(rest, "/")
			if !slices.Contains(out, seg) {
				out = append(out, seg)
			}
		}
	}
	slices.Sort(out)
	return out
}

const sec = int64(time.Second)

// player writes a living player id named name standing at (x, y) px from t
// on, moving at (vx, vy) px/s.
func (f fakeView) player(id uint32, name string, t int64, x, y, vx, vy float64) game.Motion {
	m := game.Motion{T: t, X: int64(x * game.MilliPx), Y: int64(y * game.MilliPx),
		VX: int64(vx * game.MilliPx), VY: int64(vy * game.MilliPx), Stop: game.Never}
	f.write(game.PlayerPath(id, game.FieldMotion), t, m.Append(nil))
	f.write(game.PlayerPath(id, game.FieldName), t, []byte(name))
	life := []byte{game.MaxHealth, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	f.write(game.PlayerPath(id, game.FieldLife), t, life)
	return m
}

func near(a, b physics.Vec2) bool { return a.Sub(b).Len() < 1e-6 }

func TestExplainMotion(t *testing.T) {
	v := fakeView{}
	v.player(1, "ann", sec, 100, 100, 0, 0)
	v.player(2, "bot2", sec, 400, 100, 0, 100) // moving down from (400, 100)
	pred := game.Motion{T: sec, X: 100_000, Y: 100_000, VX: 200_000, Stop: game.Never}
	auth := pred
	auth.Stop = sec + sec/2 // the authority's sweep stopped it after 0.5 s
	c := &netcode.Correction{Path: game.PlayerPath(1, game.FieldMotion), Predicted: pred.Append(nil), Authoritative: auth.Append(nil),
		CausePath: game.PlayerPath(2, game.FieldMotion), Cause: netcode.Time{Nanos: sec + sec/2, Creator: 2}, CauseKnown: true}
	now := 2 * sec
	n := seer{v, 1}.explain(c, game.FuncSetKeys, time.Unix(5, 0), now)
	if !n.Motion || math.Abs(n.Moved-100) > 1e-9 {
		t.Errorf("Motion %v Moved %v, want the own motion moved 100 px (200 px/s for 0.5 s more)", n.Motion, n.Moved)
	}
	if want := "setKeys moved you 100.0 px, because bot2's motion written by bot2 0.50 s ago was not what the prediction read"; n.Text != want {
		t.Errorf("text %q\nwant %q", n.Text, want)
	}
	if len(n.Pred) != pathSamples || len(n.Auth) != pathSamples {
		t.Fatalf("traces of %d and %d points", len(n.Pred), len(n.Auth))
	}
	if !near(n.Pred[len(n.Pred)-1], physics.V(300, 100)) || !near(n.Auth[len(n.Auth)-1], physics.V(200, 100)) || !near(n.Pred[0], physics.V(100, 100)) {
		t.Errorf("traces end at %v and %v, start at %v", n.Pred[len(n.Pred)-1], n.Auth[len(n.Auth)-1], n.Pred[0])
	}
	if n.CauseText != "bot2's motion, written 0.50 s ago" {
		t.Errorf("cause text %q", n.CauseText)
	}
	if !n.CauseAtOK || !near(n.CauseAt, physics.V(400, 150)) {
		t.Errorf("cause at %v (%v), want bot2 at (400, 150) when it wrote", n.CauseAt, n.CauseAtOK)
	}

	// No cause named.
	c.CauseKnown = false
	if n := (seer{v, 1}).explain(c, "", time.Time{}, now); n.Text != "a call moved you 100.0 px (no cause named)" {
		t.Errorf("without a cause: %q", n.Text)
	}
}

func TestExplainShotAndLife(t *testing.T) {
	v := fakeView{}
	v.player(1, "ann", sec, 100, 100, 0, 0)
	v.player(2, "bot2", sec, 400, 100, 0, 0)
	hit := game.Shot{Shooter: 1, Target: 2, Time: 2 * sec, ViewTime: 2*sec - sec/4, Origin: physics.V(100, 100), End: physics.V(386, 100)}
	miss := hit
	miss.Target, miss.End = 0, physics.V(1600, 100)
	c := &netcode.Correction{Path: game.PlayerPath(1, game.FieldShot), Predicted: hit.Append(nil), Authoritative: miss.Append(nil)}
	n := seer{v, 1}.explain(c, game.FuncShoot, time.Time{}, 3*sec)
	if want := "shoot: predicted a hit on bot2, the authority a miss (no cause named)"; n.Text != want {
		t.Errorf("shot: %q, want %q", n.Text, want)
	}
	if n.Motion || n.Pred != nil || !n.Shot || n.PredShot != hit || n.AuthShot != miss {
		t.Errorf("a shot correction: %+v", n)
	}
	// The same target hit at another point; the function named from the
	// path when the call is no longer known.
	moved := hit
	moved.End = physics.V(386, 110)
	c = &netcode.Correction{Path: game.PlayerPath(1, game.FieldShot), Predicted: hit.Append(nil), Authoritative: moved.Append(nil)}
	if n := (seer{v, 1}).explain(c, "", time.Time{}, 3*sec); n.Text != "shoot: a hit on bot2 in the prediction and at the authority, 10.0 px apart (no cause named)" {
		t.Errorf("same target: %q", n.Text)
	}
	life := func(h byte) []byte { return []byte{h, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} }
	c = &netcode.Correction{Path: game.PlayerPath(2, game.FieldLife), Predicted: life(50), Authoritative: life(75)}
	if n := (seer{v, 1}).explain(c, game.FuncShoot, time.Time{}, 3*sec); n.Text != "shoot: bot2's health predicted 50, the authority 75 (no cause named)" {
		t.Errorf("life: %q", n.Text)
	}
	c = &netcode.Correction{Path: game.PlayerPath(1, game.FieldAim), Predicted: game.AimArgs(1)}
	if n := (seer{v, 1}).explain(c, game.FuncAim, time.Time{}, 3*sec); n.Text != "aim: the authority did not write players/1/aim, the prediction did (no cause named)" {
		t.Errorf("deleted: %q", n.Text)
	}
}

func TestShotNote(t *testing.T) {
	v := fakeView{}
	v.player(1, "ann", sec, 100, 100, 0, 0)
	v.player(2, "bot2", sec, 400, 100, 0, 100) // moving down 100 px/s
	v.player(3, "bot3", sec, 400, 600, 0, 0)
	vt, w := 2*sec, 2*sec+sec/2 // view time, write time
	hit := game.Shot{Shooter: 1, Target: 2, Time: w, ViewTime: vt, Origin: physics.V(100, 200), End: physics.V(386, 200)}
	n := shotNote(v, hit, time.Time{})
	if n.Target != 2 || !n.Hit || !near(n.Rewound, physics.V(400, 200)) || !near(n.AtW, physics.V(400, 250)) {
		t.Errorf("hit: %+v, want bot2 rewound to (400, 200), at W at (400, 250)", n)
	}
	// A miss passing 30 px from bot2 (at the view time): its hitbox is
	// drawn; bot3, far from the line, is not.
	miss := game.Shot{Shooter: 1, Time: w, ViewTime: vt, Origin: physics.V(100, 230), End: physics.V(1600, 230)}
	if n := shotNote(v, miss, time.Time{}); n.Target != 2 || n.Hit || !near(n.Rewound, physics.V(400, 200)) {
		t.Errorf("near miss: %+v, want bot2's rewound hitbox", n)
	}
	far := game.Shot{Shooter: 1, Time: w, ViewTime: vt, Origin: physics.V(100, 400), End: physics.V(1200, 400)}
	if n := shotNote(v, far, time.Time{}); n.Target != 0 {
		t.Errorf("far miss: %+v, want no hitbox", n)
	}
}

func TestKeepBounded(t *testing.T) {
	var s []int
	for i := range 3 * maxNotes {
		s = keep(s, i)
	}
	if len(s) != maxNotes || s[0] != 2*maxNotes || s[len(s)-1] != 3*maxNotes-1 {
		t.Errorf("kept %d from %d to %d", len(s), s[0], s[len(s)-1])
	}
}

func TestNoteFailed(t *testing.T) {
	n := Note{Text: "setKeys: the authority did not write players/1/motion", CauseKnown: true, CauseText: "x"}
	n.Failed(game.FuncSetKeys, game.ErrDead)
	if want := "setKeys failed at the authority (game: player is dead), so what its prediction wrote was taken back"; n.Text != want || n.CauseKnown || n.CauseText != "" {
		t.Errorf("%+v, want text %q and no cause", n, want)
	}
}

// TestNotesFailedLater: a failure that arrives after its correction (a
// later frame) still rewrites the kept note of that call, and only it.
func TestNotesFailedLater(t *testing.T) {
	var ns notes
	a, b := netcode.CallID{Creator: 1, Seq: 1}, netcode.CallID{Creator: 1, Seq: 2}
	ns.corr = keep(ns.corr, Note{Text: "aim: the authority did not write players/1/aim", id: a})
	ns.corr = keep(ns.corr, Note{Text: "setKeys moved you 3.0 px", id: b})
	ns.failed(a, game.FuncAim, game.ErrDead)
	if want := "aim failed at the authority (game: player is dead), so what its prediction wrote was taken back"; ns.corr[0].Text != want {
		t.Errorf("note of the failed call: %q, want %q", ns.corr[0].Text, want)
	}
	if ns.corr[1].Text != "setKeys moved you 3.0 px" {
		t.Errorf("another call's note rewritten: %q", ns.corr[1].Text)
	}
}

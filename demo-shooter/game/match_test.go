package game_test

import (
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/sim"
	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

var (
	matchActive = flag.Duration("match.active", 60*time.Second, "active phase of each TestMatchBars match (the quality bars are stated for 60s)")
	matchSeeds  = flag.Int("match.seeds", 3, "TestMatchBars plays each profile with seeds 1 to this")
)

// timedServer measures the wall time the authority spends in Step and
// Tick: the authority's CPU, as the simulator runs it on one goroutine.
type timedServer struct {
	sim.Server
	spent time.Duration
}

func (t *timedServer) Step(now int64, session uint64, frame []byte) {
	start := time.Now()
	t.Server.Step(now, session, frame)
	t.spent += time.Since(start)
}

func (t *timedServer) Tick(now int64) {
	start := time.Now()
	t.Server.Tick(now)
	t.spent += time.Since(start)
}

// shotRecord follows one shoot call: what the shooter's prediction said
// and what the authority answered.
type shotRecord struct {
	predicted  game.Shot
	answered   bool
	failed     bool
	authTarget uint32 // the authority's target when a correction said so
	corrected  bool
}

// stats are one match's observations, over every bot.
type stats struct {
	shots map[netcode.CallID]*shotRecord
	// motionCalls are the calls in flight that write their caller's
	// motion (game.WritesMotion).
	motionCalls map[netcode.CallID]bool
	// ownMotion holds one sample per confirmed write of a bot's own
	// motion: the correction's distance (px), or 0 when the prediction
	// was exact. It is the quality report's correction_p*_px.
	ownMotion   []float64
	corrections []float64 // the samples of the writes a correction was sent for
	// undecodable counts own-motion corrections with a side absent: the
	// authority's motion is no longer valid because the player had died
	// there before the call (the call's re-run then fails), or a re-run
	// wrote the motion a failed version had not.
	undecodable int
	calls       int
	// explained describes the first maxExplained corrections of a bot's
	// own motion by a nonzero distance, for the log.
	explained []string
}

const maxExplained = 8

// explainCause says which value caused a correction and how old it was
// when the correction came.
func explainCause(c *netcode.Correction, now int64) string {
	if !c.CauseKnown {
		return "cause unknown"
	}
	return fmt.Sprintf("because of %s written by %d %.3f s earlier", c.CausePath, c.Cause.Creator, float64(now-c.Cause.Nanos)/1e9)
}

// botActor plays a game.Bot on a simulated client.
type botActor struct {
	bot *game.Bot
	st  *stats
}

func (a *botActor) Frame(core *netcode.ClientCore, call func(string, []byte) (netcode.CallID, error)) {
	me := core.Creator()
	a.bot.ViewDelay = core.ViewDelay()
	for _, act := range a.bot.Think(core, me, core.Now()) {
		id, err := call(act.Name, act.Args)
		if err != nil {
			continue
		}
		a.st.calls++
		if game.WritesMotion(act.Name) {
			a.st.motionCalls[id] = true
		}
		if act.Name != game.FuncShoot {
			continue
		}
		// The prediction is visible at once: the shooter's last shot,
		// written at the call's time (never before now). An older one
		// means the prediction failed (the shooter saw no shot, let alone
		// a hit): the last shot is a previous call's.
		b, _ := core.Read(game.PlayerPath(me, game.FieldShot))
		if s, err := game.DecodeShot(b); err == nil && s.Time >= core.Now() {
			a.st.shots[id] = &shotRecord{predicted: s}
		}
	}
}

func (a *botActor) Events(core *netcode.ClientCore, evs []netcode.Event) {
	me := core.Creator()
	motion := game.PlayerPath(me, game.FieldMotion)
	for _, ev := range evs {
		switch ev.Kind {
		case netcode.EventResult:
			if r := a.st.shots[ev.Call]; r != nil {
				r.answered, r.failed = true, ev.Err != nil
			}
			if a.st.motionCalls[ev.Call] {
				delete(a.st.motionCalls, ev.Call)
				if ev.Err == nil && !correctedMotion(evs, ev.Call, motion) {
					a.st.ownMotion = append(a.st.ownMotion, 0)
				}
			}
		case netcode.EventCorrection:
			c := ev.Correction
			switch c.Path {
			case game.PlayerPath(me, game.FieldShot):
				if r := a.st.shots[c.Call]; r != nil {
					r.corrected = true
					if s, err := game.DecodeShot(c.Authoritative); err == nil && s.Time == r.predicted.Time {
						r.authTarget = s.Target
					} else {
						r.authTarget = 0
					}
				}
			case motion:
				if d, ok := game.MotionDistance(c.Predicted, c.Authoritative, core.Now()); ok {
					a.st.corrections = append(a.st.corrections, d)
					a.st.ownMotion = append(a.st.ownMotion, d)
					if d > 0 && len(a.st.explained) < maxExplained {
						a.st.explained = append(a.st.explained, fmt.Sprintf("bot %d at %.3f s: %.2f px, %s", me, float64(core.Now())/1e9, d, explainCause(c, core.Now())))
					}
				} else {
					a.st.undecodable++
				}
			}
		}
	}
}

// correctedMotion reports whether evs hold a correction of the motion path
// by the call id.
func correctedMotion(evs []netcode.Event, id netcode.CallID, motion string) bool {
	for _, ev := range evs {
		if ev.Kind == netcode.EventCorrection && ev.Correction != nil && ev.Correction.Call == id && ev.Correction.Path == motion {
			return true
		}
	}
	return false
}

type matchResult struct {
	profile                    string
	predictedHits, confirmed   int
	samples, corrections       int     // confirmed own-motion writes; those corrected
	undecodable                int     // own-motion corrections with a side absent
	p50, p99                   float64 // over every confirmed own-motion write, px
	correctedP99, correctedMax float64 // over the corrected ones only, px
	cpuPctPerBot               float64
	calls                      int
	mispredictionRate, reruns  float64
	gameSeconds, wallSeconds   float64
	explained                  []string
}

func playMatch(t *testing.T, profile string, seed uint64, bots int, active time.Duration) matchResult {
	t.Helper()
	reg := game.Registry()
	node, err := authority.NewNode(authority.DefaultConfig(reg))
	if err != nil {
		t.Fatal(err)
	}
	srv := &timedServer{Server: sim.NodeServer(node)}
	cfg := sim.DefaultConfig()
	cfg.Seed, cfg.Clients, cfg.Active = seed, bots, active
	if cfg.Profile, err = lagsim.Preset(profile); err != nil {
		t.Fatal(err)
	}
	st := &stats{shots: map[netcode.CallID]*shotRecord{}, motionCalls: map[netcode.CallID]bool{}}
	cfg.Actor = func(i int) sim.Actor {
		return &botActor{bot: game.NewBot(seed<<16 | uint64(i)), st: st}
	}
	s, err := sim.New(cfg, srv, reg)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Now()
	if err := s.Run(); err != nil {
		t.Fatalf("%s seed %d: %v", profile, seed, err)
	}
	r := matchResult{profile: profile, calls: st.calls, wallSeconds: time.Since(wall).Seconds(), explained: st.explained}
	for _, sr := range st.shots {
		if sr.predicted.Target == 0 {
			continue
		}
		r.predictedHits++
		if sr.answered && !sr.failed && (!sr.corrected || sr.authTarget == sr.predicted.Target) {
			r.confirmed++
		}
	}
	r.samples, r.corrections, r.undecodable = len(st.ownMotion), len(st.corrections), st.undecodable
	r.p50, r.p99 = quantile(st.ownMotion, 0.50), quantile(st.ownMotion, 0.99)
	r.correctedP99, r.correctedMax = quantile(st.corrections, 0.99), quantile(st.corrections, 1)
	game := cfg.Warmup + cfg.Active + cfg.Quiet
	r.gameSeconds = game.Seconds()
	r.cpuPctPerBot = 100 * srv.spent.Seconds() / game.Seconds() / float64(bots)
	rep := s.Report()
	r.mispredictionRate = rep.MispredictionRate
	r.reruns = rep.ClientRerunsPerCall
	return r
}

// quantile returns the q-quantile (nearest rank) of xs, sorting xs; 0 when
// xs is empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}

func (r matchResult) hitsPct() float64 {
	return 100 * float64(r.confirmed) / float64(max(1, r.predictedHits))
}

func (r matchResult) String() string {
	return fmt.Sprintf("%-9s calls %5d  predicted hits %4d confirmed %5.1f%%  own-motion writes %4d p50 %.2f px p99 %.2f px  corrected %d (+%d absent) p99 %.2f max %.2f px  mispredictions %.3f  re-runs/call %.3f  authority CPU %.3f%%/bot  (%.0fs game in %.1fs)",
		r.profile, r.calls, r.predictedHits, r.hitsPct(), r.samples, r.p50, r.p99, r.corrections, r.undecodable, r.correctedP99, r.correctedMax,
		r.mispredictionRate, r.reruns, r.cpuPctPerBot, r.gameSeconds, r.wallSeconds)
}

// TestMatch plays 16 bots in the deterministic simulator under broadband
// and mobile for a few seconds and checks the simulator's properties
// (sim.Run) and that the bots fight. It is short enough for the race
// detector; TestMatchBars plays the full matches.
func TestMatch(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated match skipped in -short mode")
	}
	active := 10 * time.Second
	if raceEnabled {
		active = 4 * time.Second // the race detector slows the simulator several times
	}
	for _, profile := range []string{"broadband", "mobile"} {
		t.Run(profile, func(t *testing.T) {
			r := playMatch(t, profile, 1, 16, active)
			t.Log(r)
			if r.predictedHits == 0 {
				t.Fatal("no predicted hit: the bots did not fight")
			}
		})
	}
}

// TestMatchBars plays 16 bots for 60 s in the deterministic simulator under
// broadband, mobile and awful, seeds 1 to 3, and holds mobile to the
// quality bars: hits the shooter saw confirmed by the authority ≥ 98 %,
// own-player correction p99 ≤ 8 px (over every confirmed write of a bot's
// own motion, as the quality report counts it). The authority's CPU per
// bot (the node's Step and Tick, wall time on one goroutine) is logged, not
// asserted: it depends on the machine's load, so its bar (≤ 1 % of a core)
// is measured by the real-stack quality report (make demo-headless) and
// recorded in docs/BENCHMARKS.md. The other profiles are logged. It does not run under the race detector,
// which slows the simulator several times: make test runs it without.
func TestMatchBars(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated matches skipped in -short mode")
	}
	if raceEnabled {
		t.Skip("skipped under the race detector (too slow for 60 s matches); make test runs it without -race")
	}
	for seed := uint64(1); seed <= uint64(max(1, *matchSeeds)); seed++ {
		for _, profile := range []string{"broadband", "mobile", "awful"} {
			t.Run(fmt.Sprintf("%s/seed%d", profile, seed), func(t *testing.T) {
				t.Parallel()
				r := playMatch(t, profile, seed, 16, *matchActive)
				t.Log(r)
				for _, e := range r.explained {
					t.Log("  corrected: " + e)
				}
				if r.predictedHits == 0 {
					t.Fatal("no predicted hit: the bots did not fight")
				}
				if profile != "mobile" {
					return
				}
				if r.samples < 100 {
					t.Errorf("seed %d: only %d confirmed own-motion writes: the bots hardly moved", seed, r.samples)
				}
				if pct := r.hitsPct(); pct < 98 {
					t.Errorf("seed %d: hits confirmed as seen %.1f%% < 98%%", seed, pct)
				}
				if r.p99 > 8 {
					t.Errorf("seed %d: own-position correction p99 %.2f px > 8 px", seed, r.p99)
				}
			})
		}
	}
}

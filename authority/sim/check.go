package sim

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// events drains c's events into the run's observations and checks the
// ones that can be checked as they happen (events exactly once).
func (s *Sim) events(c *simClient) {
	evs := c.core.Events()
	if c.player != nil {
		c.player.Events(c.core, evs)
	}
	for _, ev := range evs {
		switch ev.Kind {
		case netcode.EventEmitted:
			k := emitKey{ev.Path, ev.Time.Nanos, ev.Time.Creator}
			c.emitted[k]++
			if n := c.emitted[k]; n > 1 {
				// The core remembers delivered events until
				// eventMemory after their time; a copy arriving after
				// that (a late answer, a slow link) is delivered
				// again. That is counted, and fails the run only in
				// StrictEvents mode.
				if !s.cfg.StrictEvents && c.core.Now() > k.nanos+s.eventMemory() {
					s.obs.lateDuplicates++
				} else {
					s.fail("client %d: event %s at %d by %d reached the game %d times", c.idx, k.path, k.nanos, k.creator, n)
				}
			}
			if ev.Path == BumpEvents && ev.Time.Creator == c.core.Creator() {
				c.lastBump = k
			}
		case netcode.EventResult:
			info := c.calls[ev.Call]
			if info == nil {
				continue // a re-run's answer, or a call renumbered by a reconnect
			}
			delete(c.calls, ev.Call)
			if ev.Err != nil {
				// A failure is an answer: the function's error, the
				// authority's refusal (a call that arrived too late for
				// the change window), or a timeout on a link that held
				// the answer back too long. Convergence is checked
				// regardless.
				s.obs.failed++
				if errors.Is(ev.Err, netcode.ErrCallTimeout) {
					s.obs.timeouts++
					if info.name == FuncBump {
						s.obs.bumpTimeouts++ // applied or not: unknown
					}
				}
				continue
			}
			s.obs.latency = append(s.obs.latency, s.now-info.at)
			if info.name == FuncBump {
				c.ownBumps = append(c.ownBumps, info.bump)
			}
		case netcode.EventCorrection:
			if strings.HasPrefix(ev.Path, PlayersPrefix) {
				if d, ok := Distance(ev.Correction.Predicted, ev.Correction.Authoritative); ok {
					s.obs.distance = append(s.obs.distance, d)
				} else {
					s.obs.appeared++
				}
			}
		case netcode.EventError:
			if s.cfg.Reconnects == 0 && !s.clustered() {
				s.fail("client %d: %v", c.idx, ev.Err)
			}
		}
	}
}

// Check verifies the properties that must hold once the quiet phase is
// over: the lock invariant; every client connected, with every call
// answered and no prediction pending; every client's confirmed view of
// every watched path equal to the authority's latest valid value; and
// every bump the authority confirmed reaching its caller's game exactly
// once.
func (s *Sim) Check() error {
	if s.err != nil {
		return s.err
	}
	s.checkNodes()
	if s.err != nil {
		return s.err
	}
	want := map[string][]byte{}
	prefixes := []string{PlayersPrefix, CountersPrefix}
	if s.cfg.Workload.Looks > 0 {
		prefixes = append(prefixes, SeenPrefix)
	}
	for _, p := range prefixes {
		s.latest(p, func(path string, v []byte) {
			if v != nil {
				want[path] = v
			}
		})
	}
	for _, c := range s.clients {
		core := c.core
		st := core.Stats()
		switch {
		case !c.online || !core.Connected():
			s.fail("client %d: not connected at the end", c.idx)
		case !core.Clock().Synced():
			s.fail("client %d: clock never synced (%d samples, RTT %v)", c.idx, core.Clock().Status().Samples, st.RTT)
		case s.busy() && c.played >= minPlayed && st.Confirmed == 0:
			s.fail("client %d: no call confirmed in %v of play", c.idx, c.played)
		case st.Pending != 0:
			s.fail("client %d: %d calls still pending after the quiet phase", c.idx, st.Pending)
		case s.cfg.Reconnects == 0 && !s.clustered() && len(c.calls) != 0:
			s.fail("client %d: %d calls never answered", c.idx, len(c.calls))
		}
		if s.err != nil {
			return s.err
		}
		got := map[string][]byte{}
		for _, p := range prefixes {
			s.view(core, p, got)
		}
		for path, w := range want {
			g, ok := got[path]
			if !ok || !bytes.Equal(g, w) {
				s.fail("client %d: not converged on %s: has %x (present %v), authority %x", c.idx, path, g, ok, w)
				return s.err
			}
		}
		for path, g := range got {
			if _, ok := want[path]; !ok {
				s.fail("client %d: shows %s = %x, which the authority does not hold", c.idx, path, g)
				return s.err
			}
			if core.Predicted(path) {
				s.fail("client %d: %s still shows a prediction", c.idx, path)
				return s.err
			}
		}
		for _, k := range c.ownBumps {
			if n := c.emitted[k]; n < 1 {
				s.fail("client %d: confirmed bump event at %d reached the game %d times", c.idx, k.nanos, n)
				return s.err
			}
		}
	}
	return s.err
}

// eventMemory is how long after an event's time the client core
// remembers having delivered it: 2 × MaxChangeAge + 1 s.
func (s *Sim) eventMemory() int64 {
	return 2*int64(s.clients[0].core.Config().MaxChangeAge) + int64(time.Second)
}

// busy reports whether the workload is expected to have confirmed calls
// for every client: a second or more of it at a second-scale rate.
// minPlayed is how long a client must have played (connected and synced
// during the active phase) for the liveness check to expect a confirmed
// call: on awful a client can sync only after the active phase, and then it
// made no call to confirm.
const minPlayed = time.Second

func (s *Sim) busy() bool {
	w := s.cfg.Workload
	faults := s.cfg.Reconnects > 0 || s.clustered() && s.cfg.Cluster.Crashes+s.cfg.Cluster.Partitions > 0
	return s.cfg.Active >= 2*time.Second && w.KeyChanges >= 1 && !faults
}

// view collects the client's latest confirmed valid value of every path
// under prefix (deletions left out).
func (s *Sim) view(core *netcode.ClientCore, prefix string, into map[string][]byte) {
	for _, seg := range core.Children(prefix) {
		path := prefix + seg
		if h := core.History(path); len(h) > 0 && h[len(h)-1].Value != nil {
			into[path] = h[len(h)-1].Value
		}
		s.view(core, path+"/", into)
	}
}

// observations are what the quality report is computed from.
type observations struct {
	began, ended   bool
	t0, t1         int64
	in0, out0      uint64 // client bytes at the start of the active phase
	in1, out1      uint64 // and at its end
	refused        uint64 // calls the client core refused (not synced, too many)
	failed         uint64 // calls answered with an error
	timeouts       uint64 // of which timed out in the client
	bumpTimeouts   uint64 // bumps among them
	lateDuplicates uint64 // events delivered again after the core's memory of them
	crossRange     uint64 // sharded: look calls reading a range owned by other nodes than the one they write
	resets         uint64 // nodes replaced at their request (NeedsReset)
	appeared       uint64 // corrections where one side had no position
	latency        []int64
	distance       []float64
}

func (o *observations) bytes(s *Sim) (in, out uint64) {
	for _, c := range s.clients {
		st := c.core.Stats()
		in += st.BytesIn
		out += st.BytesOut
	}
	return in, out
}

func (o *observations) begin(s *Sim) {
	o.began, o.t0 = true, s.now
	o.in0, o.out0 = o.bytes(s)
}

func (o *observations) end(s *Sim) {
	o.ended, o.t1 = true, s.now
	o.in1, o.out1 = o.bytes(s)
}

// percentile returns the p-th percentile (0..1) of sorted xs by the
// nearest-rank method; zero when empty.
func percentile[T int64 | float64](xs []T, p float64) T {
	if len(xs) == 0 {
		return 0
	}
	i := int(p*float64(len(xs))+0.999999) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// Report is the quality of one run, from the clients' and the authority's
// counters and the sim's own observations.
type Report struct {
	Profile string
	Clients int
	Seed    uint64
	// GameSeconds is the active phase (the workload), which the rates
	// below are per.
	GameSeconds float64
	// RTT is the link's configured mean round trip (twice the one-way
	// Delay).
	RTT time.Duration

	Calls     uint64 // calls made by the clients
	Confirmed uint64 // calls the authority ran and stored
	Failed    uint64 // calls answered with an error (timeouts included)
	Timeouts  uint64 // calls the client timed out
	// LateDuplicates counts events that reached a game a second time after
	// the core's memory of delivered events had expired.
	LateDuplicates uint64
	Refused        uint64 // calls the client core refused before sending

	// MispredictionRate is the clients' mispredicted calls over confirmed
	// calls.
	MispredictionRate float64
	// Corrections is the number of player-position corrections measured;
	// CorrectionP50 and P99 are their distances between predicted and
	// authoritative position, in world units.
	Corrections                  int
	CorrectionP50, CorrectionP99 float64
	// ServerRerunsPerCall is the authority's re-runs over its calls;
	// ClientRerunsPerCall the clients' re-runs over their calls.
	ServerRerunsPerCall, ClientRerunsPerCall float64
	BudgetSkips                              uint64
	// UpBytesPerClientSec and DownBytesPerClientSec are the bytes of
	// frames each client sent and received per second of the active
	// phase, averaged over clients.
	UpBytesPerClientSec, DownBytesPerClientSec float64
	// ConfirmP50 and ConfirmP99 are the time from a call to its
	// authoritative result reaching the game, minus RTT. It includes up
	// to a frame of waiting on each side and retransmissions.
	ConfirmP50, ConfirmP99 time.Duration
	// Sharded runs: the look calls made whose read lies in a range owned
	// by other nodes than the range they write, and, summed over the live nodes, the calls
	// forwarded to an owner of their shard key and the runs refused for
	// touching a range their node did not hold yet.
	CrossRangeCalls, Forwarded, RunsOutside uint64
	// Clustered runs, summed over the live nodes at the end: the calls
	// refused as older than the change window, the calls accepted older
	// than it from clients resumed after their node failed (authority
	// Limits.FailoverCalls), the re-runs put off a tick for a peer's
	// re-run (authority Stats.RerunsWaited) and the calls given up after
	// too many re-runs.
	RejectedLate, FailoverCalls   uint64
	RerunsWaited, RerunsAbandoned uint64
	// Quorums: the nodes replaced with fresh ones at their request
	// (NeedsReset: taken over while without a quorum), and, summed over
	// the live nodes at the end, the quorums regained with the node's
	// state kept and the takeovers a node completed because another had
	// completed one it abandoned (authority Stats.QuorumKept and
	// TakeoversAdopted).
	Resets, QuorumKept, TakeoversAdopted uint64
	TraceHash                            uint64
}

// Report summarises the run so far; call it after Run.
func (s *Sim) Report() Report {
	r := Report{
		Profile:         s.cfg.Profile.Name,
		Clients:         len(s.clients),
		Seed:            s.cfg.Seed,
		RTT:             2 * s.cfg.Profile.Delay,
		Refused:         s.obs.refused,
		Failed:          s.obs.failed,
		Timeouts:        s.obs.timeouts,
		LateDuplicates:  s.obs.lateDuplicates,
		CrossRangeCalls: s.obs.crossRange,
		Resets:          s.obs.resets,
		TraceHash:       s.TraceHash(),
	}
	var mis, reruns uint64
	for _, c := range s.clients {
		st := c.core.Stats()
		r.Calls += st.Calls
		r.Confirmed += st.Confirmed
		mis += st.Mispredictions
		reruns += st.Reruns
		r.BudgetSkips += st.BudgetSkips
	}
	if r.Confirmed > 0 {
		r.MispredictionRate = float64(mis) / float64(r.Confirmed)
	}
	if r.Calls > 0 {
		r.ClientRerunsPerCall = float64(reruns) / float64(r.Calls)
	}
	var calls, rr uint64
	for _, nd := range s.nodes {
		if nd.srv != nil {
			c, re := nd.srv.Counters()
			calls, rr = calls+c, rr+re
			if ss, ok := nd.srv.(interface{ ShardCounters() (uint64, uint64) }); ok {
				f, o := ss.ShardCounters()
				r.Forwarded += f
				r.RunsOutside += o
			}
			if ls, ok := nd.srv.(interface {
				LateCounters() (uint64, uint64, uint64, uint64)
			}); ok {
				l, f, w, a := ls.LateCounters()
				r.RejectedLate += l
				r.FailoverCalls += f
				r.RerunsWaited += w
				r.RerunsAbandoned += a
			}
			if qs, ok := nd.srv.(interface{ QuorumCounters() (uint64, uint64) }); ok {
				k, a := qs.QuorumCounters()
				r.QuorumKept += k
				r.TakeoversAdopted += a
			}
		}
	}
	if calls > 0 {
		r.ServerRerunsPerCall = float64(rr) / float64(calls)
	}
	if s.obs.ended && s.obs.t1 > s.obs.t0 {
		secs := float64(s.obs.t1-s.obs.t0) / float64(time.Second)
		r.GameSeconds = secs
		n := float64(len(s.clients))
		r.UpBytesPerClientSec = float64(s.obs.out1-s.obs.out0) / secs / n
		r.DownBytesPerClientSec = float64(s.obs.in1-s.obs.in0) / secs / n
	}
	d := slices.Clone(s.obs.distance)
	slices.Sort(d)
	r.Corrections = len(d)
	r.CorrectionP50, r.CorrectionP99 = percentile(d, 0.5), percentile(d, 0.99)
	l := slices.Clone(s.obs.latency)
	slices.Sort(l)
	r.ConfirmP50 = time.Duration(percentile(l, 0.5)) - r.RTT
	r.ConfirmP99 = time.Duration(percentile(l, 0.99)) - r.RTT
	return r
}

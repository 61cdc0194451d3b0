package match

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/quality"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// ErrBadMatch: a match's settings are out of bounds.
var ErrBadMatch = errors.New("match: bad match settings")

// Match bounds and defaults.
const (
	MaxBots = game.MaxPlayers
	// Frame is the bots' frame period: 60 frames a second, like the
	// window's fixed step.
	Frame = time.Second / 60
	// DefaultWarmup is played before measuring: clocks sync, bots join
	// and spread out.
	DefaultWarmup = 2 * time.Second
	// maxSettle bounds the settling after the measured span: the bots
	// stop acting and their clients keep updating until every call has
	// its result (a call times out well before this on any preset link).
	maxSettle    = 15 * time.Second
	dialTimeout  = 20 * time.Second
	childTimeout = 10 * time.Second
)

// Settings configure one headless match.
type Settings struct {
	Profile  lagsim.Profile // every bot's link, both ways
	Bots     int
	Duration time.Duration // measured play, after Warmup
	Warmup   time.Duration // zero: DefaultWarmup
	Seed     uint64
	// Authority returns the command that runs an authority in its own
	// process: a program that ends in Serve with args as its command line
	// ("-serve 127.0.0.1:0" and, in a cluster, the node's flags), to which
	// it may add its own (-data, -cpuprofile).
	Authority func(args []string) *exec.Cmd
	// Nodes above 1 runs the authority as a cluster of that many
	// processes on loopback (startCluster): the bots are spread across
	// them, bot i on node i mod Nodes with the others as its failover
	// addresses, and every call is traced (TracedRegistry).
	Nodes int
	// KillAfter, in a cluster, kills node 1 with SIGKILL this long into
	// the measured span (zero: no kill).
	KillAfter time.Duration
	// StallFor, with KillAfter, stops node 1 (SIGSTOP) instead of killing
	// it, and continues it (SIGCONT) this long after: a process that
	// freezes (a long pause, a starved or migrated machine) and comes
	// back. Its bots fail over as from a dead node; every node, the
	// stalled one included, is checked at the end.
	StallFor time.Duration
	// Regions, in a cluster, cuts the arena into that many regions, each
	// a range of the shard map owned by its own nodes (see
	// RegionRegistry); zero: one range, every node owning every path.
	Regions int
	// MoveAfter, in a sharded cluster, moves region 0's range to another
	// node this long into the measured span, live (zero: no move).
	MoveAfter time.Duration
	// Transport of the clients; zero: the netcode default, and in a
	// cluster clusterTransport with clusterReconnect.
	Options netcode.Options
}

func (s *Settings) validate() error {
	switch {
	case s.Bots < 1 || s.Bots > MaxBots:
		return fmt.Errorf("%w: %d bots outside [1, %d]", ErrBadMatch, s.Bots, MaxBots)
	case s.Duration <= 0:
		return fmt.Errorf("%w: duration %v", ErrBadMatch, s.Duration)
	case s.Warmup < 0:
		return fmt.Errorf("%w: warm-up %v", ErrBadMatch, s.Warmup)
	case s.Authority == nil:
		return fmt.Errorf("%w: no authority command", ErrBadMatch)
	case s.Nodes < 0 || s.Nodes > MaxNodes:
		return fmt.Errorf("%w: %d nodes outside [0, %d]", ErrBadMatch, s.Nodes, MaxNodes)
	case s.KillAfter < 0 || s.KillAfter > 0 && (s.Nodes < 2 || s.KillAfter >= s.Duration):
		return fmt.Errorf("%w: a kill after %v needs a cluster (%d nodes) and a time inside the measured %v", ErrBadMatch, s.KillAfter, s.Nodes, s.Duration)
	case s.Regions < 0 || s.Regions > 0 && (s.Nodes < 2 || s.Regions > 255):
		return fmt.Errorf("%w: %d regions need a cluster (%d nodes) and at most 255", ErrBadMatch, s.Regions, s.Nodes)
	case s.StallFor < 0 || s.StallFor > 0 && (s.KillAfter == 0 || s.KillAfter+s.StallFor >= s.Duration):
		return fmt.Errorf("%w: a stall of %v needs a kill time (%v) and to end inside the measured %v", ErrBadMatch, s.StallFor, s.KillAfter, s.Duration)
	case s.MoveAfter < 0 || s.MoveAfter > 0 && (s.Regions == 0 || s.MoveAfter >= s.Duration):
		return fmt.Errorf("%w: a range move after %v needs regions (%d) and a time inside the measured %v", ErrBadMatch, s.MoveAfter, s.Regions, s.Duration)
	}
	return s.Profile.Validate()
}

// Run plays one headless match: an authority in its own process (or a
// cluster of them, see Settings.Nodes), Bots bots over loopback behind the
// profile, Warmup of play, then Duration measured, and returns its
// quality. After the measured span the bots stop acting until the span's
// calls are answered, so a shot made just before the end is judged by its
// answer rather than counted as lost; the CPU, traffic and call counters
// cover the span only. A cluster match then waits for every value to be
// final on every node, reads each surviving authority's state through a
// watch client of its own and checks the calls' traces and the replicas'
// agreement (quality.Cluster). ctx ends it early (an error).
func Run(ctx context.Context, s Settings) (_ quality.Profile, err error) {
	var cf *quality.Cluster
	if err := s.validate(); err != nil {
		return quality.Profile{}, err
	}
	if s.Warmup == 0 {
		s.Warmup = DefaultWarmup
	}
	clustered := s.Nodes > 1
	var cl *cluster
	var addrs []string
	if clustered {
		var err error
		if cl, err = startCluster(s); err != nil {
			return quality.Profile{}, err
		}
		addrs = cl.addrs()
		if s.Options.Transport.MaxFrame == 0 {
			s.Options.Transport = clusterTransport()
		}
		if s.Options.Reconnect == (netcode.Reconnect{}) {
			s.Options.Reconnect = clusterReconnect
		}
	} else {
		child, err := StartChild(s.Authority([]string{"-serve", "127.0.0.1:0"}), childTimeout)
		if err != nil {
			return quality.Profile{}, err
		}
		cl = &cluster{nodes: []*Child{child}, killed: -1}
		addrs = []string{child.Addr}
	}
	stopped := false
	defer func() {
		if !stopped {
			cl.stop()
		}
		cl.close()
		switch {
		case !clustered:
		case err != nil:
			err = fmt.Errorf("%w (the nodes' data and logs are in %s)", err, cl.dir)
		case cf != nil && (cf.LostConfirmedCalls > 0 || cf.DuplicateCalls > 0 || cf.ReplicaDivergence > 0 || cf.StrayTraces > 0):
			cf.Logs = cl.dir // kept, to find out why
		default:
			cl.remove()
		}
	}()
	lag, err := NewLag("127.0.0.1:0", s.Profile, s.Seed<<16)
	if err != nil {
		return quality.Profile{}, err
	}
	players, err := dialBots(ctx, addrs, lag, s, clustered)
	var mv rangeMove
	for _, p := range players {
		if p != nil {
			p.Regions = s.Regions
			p.Relayed = func(region int, addr string) (bool, bool) { return mv.relayed(addrs, s.Nodes, region, addr) }
		}
	}
	for _, p := range players {
		if p != nil {
			defer p.C.Close()
		}
	}
	if err != nil {
		return quality.Profile{}, err
	}

	tick := time.NewTicker(Frame)
	defer tick.Stop()
	var fo failover
	play := func(d time.Duration) error {
		end := time.Now().Add(d)
		for {
			now := time.Now()
			if fo.due(now) {
				if err := fo.kill(cl, players, now); err != nil {
					return err
				}
			}
			if err := fo.resume(cl, now); err != nil {
				return err
			}
			if mv.due(now) {
				mv.start(ctx, cl, s.Nodes)
			}
			mv.poll()
			for _, p := range players {
				p.Frame(now)
			}
			fo.observe(players)
			if !now.Before(end) {
				return nil
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := play(s.Warmup); err != nil {
		return quality.Profile{}, err
	}
	// Measure from here: fresh recorders, counters as of now.
	base := make([]netcode.Stats, len(players))
	for i, p := range players {
		p.ResetRecorder()
		base[i] = p.C.Stats()
	}
	cpu0, err := cl.cpu()
	if err != nil {
		return quality.Profile{}, err
	}
	start := time.Now()
	if s.KillAfter > 0 {
		fo.at, fo.stallFor = start.Add(s.KillAfter), s.StallFor
	}
	if s.MoveAfter > 0 {
		mv.at = start.Add(s.MoveAfter)
	}
	if err := play(s.Duration); err != nil {
		return quality.Profile{}, err
	}
	span := time.Since(start)
	cpu1, err := cl.cpu()
	if err != nil {
		return quality.Profile{}, err
	}
	recs := make([]*quality.Recorder, len(players))
	crossRecs := make([]*quality.Recorder, len(players))
	ctr := make([]quality.Counters, len(players))
	var regionMoves uint64
	var localLat, relayedLat quality.Samples
	for i, p := range players {
		localLat.Merge(&p.LocalLat)
		relayedLat.Merge(&p.RelayedLat)
		st, b := p.C.Stats(), base[i]
		recs[i] = &p.Rec
		crossRecs[i] = &p.CrossRec
		regionMoves += p.RegionMoves
		ctr[i] = quality.Counters{
			Calls: st.Calls - b.Calls, Confirmed: st.Confirmed - b.Confirmed, Failed: st.Failed - b.Failed,
			Mispredictions: st.Mispredictions - b.Mispredictions, Reruns: st.Reruns - b.Reruns,
			BytesIn: st.BytesIn - b.BytesIn, BytesOut: st.BytesOut - b.BytesOut, RTT: st.RTT,
		}
	}
	if err := settle(ctx, players, tick, &fo); err != nil {
		return quality.Profile{}, err
	}
	if err := mv.wait(ctx); err != nil {
		return quality.Profile{}, err
	}
	if mv.res != nil && mv.res.err != nil {
		return quality.Profile{}, mv.res.err
	}
	if clustered {
		if cf, err = checkCluster(ctx, cl, players, tick, &fo, clusterGame(s.Regions)); err != nil {
			return quality.Profile{}, err
		}
	}
	for _, p := range players {
		p.C.Close()
	}
	stopped = true
	as, err := cl.stop()
	if err != nil {
		return quality.Profile{}, err
	}
	name := s.Profile.Name
	if name == "" {
		name = "custom"
	}
	p, err := quality.Summarise(name, span, recs, ctr, quality.Authority{CPU: cpu1 - cpu0, Calls: as.Calls, Reruns: as.Reruns})
	if err != nil {
		return p, err
	}
	p.Cluster = cf
	if s.Regions > 0 {
		cross, err := quality.Summarise(name, span, crossRecs, make([]quality.Counters, len(players)), quality.Authority{})
		if err != nil {
			return p, err
		}
		sh := &quality.Shards{
			Regions: s.Regions, PlayerRegionMoves: regionMoves,
			CrossShardCalls: as.RelayedIn, ForwardedCalls: as.Forwarded,
			CrossRegionHitsSeen: cross.HitsSeen, CrossRegionHitsConfirmedPct: cross.HitsConfirmedPct,
			CrossRegionCorrectionP99Px: cross.CorrectionP99Px, CrossRegionMotionCalls: crossMotion(crossRecs),
			LocalCalls: localLat.Len(), RelayedCalls: relayedLat.Len(),
			LocalConfirmMinusRTTMsP50:   quality.Quantile(localLat.Values(), 0.5),
			LocalConfirmMinusRTTMsP99:   quality.Quantile(localLat.Values(), 0.99),
			RelayedConfirmMinusRTTMsP50: quality.Quantile(relayedLat.Values(), 0.5),
			RelayedConfirmMinusRTTMsP99: quality.Quantile(relayedLat.Values(), 0.99),
		}
		if mv.res != nil {
			sh.RangeMoves = 1
			sh.RangeMoveMs = float64(mv.res.took) / float64(time.Millisecond)
			sh.RangeMove = mv.res.said
		}
		sh.Handoffs = uint64(sh.RangeMoves) + sh.PlayerRegionMoves
		p.Cluster.Shards = sh
	}
	return p, nil
}

// failover kills a node of a cluster match at a set time (or stops it
// for stallFor) and measures, for each bot connected to it then, the time
// from the kill to the first result of a call confirmed through another
// node.
type failover struct {
	at       time.Time     // when to kill; zero: never
	stallFor time.Duration // zero: kill; else stop, and continue this long after
	contAt   time.Time     // when to continue a stopped node; zero: none due
	killedAt time.Time     // zero until killed (or stopped)
	addr     string        // the killed node's address
	// waiting: the bots of the killed node without a confirmation since;
	// took: the failover times of those that had one.
	waiting map[*Player]bool
	took    []time.Duration
	// noticed and resumed: for each of those bots, the time from the kill
	// to its session's loss, and to its welcome on another node.
	noticed, resumed map[*Player]time.Duration
}

// due reports whether the kill is due at now.
func (f *failover) due(now time.Time) bool {
	return !f.at.IsZero() && f.killedAt.IsZero() && !now.Before(f.at)
}

// kill kills node 1 and notes its bots.
func (f *failover) kill(cl *cluster, players []*Player, now time.Time) error {
	f.addr = cl.nodes[0].Addr
	f.waiting = map[*Player]bool{}
	f.noticed, f.resumed = map[*Player]time.Duration{}, map[*Player]time.Duration{}
	for _, p := range players {
		if p.C.Stats().Addr == f.addr {
			f.waiting[p] = true
		}
	}
	if f.stallFor > 0 {
		if err := cl.nodes[0].Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		f.killedAt = time.Now()
		f.contAt = f.killedAt.Add(f.stallFor)
		return nil
	}
	if err := cl.kill(0); err != nil {
		return err
	}
	f.killedAt = time.Now()
	return nil
}

// resume continues the stopped node once its stall is over.
func (f *failover) resume(cl *cluster, now time.Time) error {
	if f.contAt.IsZero() || now.Before(f.contAt) {
		return nil
	}
	f.contAt = time.Time{}
	return cl.nodes[0].Signal(syscall.SIGCONT)
}

// observe notes the bots whose first confirmation since the kill came
// through another node.
func (f *failover) observe(players []*Player) {
	if f.killedAt.IsZero() || len(f.waiting) == 0 {
		return
	}
	for p := range f.waiting {
		if _, ok := f.noticed[p]; !ok && p.Link.Lost.After(f.killedAt) {
			f.noticed[p] = p.Link.Lost.Sub(f.killedAt)
		}
		if _, ok := f.resumed[p]; !ok && p.Link.Back.After(f.killedAt) && p.C.Stats().Addr != f.addr {
			f.resumed[p] = p.Link.Back.Sub(f.killedAt)
			if _, ok := f.noticed[p]; !ok {
				f.noticed[p] = f.resumed[p] // lost and back within one frame
			}
		}
		if p.Confirmed.After(f.killedAt) && p.ConfirmedAddr != f.addr {
			f.took = append(f.took, p.Confirmed.Sub(f.killedAt))
			delete(f.waiting, p)
		}
	}
}

// dialBots connects the bots at once (each waits for its welcome and
// clock sync) and makes them Players: bot i to addrs[i mod len(addrs)],
// with the others as its failover addresses. A cluster's member refuses
// clients until it has caught up with its peers: a bot dials again until
// dialTimeout. Traced bots tag their calls (Player.Trace).
func dialBots(ctx context.Context, addrs []string, lag *Lag, s Settings, traced bool) ([]*Player, error) {
	players := make([]*Player, s.Bots)
	errs := make([]error, s.Bots)
	var wg sync.WaitGroup
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			opts := s.Options
			opts.Registry = game.Registry()
			if traced {
				opts.Registry = clusterGame(s.Regions)()
			}
			opts.PacketConn = lag.PacketConn
			opts.Failover = failoverAddrs(addrs, i%len(addrs))
			addr := addrs[i%len(addrs)]
			c, err := netcode.Dial(dctx, addr, opts)
			for err != nil && len(addrs) > 1 && dctx.Err() == nil {
				select {
				case <-dctx.Done():
				case <-time.After(100 * time.Millisecond):
					c, err = netcode.Dial(dctx, addr, opts)
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("match: bot %d: %w", i, err)
				return
			}
			p, err := NewPlayer(c, fmt.Sprintf("bot%d", i), game.NewBot(s.Seed<<8|uint64(i)))
			if err != nil {
				c.Close()
				errs[i] = err
				return
			}
			if traced {
				p.Trace = NewTrace(uint32(i))
			}
			players[i] = p
		}()
	}
	wg.Wait()
	return players, errors.Join(errs...)
}

// settle stops the bots and updates the players until every call has its
// result, or maxSettle passes.
func settle(ctx context.Context, players []*Player, tick *time.Ticker, fo *failover) error {
	for _, p := range players {
		p.Idle = true
	}
	end := time.Now().Add(maxSettle)
	for {
		now := time.Now()
		waiting := 0
		for _, p := range players {
			p.Frame(now)
			waiting += p.Awaiting()
		}
		fo.observe(players)
		if waiting == 0 || !now.Before(end) {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// checkCluster ends a cluster match: the bots stay idle (updating) for
// quiesce, so that every value is final on every node, then each
// surviving authority's state is read and the calls' traces, the
// replicas' agreement and the failover times are summed up. A bot of the
// killed node with no confirmed call through another node by the end of
// the quiescence is counted with the time until then (a lower bound).
func checkCluster(ctx context.Context, cl *cluster, players []*Player, tick *time.Ticker, fo *failover, reg func() *netcode.Registry) (*quality.Cluster, error) {
	until := time.Now().Add(quiesce)
	for now := time.Now(); now.Before(until); now = time.Now() {
		if err := fo.resume(cl, now); err != nil {
			return nil, err
		}
		for _, p := range players {
			p.Frame(now)
		}
		fo.observe(players)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	waited := time.Since(fo.killedAt)
	var states []map[string][]byte
	rejoined := 0
	for _, c := range cl.survivors() {
		st, rj, err := observe(ctx, c.Addr, reg())
		if err != nil {
			return nil, err
		}
		states = append(states, st)
		if rj {
			rejoined++
		}
	}
	ledgers := make([]*Trace, len(players))
	for i, p := range players {
		ledgers[i] = p.Trace
	}
	tc := CheckTraces(ledgers, states)
	div, compared := Divergence(states)
	cf := &quality.Cluster{
		Nodes: len(cl.nodes), ConfirmedCalls: tc.Confirmed, LostConfirmedCalls: tc.Lost,
		DuplicateCalls: tc.Duplicate, UnconfirmedApplied: tc.Unconfirmed, StrayTraces: tc.Stray,
		ReplicaDivergence: div, ComparedPaths: compared, RejoinedWhenRead: rejoined,
	}
	if !fo.killedAt.IsZero() {
		took := slices.Clone(fo.took)
		for range fo.waiting {
			took = append(took, waited)
		}
		ms := make([]float64, len(took))
		for i, d := range took {
			ms[i] = float64(d) / float64(time.Millisecond)
		}
		cf.Killed = 1
		if fo.stallFor > 0 {
			cf.Killed, cf.StalledMs = 0, float64(fo.stallFor)/float64(time.Millisecond)
		}
		cf.FailoverClients = len(took)
		cf.FailoverUnconfirmed = len(fo.waiting)
		cf.FailoverMsP50 = quality.Quantile(ms, 0.5)
		cf.FailoverMsP99 = quality.Quantile(ms, 0.99)
		cf.FailoverMsMax = quality.Quantile(ms, 1)
		cf.FailoverNoticedMsP50, cf.FailoverNoticedMsP99 = msQuantiles(fo.noticed)
		cf.FailoverResumedMsP50, cf.FailoverResumedMsP99 = msQuantiles(fo.resumed)
	}
	return cf, nil
}

// msQuantiles returns the p50 and p99 of the durations, in milliseconds.
func msQuantiles(ds map[*Player]time.Duration) (p50, p99 float64) {
	ms := make([]float64, 0, len(ds))
	for _, d := range ds {
		ms = append(ms, float64(d)/float64(time.Millisecond))
	}
	return quality.Quantile(ms, 0.5), quality.Quantile(ms, 0.99)
}

// crossMotion counts the own-motion writes recorded for boundary
// crossings.
func crossMotion(recs []*quality.Recorder) uint64 {
	var n uint64
	for _, r := range recs {
		n += r.Correction.Len()
	}
	return n
}

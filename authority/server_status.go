package authority

import (
	"context"
	"log/slog"
	"time"

	"github.com/rewindnet/rewind/authority/membership"
	"github.com/rewindnet/rewind/timesync"
)

// StatusOptions says how much a Status holds.
type StatusOptions struct {
	// Sessions is how many sessions to list, lowest ids first (zero:
	// none; Status.SessionsTotal counts them all in any case).
	Sessions int
	// Reruns asks for the latest re-runs with their explanations.
	Reruns bool
}

// Status is what an operator sees of a server: its counters, sessions,
// latest re-runs, cluster, archive and readiness, taken by the node
// goroutine at one instant (the transport and archive counters just
// after).
type Status struct {
	Stats ServerStats
	// Now is the node's clock when the status was taken, Horizon its
	// finality horizon (values older are final): Now - Horizon is how far
	// finality trails the clock.
	Now, Horizon int64
	// Clock is the synced clock's state (a reference clock has no error
	// bound to speak of).
	Clock         timesync.Status
	Sessions      []SessionStatus
	SessionsTotal int
	Reruns        []Rerun
	// Cluster is nil without a cluster.
	Cluster *ClusterStatus
	// Data lists the archive's directories (none: in memory).
	Data []string
	// Serving is set while Serve runs and is not shutting down; Joined
	// once the node holds what its cluster's live members hold and sees a
	// quorum (always, without a cluster). A server whose Status was taken
	// after it stopped has neither.
	Serving, Joined bool
	// Stopped is set once Serve has returned (the node goroutine is gone,
	// and Stats holds its last counters).
	Stopped bool
	// Functions names the registered functions.
	Functions []string
}

// SessionStatus is a session with what its transport knows.
type SessionStatus struct {
	SessionInfo
	// RTT is the transport's smoothed round trip (zero before one was
	// measured); Offset the client's clock offset estimated from it
	// (SessionInfo.ClockOffset), when OffsetKnown.
	RTT         time.Duration
	Offset      time.Duration
	OffsetKnown bool
}

// ClusterStatus is the node's view of its cluster with the membership's.
type ClusterStatus struct {
	ClusterInfo
	Gossip  string
	Members []membership.Member
	// Resets counts the times this server restarted its node afresh
	// after regaining a quorum it had lost.
	Resets uint64
}

// Status returns the server's status. It asks the node goroutine, and
// returns ctx's error if that goroutine does not answer before ctx ends
// (it is busy, or Serve has not started yet); after Serve returned it
// reports the counters the node had when it stopped, and nothing else.
// Status is safe to call from any goroutine.
func (s *Server) Status(ctx context.Context, opts StatusOptions) (Status, error) {
	var st Status
	done := make(chan struct{})
	f := func() {
		defer close(done)
		n := s.node
		st.Stats.Node, st.Stats.Funcs = n.Stats(), n.FuncStats()
		st.Stats.Rounds, st.Stats.LongestRound = s.rounds, s.longest
		st.Stats.Transport.Refused, st.Stats.Transport.TooSlow = s.refused, s.slow
		st.Now, st.Horizon = n.Now(), n.Store().Horizon()
		st.Serving = true
		select {
		case <-s.drain:
			st.Serving = false
		default:
		}
		if opts.Sessions > 0 {
			infos, _ := n.Sessions(opts.Sessions)
			st.Sessions = make([]SessionStatus, len(infos))
			for i, si := range infos {
				ss := SessionStatus{SessionInfo: si}
				if p := s.peers[si.ID]; p != nil {
					ss.RTT = p.sess.Stats().SRTT
				}
				ss.Offset, ss.OffsetKnown = si.ClockOffset(ss.RTT)
				st.Sessions[i] = ss
			}
		}
		st.SessionsTotal = len(n.sessions)
		if opts.Reruns {
			st.Reruns = n.Reruns()
		}
		st.Joined = true
		if s.cl != nil {
			ci := n.ClusterInfo()
			st.Joined = ci.CaughtUp && ci.Quorum
			st.Cluster = &ClusterStatus{ClusterInfo: ci, Gossip: s.cl.mem.Addr(), Members: s.cl.mem.Known(), Resets: s.cl.resets}
		}
	}
	select {
	case s.statusReq <- f:
		<-done
	case <-s.stopped:
		st = s.stoppedStatus()
	case <-s.done:
		st = s.stoppedStatus()
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
	// The transport's and the archive's counters, as Stats reads them.
	st.Stats.Transport = s.transportStats(st.Stats.Transport.Refused, st.Stats.Transport.TooSlow)
	if s.arch != nil {
		st.Stats.Archive = s.arch.Stats()
	}
	st.Clock = s.clock.Status()
	st.Data = s.cfg.Data.Dirs
	if reg := s.cfg.Node.Registry; reg != nil {
		st.Functions = reg.Names()
	}
	return st, nil
}

// stoppedStatus is the status of a server whose node goroutine stopped
// (or never ran): its last counters.
func (s *Server) stoppedStatus() Status {
	s.mu.Lock()
	ns := s.lastNode
	s.mu.Unlock()
	return Status{Stopped: true, Stats: ServerStats{Node: ns.stats, Funcs: ns.funcs, Rounds: ns.rounds, LongestRound: ns.longest,
		Transport: TransportStats{Refused: ns.refused, TooSlow: ns.tooSlow}}}
}

// logNotes logs the node's refusals and closes: each names the session,
// its player and the reason. Closes for misbehaviour are warnings; a
// client leaving, or a request refused, is information.
func (s *Server) logNotes() {
	for _, nt := range s.node.TakeNotes() {
		attrs := []slog.Attr{
			slog.Uint64("session", uint64(nt.Session)),
			slog.String("player", nt.Player),
			slog.String("reason", nt.Reason),
			slog.String("cause", nt.Cause.String()),
			slog.Uint64("creator", uint64(nt.Creator)),
			slog.String("remote", nt.Remote),
			slog.Int("strikes", nt.Strikes),
		}
		if nt.Peer >= 0 {
			attrs = append(attrs, slog.Int("peer", nt.Peer))
		}
		switch {
		case !nt.Closed:
			s.log.LogAttrs(context.Background(), slog.LevelInfo, "request refused", attrs...)
		case abusive(nt.Cause):
			s.log.LogAttrs(context.Background(), slog.LevelWarn, "session closed", attrs...)
		default:
			s.log.LogAttrs(context.Background(), slog.LevelInfo, "session closed", attrs...)
		}
	}
}

// abusive reports whether a session closed for cause misbehaved (or was
// broken), rather than left or was shed.
func abusive(c Cause) bool {
	switch c {
	case CauseProtocol, CauseVersion, CauseAuth, CauseRateLimit, CauseLimit, CauseStrikes, CauseHelloTimeout, CauseInternal:
		return true
	}
	return false
}

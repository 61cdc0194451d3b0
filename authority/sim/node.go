package sim

import (
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
)

// NodeServer adapts n to the simulator's Server, so that the simulator
// drives the very node authority.Server runs in production.
func NodeServer(n *authority.Node) Server { return simServer{n} }

type simServer struct{ n *authority.Node }

func (s simServer) Connect(now int64, remote string) (uint64, error) {
	id, err := s.n.Connect(now, remote)
	return uint64(id), err
}

func (s simServer) Step(now int64, id uint64, frame []byte) {
	s.n.Step(now, authority.SessionID(id), frame)
}

func (s simServer) Disconnect(now int64, id uint64) { s.n.Disconnect(now, authority.SessionID(id)) }

func (s simServer) Tick(now int64) { s.n.Tick(now) }

func (s simServer) Ready(emit func(id uint64, frames [][]byte, close bool, reason string)) {
	for _, o := range s.n.Ready() {
		emit(uint64(o.Session), o.Frames, o.Close, o.Reason)
	}
}

func (s simServer) Verify() error { return s.n.Store().Verify() }

func (s simServer) Latest(prefix string, fn func(path string, value []byte)) {
	st := s.n.Store()
	st.PathsUnder(prefix, func(path string) bool {
		var last netcode.PathValue
		found := false
		st.History(path, func(v netcode.PathValue) bool {
			if v.State == netcode.Valid && v.Flags&netcode.FlagEvent == 0 {
				last, found = v, true
			}
			return true
		})
		if found {
			fn(path, last.Value)
		}
		return true
	})
}

func (s simServer) ConnectPeer(now int64, id uint8, remote string) (uint64, error) {
	sid, err := s.n.ConnectPeer(now, id, remote)
	return uint64(sid), err
}

func (s simServer) SetShardMap(now int64, m *shardmap.Map) { s.n.SetShardMap(now, m) }

// ShardCounters returns the calls the node forwarded to an owner and the
// runs it refused for touching a range it did not hold yet.
func (s simServer) ShardCounters() (forwarded, outside uint64) {
	st := s.n.Stats()
	return st.CallsForwarded, st.RunsOutside
}

// LateCounters returns the calls the node refused as older than the
// change window, those it accepted older than it after a failover, the
// re-runs it put off for a peer's and the calls it gave up re-running.
func (s simServer) LateCounters() (late, failover, waited, abandoned uint64) {
	st := s.n.Stats()
	return st.Refusals[authority.CauseLate] + st.Refusals[authority.CauseStale], st.FailoverCalls, st.RerunsWaited, st.RerunsAbandoned
}

func (s simServer) Holds(path string) bool { return s.n.Holds(path) }

func (s simServer) NeedsReset() bool { return s.n.NeedsReset() }

// QuorumCounters returns the quorums the node regained with its state
// kept and the takeovers it completed after another node had.
func (s simServer) QuorumCounters() (kept, adopted uint64) {
	st := s.n.Stats()
	return st.QuorumKept, st.TakeoversAdopted
}

func (s simServer) PeerUp(now int64, id uint8)   { s.n.PeerUp(now, id) }
func (s simServer) PeerDown(now int64, id uint8) { s.n.PeerDown(now, id) }

func (s simServer) Counters() (calls, reruns uint64) {
	st := s.n.Stats()
	return st.Calls, st.Reruns
}

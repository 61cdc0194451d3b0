package authority

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rewindnet/rewind/authority/membership"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode/transport"
)

// ServerCluster makes a server one authority of a cluster: membership and
// failure detection over memberlist, and replication streams to the other
// members (dialled at the client address each advertises, on the same
// port as the game's clients). Node.Cluster must hold the cluster's key.
type ServerCluster struct {
	// Gossip is the address membership binds ("127.0.0.1:7946"; port 0
	// picks one). Empty: no cluster.
	Gossip string
	// Join lists gossip addresses of members to join; empty founds a
	// cluster the others join.
	Join []string
	// Advertise is the address the other authorities (and clients told
	// of this one) reach this server at; empty: the address it listens
	// on, which must then not be a wildcard.
	Advertise string
	// Tune, if set, adjusts memberlist's settings after
	// membership.GameLAN.
	Tune func(*memberlist.Config)
	// DialTimeout bounds each dial to a peer (zero: the transport's
	// HandshakeTimeout); a failed dial is retried every RedialEvery while
	// the peer is a member (zero: 500 ms).
	DialTimeout, RedialEvery time.Duration
	// Ranges are shard map entries this server sets when it starts (the
	// same on every member, or on one: the map is gossiped and merged).
	// None: the map stays empty and every member owns every path.
	Ranges []RangeOwners
}

// RangeOwners gives a range of paths its owners (the first the primary).
type RangeOwners struct {
	Range  shardmap.Range
	Owners []uint8
}

func (c *ServerCluster) enabled() bool { return c.Gossip != "" }

func (c *ServerCluster) validate(node *Config) error {
	if !c.enabled() {
		return nil
	}
	if len(node.Cluster.Key) == 0 {
		return fmt.Errorf("%w: a cluster (Cluster.Gossip) needs Node.Cluster.Key", ErrBadConfig)
	}
	if c.DialTimeout < 0 || c.RedialEvery < 0 {
		return fmt.Errorf("%w: negative cluster dial timing", ErrBadConfig)
	}
	return nil
}

// derivedKey derives a key for purpose from the cluster key, so one secret
// configures the cluster: gossip encryption, resume tokens.
func derivedKey(clusterKey []byte, purpose string) []byte {
	h := sha256.New()
	h.Write([]byte("rewind/cluster/" + purpose + "/"))
	h.Write(clusterKey)
	return h.Sum(nil)
}

// clusterShell is the server's part of a cluster, owned by the node
// goroutine (but for the membership's own goroutines and the dialers,
// which only send on dialed).
type clusterShell struct {
	mem     *membership.Membership
	smap    *mapState // the shard map, gossiped
	dialed  chan dialResult
	members map[uint8]membership.Event // live members by node id (latest Up)
	dialing map[uint8]bool
	lastTry map[uint8]time.Time
	outs    map[SessionID]uint8 // this node's replication streams, by session
	resets  uint64
	moving  sync.Mutex // held by the range move under way (MoveRange)

	// viewMu guards what MoveRange reads from other goroutines: the live
	// members' advertised map versions (from membership's events, as the
	// node goroutine takes them) and the version handed to this node.
	viewMu sync.Mutex
	view   map[uint8]uint64
	handed uint64
}

type dialResult struct {
	id   uint8
	name string // the member it was dialled for
	sess *transport.Session
	err  error
}

// startCluster joins the cluster, if configured.
func (s *Server) startCluster() error {
	c := &s.cfg.Cluster
	if !c.enabled() {
		return nil
	}
	adv := c.Advertise
	if adv == "" {
		adv = s.Addr().String()
		if host, _, err := net.SplitHostPort(adv); err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) {
			return fmt.Errorf("%w: listening on %s, the cluster needs Cluster.Advertise", ErrBadConfig, adv)
		}
	}
	smap := &mapState{m: shardmap.New(), changed: make(chan struct{}, 1)}
	for _, r := range c.Ranges {
		if _, err := smap.m.Set(r.Range, r.Owners, s.cfg.Node.NodeID); err != nil {
			return fmt.Errorf("%w: range %v: %w", ErrBadConfig, r.Range, err)
		}
	}
	mem, err := membership.Start(membership.Config{
		Meta:      membership.Meta{NodeID: s.cfg.Node.NodeID, ClientAddr: adv, PeerAddr: adv, MapVersion: smap.m.Version()},
		BindAddr:  c.Gossip,
		Join:      c.Join,
		SecretKey: derivedKey(s.cfg.Node.Cluster.Key, "gossip")[:32],
		State:     smap,
		Tune:      c.Tune,
		Logger:    s.log,
	})
	if err != nil {
		return fmt.Errorf("authority: %w", err)
	}
	s.cl = &clusterShell{
		mem:     mem,
		smap:    smap,
		dialed:  make(chan dialResult, 16),
		members: make(map[uint8]membership.Event),
		dialing: make(map[uint8]bool),
		lastTry: make(map[uint8]time.Time),
		outs:    make(map[SessionID]uint8),
		view:    make(map[uint8]uint64),
	}
	s.log.Info("joined the cluster", "gossip", mem.Addr(), "name", mem.Name(), "members", len(mem.Members()))
	s.mapChanged()
	return nil
}

// mapState is the shard map as membership gossips it: merged from its
// goroutines (under mu), handed to the node by the node goroutine.
type mapState struct {
	mu      sync.Mutex
	m       *shardmap.Map
	changed chan struct{} // capacity 1: the map changed since the node took it
}

func (ms *mapState) Local() []byte {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.m.AppendBinary(nil)
}

func (ms *mapState) Merge(b []byte) {
	entries, err := shardmap.DecodeEntries(b)
	if err != nil {
		return // not ours, or garbled: gossip brings the map again
	}
	ms.mu.Lock()
	changed := false
	for _, e := range entries {
		c, _ := ms.m.Apply(e)
		changed = changed || c
	}
	ms.mu.Unlock()
	if changed {
		select {
		case ms.changed <- struct{}{}:
		default:
		}
	}
}

// SetRange gives a range of paths its owners (the first the primary) in
// the cluster's shard map, and gossips the change. It is safe from any
// goroutine.
func (s *Server) SetRange(r shardmap.Range, owners []uint8) error {
	if s.cl == nil {
		return ErrNoCluster
	}
	_, err := s.setEntry(r, owners)
	return err
}

// ShardMap returns a copy of the cluster's shard map (nil without a
// cluster). It is safe from any goroutine.
func (s *Server) ShardMap() *shardmap.Map {
	if s.cl == nil {
		return nil
	}
	s.cl.smap.mu.Lock()
	defer s.cl.smap.mu.Unlock()
	return s.cl.smap.m.Clone()
}

// mapChanged hands the node the current shard map (none while it is empty:
// every member owns every path) and advertises its version.
func (s *Server) mapChanged() {
	m := s.ShardMap()
	now := s.clock.Now()
	if m.Len() == 0 {
		s.node.SetShardMap(now, nil)
	} else {
		s.node.SetShardMap(now, m)
	}
	s.cl.viewMu.Lock()
	s.cl.handed = m.Version()
	s.cl.viewMu.Unlock()
	s.cl.mem.SetMapVersion(m.Version())
}

// GossipAddr returns the address the server's membership gossips at
// ("" without a cluster).
func (s *Server) GossipAddr() string {
	if s.cl == nil {
		return ""
	}
	return s.cl.mem.Addr()
}

// membersChanged hands membership changes to the node: a member up (or a
// new incarnation of one) is dialled, one down is forgotten.
func (s *Server) membersChanged() {
	now := s.clock.Now()
	for _, ev := range s.cl.mem.Events() {
		id := ev.Meta.NodeID
		if id == s.cfg.Node.NodeID {
			continue
		}
		cur, known := s.cl.members[id]
		switch ev.Kind {
		case membership.Up:
			if known && cur.Name != ev.Name {
				// A new incarnation before the old one's Down: the old
				// one failed.
				s.log.Info("authority restarted", "node", id, "name", ev.Name)
				s.node.PeerDown(now, id)
			}
			s.cl.members[id] = ev
			s.node.PeerUp(now, id)
			s.log.Info("authority up", "node", id, "addr", ev.Meta.ClientAddr)
			s.dialPeer(id)
		case membership.Down:
			if !known || cur.Name != ev.Name {
				continue // an incarnation already replaced
			}
			delete(s.cl.members, id)
			s.log.Warn("authority down", "node", id)
			s.node.PeerDown(now, id)
		}
	}
	s.cl.viewMu.Lock()
	clear(s.cl.view)
	for id, ev := range s.cl.members {
		s.cl.view[id] = ev.Meta.MapVersion
	}
	s.cl.viewMu.Unlock()
}

// dialPeer opens this node's replication stream to member id, unless one
// is open or being dialled.
func (s *Server) dialPeer(id uint8) {
	cl := s.cl
	m, ok := cl.members[id]
	if !ok || cl.dialing[id] || slices.Contains(mapValues(cl.outs), id) {
		return
	}
	cl.dialing[id] = true
	cl.lastTry[id] = time.Now()
	timeout := s.cfg.Cluster.DialTimeout
	if timeout == 0 {
		timeout = s.cfg.Transport.HandshakeTimeout
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		sess, err := transport.Dial(ctx, m.Meta.ClientAddr, s.cfg.Transport)
		select {
		case cl.dialed <- dialResult{id: id, name: m.Name, sess: sess, err: err}:
		case <-s.stopped:
			if sess != nil {
				sess.Close(ShutdownReason)
			}
		}
	}()
}

func mapValues(m map[SessionID]uint8) []uint8 {
	out := make([]uint8, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// peerDialed attaches a dialled replication stream to the node.
func (s *Server) peerDialed(d dialResult) {
	cl := s.cl
	cl.dialing[d.id] = false
	if d.err != nil {
		s.log.Debug("dial to authority failed", "node", d.id, "error", d.err)
		return
	}
	if m, ok := cl.members[d.id]; !ok || m.Name != d.name {
		d.sess.Close("member gone")
		return
	}
	remote := d.sess.RemoteAddr().String()
	id, err := s.node.ConnectPeer(s.clock.Now(), d.id, remote)
	if err != nil {
		s.log.Warn("replication stream refused", "node", d.id, "error", err)
		d.sess.Close(err.Error())
		return
	}
	s.mu.Lock()
	s.conns[d.sess] = struct{}{}
	s.mu.Unlock()
	p := &peer{id: id, sess: d.sess}
	s.peers[id] = p
	cl.outs[id] = d.id
	s.log.Debug("replication stream open", "node", d.id, "session", id)
	d.sess.Notify(func() { s.markReady(p) })
}

// clusterTick redials members without a stream and replaces a node whose
// calls were taken over while it was without a quorum (NeedsReset) with a
// fresh one, which catches up from the others.
func (s *Server) clusterTick() {
	cl := s.cl
	every := s.cfg.Cluster.RedialEvery
	if every == 0 {
		every = 500 * time.Millisecond
	}
	for id := range cl.members {
		if time.Since(cl.lastTry[id]) >= every {
			s.dialPeer(id)
		}
	}
	if s.node.NeedsReset() {
		s.resetNode()
	}
}

// streamGone forgets a replication stream whose session ended.
func (s *Server) streamGone(id SessionID) {
	if s.cl != nil {
		delete(s.cl.outs, id)
	}
}

// resetNode replaces the node with a fresh one: every session is closed
// (clients resume on another authority, or here once it has caught up),
// the members are told to it again and dialled.
func (s *Server) resetNode() {
	s.log.Warn("rejoining the cluster afresh: this authority was cut off from its quorum and the others took its calls over")
	now := s.clock.Now()
	for id, p := range s.peers {
		s.forget(p)
		s.closeAsync(p.sess, "authority rejoining its cluster")
		delete(s.peers, id)
	}
	clear(s.cl.outs)
	cfg := s.cfg.Node
	cfg.Persist = false // its archive holds the state being discarded
	node, err := NewNode(cfg)
	if err != nil {
		s.log.Error("cannot make a fresh node", "error", err)
		return
	}
	s.node = node
	s.cl.resets++
	for id := range s.cl.members {
		node.PeerUp(now, id)
		s.cl.lastTry[id] = time.Time{}
	}
	s.mapChanged()
}

// stopCluster leaves the cluster: the others see this authority down at
// once (a crash is noticed by failure detection instead).
func (s *Server) stopCluster() {
	if s.cl != nil {
		s.cl.mem.Leave(time.Second)
	}
}

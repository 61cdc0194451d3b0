// Package membership is the cluster's membership and failure detection:
// a thin shell over github.com/hashicorp/memberlist (SWIM with Lifeguard)
// that turns its callbacks into Up and Down events for the authority's
// pure node, carries each node's small metadata (id, addresses, shard-map
// version), and gossips one piece of shared state (the shard map) through
// memberlist's push-pull and broadcast channels.
//
// # Settings
//
// GameLAN tunes memberlist for game servers on one network: a crashed node
// is probed every 250 ms, suspected after a missed probe (100 ms timeout,
// then indirect probes) and declared dead SuspicionMult × ProbeInterval
// later, which with few nodes makes about 1–1.5 s on loopback
// (BenchmarkFailureDetection measures it). Lifeguard's awareness stretches
// the probe timeout on a node that misses its own deadlines, and a
// suspected node that is alive refutes the suspicion, so a loaded but
// healthy node is not declared dead as readily as with plain SWIM.
//
// # Pitfalls designed around
//
//   - A node restarting under the same name with a new address is refused
//     ("conflicting address") until the old one is reclaimed: every boot
//     takes a fresh name, "n<id>-<boot>", and the node id travels in the
//     metadata, so a restarted node is a new member whose id is known.
//   - Delegate callbacks must never block, or memberlist's packet loop
//     stalls: every callback only takes a mutex for a map update or a
//     non-blocking signal; events are coalesced per member, so the queue
//     is bounded by the number of members.
//   - Metadata is capped at 512 bytes by memberlist: Meta encodes in well
//     under that (addresses of at most 128 bytes each).
package membership

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Errors of the package.
var (
	ErrConfig = errors.New("membership: bad config")
	ErrMeta   = errors.New("membership: malformed metadata")
	ErrJoin   = errors.New("membership: join failed")
)

// MaxAddrBytes bounds each address in Meta.
const MaxAddrBytes = 128

// Meta is what a node tells the cluster about itself, in memberlist's
// node metadata.
type Meta struct {
	NodeID     uint8
	Boot       uint64 // random per process start: tells a restarted node from its old self
	ClientAddr string // where game clients connect (UDP, KCP)
	PeerAddr   string // where other authorities connect (UDP, KCP)
	MapVersion uint64 // the shard map version this node holds
}

const metaFormat = 1

// AppendBinary appends m's encoding: format byte, node id, boot (8 bytes),
// the two addresses (uvarint length, bytes) and the map version (uvarint).
func (m Meta) AppendBinary(b []byte) []byte {
	b = append(b, metaFormat, m.NodeID)
	b = binary.BigEndian.AppendUint64(b, m.Boot)
	for _, a := range []string{m.ClientAddr, m.PeerAddr} {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	return binary.AppendUvarint(b, m.MapVersion)
}

// DecodeMeta reads an encoding made by AppendBinary, checking every length.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) < 10 || b[0] != metaFormat {
		return m, fmt.Errorf("%w: header", ErrMeta)
	}
	m.NodeID = b[1]
	m.Boot = binary.BigEndian.Uint64(b[2:])
	b = b[10:]
	for _, dst := range []*string{&m.ClientAddr, &m.PeerAddr} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > MaxAddrBytes || uint64(len(b)-k) < n {
			return m, fmt.Errorf("%w: address", ErrMeta)
		}
		*dst = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	v, k := binary.Uvarint(b)
	if k <= 0 || k != len(b) {
		return m, fmt.Errorf("%w: map version", ErrMeta)
	}
	m.MapVersion = v
	return m, nil
}

// State is the shared state gossiped with the membership: the shard map.
// Its methods are called from memberlist's goroutines and must not block
// (take a mutex for a merge, no more).
type State interface {
	// Local returns the encoded state, for a push-pull with a peer.
	Local() []byte
	// Merge merges a peer's encoded state (Local's output, or a
	// broadcast); malformed input is dropped.
	Merge(b []byte)
}

// Config configures a Membership.
type Config struct {
	// Meta describes this node; Boot is filled in when zero.
	Meta Meta
	// BindAddr is the gossip address ("127.0.0.1:7946"; port 0 picks a
	// free one). AdvertiseAddr, if set, is the address others reach it at.
	BindAddr, AdvertiseAddr string
	// Join lists gossip addresses of members to join at Start (none: a
	// cluster of one, which others join).
	Join []string
	// SecretKey, if set (16, 24 or 32 bytes), encrypts and authenticates
	// all gossip: a node without it cannot join or forge messages.
	SecretKey []byte
	// State is gossiped with the membership (optional).
	State State
	// Tune, if set, adjusts the memberlist settings after GameLAN.
	Tune func(*memberlist.Config)
	// Logger receives memberlist's logs at debug level. Nil discards them.
	Logger *slog.Logger
}

// GameLAN returns memberlist's LAN settings tuned for game servers on one
// network (see the package documentation).
func GameLAN() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.ProbeInterval = 250 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 3
	c.SuspicionMaxTimeoutMult = 4
	c.GossipInterval = 50 * time.Millisecond
	c.GossipNodes = 3
	c.PushPullInterval = 5 * time.Second
	c.TCPTimeout = 2 * time.Second
	c.DeadNodeReclaimTime = 10 * time.Second
	c.GossipToTheDeadTime = 5 * time.Second
	return c
}

// EventKind says what happened to a member.
type EventKind uint8

const (
	// Up: the member joined (or its metadata changed: Meta is current).
	Up EventKind = iota + 1
	// Down: the member left or was declared dead.
	Down
)

func (k EventKind) String() string {
	switch k {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "?"
}

// Event is a change of one member, as the node sees it.
type Event struct {
	Kind EventKind
	Name string // memberlist name: unique per boot
	Meta Meta
}

// Membership is a running member of the cluster.
type Membership struct {
	list  *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	self  string

	mu      sync.Mutex // guards meta, pending, order, known
	meta    Meta
	pending map[string]Event // latest unseen event per member
	order   []string         // members of pending, in first-changed order
	signal  chan struct{}    // non-blocking: events are waiting
	known   map[string]Member
}

// Start joins (or founds) the cluster.
func Start(cfg Config) (*Membership, error) {
	if cfg.Meta.Boot == 0 {
		var b [8]byte
		rand.Read(b[:])
		cfg.Meta.Boot = binary.BigEndian.Uint64(b[:]) | 1
	}
	if len(cfg.Meta.ClientAddr) > MaxAddrBytes || len(cfg.Meta.PeerAddr) > MaxAddrBytes {
		return nil, fmt.Errorf("%w: address longer than %d bytes", ErrConfig, MaxAddrBytes)
	}
	host, port, err := splitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: BindAddr: %w", ErrConfig, err)
	}
	mc := GameLAN()
	if cfg.Tune != nil {
		cfg.Tune(mc)
	}
	m := &Membership{
		meta:    cfg.Meta,
		pending: make(map[string]Event),
		signal:  make(chan struct{}, 1),
		known:   make(map[string]Member),
	}
	m.self = fmt.Sprintf("n%d-%016x", cfg.Meta.NodeID, cfg.Meta.Boot)
	mc.Name = m.self
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.AdvertiseAddr != "" {
		ah, ap, err := splitHostPort(cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("%w: AdvertiseAddr: %w", ErrConfig, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	}
	mc.SecretKey = cfg.SecretKey
	if cfg.Logger != nil {
		mc.Logger = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)
	} else {
		mc.Logger = log.New(io.Discard, "", 0)
	}
	d := &delegate{m: m, state: cfg.State}
	mc.Delegate = d
	mc.Events = d
	m.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return m.list.NumMembers() }, RetransmitMult: mc.RetransmitMult}
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership: start: %w", err)
	}
	m.list = list
	if len(cfg.Join) > 0 {
		if _, err := list.Join(cfg.Join); err != nil {
			list.Shutdown()
			return nil, fmt.Errorf("%w: %w", ErrJoin, err)
		}
	}
	return m, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

// Name returns this member's name (unique per boot).
func (m *Membership) Name() string { return m.self }

// Addr returns the gossip address this member is reached at.
func (m *Membership) Addr() string {
	n := m.list.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Signal is readable whenever events are waiting for Events. It never
// blocks a sender: several changes may share one signal.
func (m *Membership) Signal() <-chan struct{} { return m.signal }

// Events returns the changes since the last call, one per member (its
// latest), in the order members first changed. This member's own join is
// not reported.
func (m *Membership) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Event, 0, len(m.order))
	for _, name := range m.order {
		out = append(out, m.pending[name])
	}
	clear(m.pending)
	m.order = m.order[:0]
	return out
}

// Members returns every member alive now, this one included, sorted by
// name.
func (m *Membership) Members() []Event {
	var out []Event
	for _, n := range m.list.Members() {
		meta, err := DecodeMeta(n.Meta)
		if err != nil {
			continue
		}
		out = append(out, Event{Kind: Up, Name: n.Name, Meta: meta})
	}
	slices.SortFunc(out, func(a, b Event) int { return bytes.Compare([]byte(a.Name), []byte(b.Name)) })
	return out
}

// SetMapVersion updates the shard-map version in this node's metadata and
// gossips it.
func (m *Membership) SetMapVersion(v uint64) error {
	m.mu.Lock()
	m.meta.MapVersion = v
	m.mu.Unlock()
	return m.list.UpdateNode(time.Second)
}

// Broadcast gossips b (an encoded state change) to every member, best
// effort; push-pull carries the whole state in any case.
func (m *Membership) Broadcast(b []byte) {
	m.queue.QueueBroadcast(broadcast(slices.Clone(b)))
}

// Leave tells the others this member is leaving (they see Down at once),
// then stops. Shutdown without Leave looks like a crash to them.
func (m *Membership) Leave(timeout time.Duration) error {
	err := m.list.Leave(timeout)
	return errors.Join(err, m.list.Shutdown())
}

// Shutdown stops gossiping at once, as a crash would.
func (m *Membership) Shutdown() error { return m.list.Shutdown() }

func (m *Membership) note(kind EventKind, n *memberlist.Node) {
	if n.Name == m.self {
		return
	}
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		return // not one of ours, or garbled: ignore
	}
	m.mu.Lock()
	if kind == Up {
		// Copied here, where memberlist holds its lock on n.
		m.known[n.Name] = Member{Name: n.Name, Addr: n.Address(), Meta: meta}
	} else {
		delete(m.known, n.Name)
	}
	if _, ok := m.pending[n.Name]; !ok {
		m.order = append(m.order, n.Name)
	}
	m.pending[n.Name] = Event{Kind: kind, Name: n.Name, Meta: meta}
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// delegate implements memberlist's Delegate and EventDelegate. Every
// method returns at once.
type delegate struct {
	m     *Membership
	state State
}

func (d *delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	b := d.m.meta.AppendBinary(nil)
	d.m.mu.Unlock()
	if len(b) > limit {
		return nil // cannot happen with MaxAddrBytes addresses; memberlist would panic
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte) {
	if d.state != nil {
		d.state.Merge(b)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte {
	if d.state == nil {
		return nil
	}
	return d.state.Local()
}

func (d *delegate) MergeRemoteState(b []byte, join bool) {
	if d.state != nil && len(b) > 0 {
		d.state.Merge(b)
	}
}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.m.note(Up, n) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.m.note(Down, n) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.note(Up, n) }

// broadcast is one gossiped state change.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// Member is one member as this one knows it.
type Member struct {
	Name string
	Addr string // its gossip address
	Meta Meta
}

// Known returns every member that joined and has not left or been
// declared dead, this one included, sorted by name: what an operator's
// page shows. It is kept from memberlist's notifications (a suspected
// member is still known), so it is safe from any goroutine.
func (m *Membership) Known() []Member {
	self := m.Addr() // memberlist's lock, not under m.mu: note runs under memberlist's
	m.mu.Lock()
	out := make([]Member, 0, len(m.known)+1)
	for _, mb := range m.known {
		out = append(out, mb)
	}
	out = append(out, Member{Name: m.self, Addr: self, Meta: m.meta})
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

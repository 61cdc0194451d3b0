package authority

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// Server errors.
var (
	// ErrServerClosed is returned by Serve on a server that was closed or
	// shut down, or that is already serving.
	ErrServerClosed = errors.New("authority: server closed")
	// ErrListener wraps the transport error that stopped the listener.
	ErrListener = errors.New("authority: listener failed")
)

// Server defaults and bounds.
const (
	DefaultTick       = 16 * time.Millisecond // about 60 ticks a second
	DefaultEventQueue = 4096                  // accepted sessions waiting for the node goroutine
	maxEventQueue     = 1 << 20
	minTick           = time.Millisecond
	maxTick           = time.Second
	// eventBatch is how many waiting events the node goroutine handles
	// before it sends what they produced, so a burst leaves in few frames
	// while one lone event is answered at once. It also bounds the frames
	// taken from one session in one round, so a busy session cannot
	// starve the others.
	eventBatch = 256
)

// ShutdownReason is the text of the Error (code CodeShutdown) every session
// receives when the server shuts down gracefully.
const ShutdownReason = "authority shutting down"

// ServerConfig configures a Server. Start from DefaultServerConfig.
type ServerConfig struct {
	// Node configures the node the server runs. An empty Node.ResumeKey
	// gets a random 32-byte key at NewServer, so sessions are resumable
	// by default on this server.
	Node Config
	// Transport configures the KCP sessions. Clients must agree on its
	// Secret and FEC settings. MaxFrame must hold the node's largest frame
	// (Node.Wire.MaxFrameBytes).
	Transport transport.Config
	// Addr is the UDP address to listen on ("host:port"; port 0 picks
	// one). It is ignored when Conn is set.
	Addr string
	// Conn, if set, is the packet conn to serve on instead of listening on
	// Addr: a lagsim.Conn, for instance. The server never closes it; the
	// caller does, after the server is done.
	Conn net.PacketConn
	// Tick is the period of Node.Tick (finality, watch flushes).
	Tick time.Duration
	// EventQueue bounds the accepted sessions waiting for the node
	// goroutine. Received frames wait in each session's transport receive
	// queue until the node goroutine drains it; a session that falls
	// Transport.RecvQueueFrames behind is closed by the transport rather
	// than stalling anything else.
	EventQueue int
	// Clock is the synced clock the node runs on. Nil makes a reference
	// clock (timesync.ReferenceConfig over the system clock): an authority
	// is the cluster's time reference unless it follows another.
	Clock *timesync.Clock
	// Logger receives the server's structured logs. Nil discards them.
	Logger *slog.Logger
	// Data, when Data.Dirs is set, makes the authority durable: every
	// accepted write and call record goes to the archive's write-ahead
	// log (group commit every Data.FlushEvery), final values go to its
	// snapshot blocks, and a restart on the same directories rebuilds the
	// node from them (Node.Restore), call records included. The resume
	// key is kept in the directories too (resume.key), unless Node.ResumeKey
	// is set, so clients resume their sessions across a restart. Empty
	// Dirs: in memory, nothing survives the process.
	Data archive.Options
	// SnapshotEvery is how often, with Data set, the values that became
	// final are written as a snapshot block (zero: DefaultSnapshotEvery).
	SnapshotEvery time.Duration
	// Cluster, when Cluster.Gossip is set, makes the server one authority
	// of a cluster sharing Node.Cluster.Key (see ServerCluster). Without
	// Node.ResumeKey the cluster's resume key is derived from the
	// cluster key, so clients resume on any member.
	Cluster ServerCluster
}

// DefaultSnapshotEvery is how often a durable server writes a snapshot.
const DefaultSnapshotEvery = time.Second

// resumeKeyFile holds a durable server's resume key in each data
// directory.
const resumeKeyFile = "resume.key"

// DefaultServerConfig serves reg on addr with the node's defaults, the
// transport's Internet preset and a 16 ms tick.
func DefaultServerConfig(addr string, reg *netcode.Registry) ServerConfig {
	return ServerConfig{
		Node:       DefaultConfig(reg),
		Transport:  transport.Internet(),
		Addr:       addr,
		Tick:       DefaultTick,
		EventQueue: DefaultEventQueue,
	}
}

// Validate reports the first bad field. Zero Tick and EventQueue take
// their defaults.
func (c *ServerConfig) Validate() error {
	if err := c.Node.Validate(); err != nil {
		return err
	}
	if len(c.Data.Dirs) > 0 {
		if err := c.Data.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	}
	if err := c.Transport.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	frame := c.Node.Wire.MaxFrameBytes
	if frame == 0 {
		frame = wire.DefaultLimits().MaxFrameBytes
	}
	switch {
	case c.Transport.MaxFrame < frame:
		return fmt.Errorf("%w: Transport.MaxFrame %d cannot carry the node's %d-byte frames", ErrBadConfig, c.Transport.MaxFrame, frame)
	case c.Tick != 0 && (c.Tick < minTick || c.Tick > maxTick):
		return fmt.Errorf("%w: Tick %v outside [%v, %v]", ErrBadConfig, c.Tick, minTick, maxTick)
	case c.EventQueue < 0 || c.EventQueue > maxEventQueue:
		return fmt.Errorf("%w: EventQueue %d outside [0, %d]", ErrBadConfig, c.EventQueue, maxEventQueue)
	case c.SnapshotEvery < 0:
		return fmt.Errorf("%w: SnapshotEvery %v", ErrBadConfig, c.SnapshotEvery)
	case c.Conn == nil && c.Addr == "":
		return fmt.Errorf("%w: neither Addr nor Conn set", ErrBadConfig)
	}
	return c.Cluster.validate(&c.Node)
}

// ServerStats is a snapshot of a server's counters.
type ServerStats struct {
	Node      Stats
	Funcs     map[string]FuncStats
	Transport TransportStats
	// Rounds counts the node goroutine's rounds (a wake-up's frames, a
	// batch of accepts or a tick, with sending what they produced) by
	// how long they took: under 1 ms, 10 ms, 100 ms, 1 s, and longer.
	// LongestRound is the longest. A round delays everything behind it:
	// frames arriving meanwhile wait in their sessions' receive queues.
	Rounds       [5]uint64
	LongestRound time.Duration
	// Archive is the archive's counters (zero without Data): the durable
	// horizon (DurableNow), log records and syncs, snapshots.
	Archive archive.Stats
}

// TransportStats sums the transport sessions a server has had.
type TransportStats struct {
	Open     int    // sessions open now (accepted, not yet fully closed)
	Accepted uint64 // sessions accepted from the listener
	Refused  uint64 // sessions the node refused at Connect
	TooSlow  uint64 // sessions closed because their send queue filled

	// Sums over every session, open and closed.
	FramesSent, FramesReceived uint64
	BytesSent, BytesReceived   uint64
	SendDropped                uint64

	// Global is kcp-go's process-wide counters (retransmissions, FEC),
	// as last read from a session; zero before the first session.
	Global transport.GlobalStats
	// Guard is what the listener's guard did with packets from
	// addresses without a session: openings admitted, garbage and
	// over-rate openings dropped.
	Guard transport.GuardStats
}

// Server runs a Node over the transport: the network half of an
// authority. See the package documentation for the loop it runs and its
// rules.
type Server struct {
	// immutable after construction
	cfg   ServerConfig
	log   *slog.Logger
	clock *timesync.Clock
	ln    *transport.Listener

	accepted  chan *transport.Session // sessions the listener accepted
	statsReq  chan chan nodeSnapshot
	statusReq chan func()   // run by the node goroutine (Status)
	stopped   chan struct{} // closed when the node goroutine stopped
	quit      chan struct{} // closed by Close
	drain     chan struct{} // closed by Shutdown
	done      chan struct{} // closed when Serve returned (or Close ran first)

	quitOnce, drainOnce, doneOnce sync.Once
	wg                            sync.WaitGroup // the accept loop, closers

	// wake tells the node goroutine that sessions are on the ready list.
	wake chan struct{}
	rmu  sync.Mutex // guards ready and peer.listed
	// ready lists the sessions whose transport has frames waiting or has
	// closed, each once, in the order they became ready.
	ready []*peer

	// arch is the archive (nil without Data); Append, AddFinal and
	// Snapshot only from the node goroutine.
	arch *archive.Archive
	// cl is the cluster's shell (nil without one), owned by the node
	// goroutine once Serve runs.
	cl *clusterShell

	// owned by the node goroutine (Serve)
	lastSnap   time.Time // when the last snapshot was asked for
	notDurable bool      // the log failed: the node refuses writes
	node       *Node
	peers      map[SessionID]*peer
	draining   []*peer           // the ready list being handled, reused
	frames     []transport.Frame // frames drained from one session, reused
	refused    uint64            // sessions the node refused
	slow       uint64            // sessions closed as too slow
	rounds     [5]uint64         // node goroutine rounds by length (ServerStats.Rounds)
	longest    time.Duration     // the longest round

	mu       sync.Mutex // guards the fields below
	state    serverState
	conns    map[*transport.Session]struct{} // accepted and not yet fully closed
	closed   TransportStats                  // totals of sessions fully closed
	lastNode nodeSnapshot                    // the node's counters when it last stopped
}

type serverState uint8

const (
	serverIdle serverState = iota
	serverServing
	serverClosed
)

// nodeSnapshot is what the node goroutine reports in one go, so the
// counters in it agree with each other.
type nodeSnapshot struct {
	stats            Stats
	funcs            map[string]FuncStats
	refused, tooSlow uint64
	rounds           [5]uint64
	longest          time.Duration
}

// peer is a session the node accepted.
type peer struct {
	id   SessionID
	sess *transport.Session
	// listed is true while the peer is on Server.ready (guarded by rmu).
	listed bool
	// gone is set by the node goroutine once the peer left s.peers.
	gone bool
}

// NewServer validates cfg, builds the node and binds the listen address,
// so a busy port is reported here and Addr is known before Serve. Close
// releases the address even if Serve never runs.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Tick == 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.EventQueue == 0 {
		cfg.EventQueue = DefaultEventQueue
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clock := cfg.Clock
	if clock == nil {
		var err error
		clock, err = timesync.New(timesync.SystemSource(), timesync.ReferenceConfig())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(cfg.Node.ResumeKey) == 0 && cfg.Cluster.enabled() {
		// One key for the cluster: a client resumes on any member.
		cfg.Node.ResumeKey = derivedKey(cfg.Node.Cluster.Key, "resume")
	}
	var arch *archive.Archive
	if len(cfg.Data.Dirs) > 0 {
		if cfg.Data.Logger == nil {
			cfg.Data.Logger = log
		}
		var err error
		if arch, err = archive.Open(cfg.Data); err != nil {
			return nil, fmt.Errorf("authority: %w", err)
		}
		if len(cfg.Node.ResumeKey) == 0 {
			if cfg.Node.ResumeKey, err = dataResumeKey(cfg.Data.Dirs); err != nil {
				arch.Close()
				return nil, err
			}
		}
		cfg.Node.Persist = true
	}
	if len(cfg.Node.ResumeKey) == 0 {
		// Resuming is on by default. The key only has to outlive this
		// server's sessions, so a random one serves a single node; a
		// cluster whose clients may resume on another node sets one.
		cfg.Node.ResumeKey = make([]byte, 32)
		if _, err := rand.Read(cfg.Node.ResumeKey); err != nil {
			return nil, fmt.Errorf("authority: resume key: %w", err)
		}
	}
	node, err := NewNode(cfg.Node)
	if err != nil {
		if arch != nil {
			arch.Close()
		}
		return nil, err
	}
	if arch != nil {
		st := arch.Recovered()
		refused, err := node.Restore(clock.Now(), st)
		if err != nil {
			arch.Close()
			return nil, err
		}
		log.Info("restored from the archive", "dirs", strings.Join(cfg.Data.Dirs, ","),
			"horizon", st.Horizon, "entries", len(st.Entries), "refused", refused, "report", st.Report.String())
		arch.Forget()
	}
	var ln *transport.Listener
	if cfg.Conn != nil {
		ln, err = transport.Serve(cfg.Conn, cfg.Transport)
	} else {
		ln, err = transport.Listen(cfg.Addr, cfg.Transport)
	}
	if err != nil {
		if arch != nil {
			arch.Close()
		}
		return nil, fmt.Errorf("authority: %w", err)
	}
	s := &Server{
		arch:      arch,
		lastSnap:  time.Now(),
		cfg:       cfg,
		log:       log,
		clock:     clock,
		ln:        ln,
		accepted:  make(chan *transport.Session, cfg.EventQueue),
		statsReq:  make(chan chan nodeSnapshot),
		statusReq: make(chan func()),
		stopped:   make(chan struct{}),
		quit:      make(chan struct{}),
		drain:     make(chan struct{}),
		done:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
		node:      node,
		peers:     make(map[SessionID]*peer),
		conns:     make(map[*transport.Session]struct{}),
	}
	s.lastNode = nodeSnapshot{stats: node.Stats(), funcs: node.FuncStats()}
	if err := s.startCluster(); err != nil {
		ln.Close()
		if arch != nil {
			arch.Close()
		}
		return nil, err
	}
	return s, nil
}

// ListenAndServe serves cfg until ctx ends, then shuts down gracefully.
func ListenAndServe(ctx context.Context, cfg ServerConfig) error {
	s, err := NewServer(cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Clock returns the synced clock the node runs on.
func (s *Server) Clock() *timesync.Clock { return s.clock }

// Serve runs the server until ctx ends or Shutdown is called (both shut
// down gracefully: every session receives an Error with CodeShutdown after
// what was queued for it, then a transport close), until Close is called
// (which stops at once), or until the listener fails (ErrListener).
// It returns nil after a shutdown or Close. Serve runs once per Server.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.state != serverIdle {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.state = serverServing
	s.mu.Unlock()
	defer s.doneOnce.Do(func() { close(s.done) })

	acceptCtx, stopAccept := context.WithCancel(context.Background())
	acceptErr := make(chan error, 1)
	acceptDone := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(acceptDone)
		s.acceptLoop(acceptCtx, acceptErr)
	}()
	s.log.Info("serving", "addr", s.Addr().String(), "tick", s.cfg.Tick)

	err := s.run(ctx, acceptErr)
	s.stopCluster()
	s.closeArchive()

	// The node goroutine has stopped: nothing will take accepted sessions or touch
	// the node any more.
	s.mu.Lock()
	s.lastNode = s.snapshot()
	s.mu.Unlock()
	stopAccept()
	close(s.stopped)
	<-acceptDone
drain:
	for {
		select {
		case sess := <-s.accepted:
			s.closeAsync(sess, ShutdownReason)
		default:
			break drain
		}
	}
	for id, p := range s.peers {
		delete(s.peers, id)
		p.sess.Notify(nil)
		s.closeAsync(p.sess, ShutdownReason)
	}
	s.wg.Wait()
	s.ln.Close()
	s.mu.Lock()
	s.state = serverClosed
	s.mu.Unlock()
	s.log.Info("stopped", "error", err)
	return err
}

// Shutdown stops the server gracefully: no new sessions; every session is
// sent what the node has queued, an Error with CodeShutdown, and a
// transport close, each close waiting at most Transport.CloseLinger for the
// peer's acknowledgement. It returns when Serve has returned, or, if ctx
// ends first, closes the server at once and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.closeIdle() {
		return nil
	}
	s.drainOnce.Do(func() { close(s.drain) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close stops the server at once: sessions are closed without the node's
// final flush (the transport still sends what it has queued, within
// CloseLinger). It waits for Serve to return. Close is idempotent and
// always returns nil.
func (s *Server) Close() error {
	if s.closeIdle() {
		return nil
	}
	s.quitOnce.Do(func() { close(s.quit) })
	<-s.done
	return nil
}

// closeIdle closes a server whose Serve never ran and reports whether it
// did (or whether it was already closed that way).
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case serverIdle:
		s.state = serverClosed
		s.ln.Close()
		if s.arch != nil {
			s.arch.Close()
		}
		s.stopCluster()
		s.doneOnce.Do(func() { close(s.done) })
		return true
	case serverClosed:
		select {
		case <-s.done:
			return true
		default:
		}
	}
	return false
}

// Stats returns the server's counters: the node's, with Refused and
// TooSlow, read by the node goroutine at one instant (so they agree with
// each other), and the transport's frame and byte totals summed over
// sessions just after.
func (s *Server) Stats() ServerStats {
	ns := s.nodeStats()
	st := ServerStats{Node: ns.stats, Funcs: ns.funcs, Rounds: ns.rounds, LongestRound: ns.longest}
	st.Transport = s.transportStats(ns.refused, ns.tooSlow)
	if s.arch != nil {
		st.Archive = s.arch.Stats()
	}
	return st
}

// transportStats sums the transport's counters over the open sessions
// onto those of the closed ones, with the shell's own counts of sessions
// refused and closed as too slow.
func (s *Server) transportStats(refused, tooSlow uint64) TransportStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.closed
	t.Open = len(s.conns)
	t.Guard = s.ln.GuardStats()
	t.Refused, t.TooSlow = refused, tooSlow
	for c := range s.conns {
		cs := c.Stats()
		t.FramesSent += cs.FramesSent
		t.FramesReceived += cs.FramesReceived
		t.BytesSent += cs.BytesSent
		t.BytesReceived += cs.BytesReceived
		t.SendDropped += cs.SendDropped
		t.Global = cs.Global
	}
	return t
}

// checkDurable turns the node's writes off once the log has failed, before
// the node is given more input: what it would accept could not be logged.
func (s *Server) checkDurable() {
	if s.arch == nil || s.notDurable {
		return
	}
	if err := s.arch.Err(); err != nil {
		s.failDurable(err)
	}
}

func (s *Server) failDurable(err error) {
	s.notDurable = true
	s.node.SetNotDurable(err.Error())
	s.log.Error("archive failed: refusing calls and writes from now on; what was durable stays", "error", err)
}

// persist appends what the node recorded to the archive's log and queues
// its final values for the next snapshot, before dispatch sends anything
// (so no answer leaves before its record is in the log). If the log
// refuses an entry (it failed since the last check), this round's answers
// are not sent: every session is closed, and the node refuses writes.
func (s *Server) persist() {
	if s.arch == nil {
		return
	}
	p := s.node.TakePersist()
	for i := range p.Entries {
		if err := s.arch.Append(p.Entries[i].Now, &p.Entries[i]); err != nil {
			if !s.notDurable {
				s.failDurable(err)
			}
			s.node.Ready() // dropped: not sent
			for id, peer := range s.peers {
				s.forget(peer)
				s.node.DisconnectFor(s.clock.Now(), id, CauseNotDurable, "not durable: "+err.Error())
				s.closeAsync(peer.sess, "authority: not durable: "+err.Error())
			}
			break
		}
	}
	s.arch.AddFinal(p.Final)
}

// snapshotArchive asks the archive for a snapshot block of the final values
// queued, every SnapshotEvery or when force is set. The log before the
// horizon minus MaxFutureSkew is then obsolete: every value and call it
// records is final (in a block, or dropped as invalid).
func (s *Server) snapshotArchive(force bool) {
	every := s.cfg.SnapshotEvery
	if every <= 0 {
		every = DefaultSnapshotEvery
	}
	if s.arch == nil || (!force && time.Since(s.lastSnap) < every) {
		return
	}
	s.lastSnap = time.Now()
	h := s.node.Store().Horizon()
	s.arch.Snapshot(h, h-int64(s.cfg.Node.Store.MaxFutureSkew), s.node.ArchiveMeta())
}

// closeArchive, once the node goroutine has stopped, writes what the node
// recorded last and a final snapshot, and closes the archive.
func (s *Server) closeArchive() {
	if s.arch == nil {
		return
	}
	s.persist()
	s.snapshotArchive(true)
	if err := s.arch.Close(); err != nil {
		s.log.Error("closing the archive", "error", err)
	}
}

// dataResumeKey reads the resume key kept in the data directories, or
// makes one and writes it to each (temporary file, sync, rename, sync the
// directory), so tokens stay good across restarts.
func dataResumeKey(dirs []string) ([]byte, error) {
	for _, d := range dirs {
		if k, err := os.ReadFile(filepath.Join(d, resumeKeyFile)); err == nil && len(k) >= MinResumeKeyBytes {
			return k, nil
		}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("authority: resume key: %w", err)
	}
	for _, d := range dirs {
		if err := writeKeyFile(filepath.Join(d, resumeKeyFile), key); err != nil {
			return nil, fmt.Errorf("authority: resume key: %w", err)
		}
	}
	return key, nil
}

func writeKeyFile(name string, key []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// snapshot reads the node goroutine's counters; only it may call this
// while Serve runs.
func (s *Server) snapshot() nodeSnapshot {
	return nodeSnapshot{stats: s.node.Stats(), funcs: s.node.FuncStats(), refused: s.refused, tooSlow: s.slow, rounds: s.rounds, longest: s.longest}
}

func (s *Server) nodeStats() nodeSnapshot {
	reply := make(chan nodeSnapshot, 1)
	select {
	case s.statsReq <- reply:
		return <-reply
	case <-s.stopped:
	case <-s.done:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastNode
}

// acceptLoop hands accepted sessions to the node goroutine.
func (s *Server) acceptLoop(ctx context.Context, failed chan<- error) {
	for {
		sess, err := s.ln.Accept(ctx)
		if err != nil {
			if ctx.Err() == nil {
				failed <- err
			}
			return
		}
		s.mu.Lock()
		s.conns[sess] = struct{}{}
		s.closed.Accepted++
		s.mu.Unlock()
		select {
		case s.accepted <- sess:
		case <-s.stopped:
			s.closeAsync(sess, ShutdownReason)
			return
		}
	}
}

// markReady puts p on the ready list, once, and wakes the node goroutine.
// The transport calls it (through Session.Notify) when p's frames are
// waiting or p's transport closed; it never blocks.
func (s *Server) markReady(p *peer) {
	s.rmu.Lock()
	if p.listed {
		s.rmu.Unlock()
		return
	}
	p.listed = true
	s.ready = append(s.ready, p)
	s.rmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// drainReady steps the node through the frames of every ready session and
// handles the sessions whose transport closed: one wake-up for all that
// arrived meanwhile.
func (s *Server) drainReady() {
	s.rmu.Lock()
	list := s.ready
	s.ready = s.draining[:0]
	for _, p := range list {
		p.listed = false // frames arriving from now on list it again
	}
	s.rmu.Unlock()
	now, wall := s.clock.Now(), time.Now()
	for i, p := range list {
		list[i] = nil
		if p.gone {
			continue
		}
		frames, err := p.sess.Drain(s.frames[:0], eventBatch)
		for j, f := range frames {
			frames[j] = transport.Frame{}
			if !p.gone { // a frame may make the node close the session
				// Its arrival on the node's clock: limits are charged
				// then, however long this goroutine took to get here.
				arrived := now - int64(wall.Sub(f.At))
				s.node.StepArrived(now, arrived, p.id, f.Data)
			}
		}
		s.frames = frames[:0]
		switch {
		case err != nil:
			s.gone(now, p, err)
		case len(frames) == eventBatch:
			s.markReady(p) // more may wait: after the others' turn
		}
	}
	s.draining = list[:0]
}

// gone forgets a peer whose transport closed.
func (s *Server) gone(now int64, p *peer, err error) {
	if p.gone {
		return // the node closed it first
	}
	s.forget(p)
	s.node.DisconnectFor(now, p.id, CauseTransport, err.Error())
	s.closeAsync(p.sess, "")
}

// forget removes a peer the node or the server closed.
func (s *Server) forget(p *peer) {
	p.gone = true
	delete(s.peers, p.id)
	s.streamGone(p.id)
	p.sess.Notify(nil)
}

// run is the node goroutine: the only code that touches s.node and
// s.peers while Serve runs.
func (s *Server) run(ctx context.Context, acceptErr <-chan error) error {
	ticker := time.NewTicker(s.cfg.Tick)
	defer ticker.Stop()
	var (
		members, remap <-chan struct{}
		dialed         <-chan dialResult
	)
	if s.cl != nil {
		members, dialed, remap = s.cl.mem.Signal(), s.cl.dialed, s.cl.smap.changed
	}
	for {
		var t0 time.Time // when this round's work began
		select {
		case <-members:
			t0 = time.Now()
			s.membersChanged()
		case d := <-dialed:
			t0 = time.Now()
			s.peerDialed(d)
		case <-remap:
			t0 = time.Now()
			s.mapChanged()
		case <-s.wake:
			t0 = time.Now()
			s.checkDurable()
			s.drainReady()
		case sess := <-s.accepted:
			t0 = time.Now()
			s.accept(sess)
		batch:
			for range eventBatch - 1 {
				select {
				case sess := <-s.accepted:
					s.accept(sess)
				default:
					break batch
				}
			}
		case <-ticker.C:
			t0 = time.Now()
			s.checkDurable()
			// Frames that arrived before the tick go first: after a stall,
			// a Hello that arrived in time must not be found late.
			s.drainReady()
			s.node.Tick(s.clock.Now())
			if s.cl != nil {
				s.clusterTick()
			}
			s.persist()
			s.snapshotArchive(false)
		case reply := <-s.statsReq:
			reply <- s.snapshot()
			continue
		case f := <-s.statusReq:
			f()
			continue
		case err := <-acceptErr:
			s.log.Error("listener failed", "error", err)
			s.shutdownNode("listener failed")
			return fmt.Errorf("%w: %w", ErrListener, err)
		case <-ctx.Done():
			s.shutdownNode(ShutdownReason)
			return nil
		case <-s.drain:
			s.shutdownNode(ShutdownReason)
			return nil
		case <-s.quit:
			return nil
		}
		s.persist()
		s.dispatch()
		s.logNotes()
		s.timeRound(time.Since(t0))
	}
}

// roundBounds are the upper bounds of ServerStats.Rounds' buckets.
var roundBounds = [len(ServerStats{}.Rounds) - 1]time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second}

// timeRound files one round of the node goroutine by its length.
func (s *Server) timeRound(d time.Duration) {
	i := 0
	for i < len(roundBounds) && d >= roundBounds[i] {
		i++
	}
	s.rounds[i]++
	s.longest = max(s.longest, d)
}

// shutdownNode has the node say goodbye to every session and sends it.
func (s *Server) shutdownNode(reason string) {
	s.log.Info("shutting down", "sessions", len(s.peers), "reason", reason)
	s.node.Shutdown(s.clock.Now(), reason)
	s.persist()
	s.dispatch()
	s.logNotes()
}

// accept connects a session the listener accepted to the node and asks
// its transport to report frames and its close on the ready list.
func (s *Server) accept(sess *transport.Session) {
	remote := sess.RemoteAddr().String()
	id, err := s.node.Connect(s.clock.Now(), remote)
	if err != nil {
		s.refused++
		s.log.Warn("session refused", "remote", remote, "error", err)
		s.closeAsync(sess, err.Error())
		return
	}
	p := &peer{id: id, sess: sess}
	s.peers[id] = p
	s.log.Debug("session open", "session", id, "remote", remote)
	sess.Notify(func() { s.markReady(p) })
}

// dispatch sends what the node produced. Every frame goes as Data: frames
// carry the path dictionary's definitions, so they must arrive in the order
// the node encoded them, and Control frames would overtake. A session whose
// send queue cannot take its frames is closed as too slow rather than let
// the transport drop one and corrupt the peer's dictionary.
func (s *Server) dispatch() {
	for _, o := range s.node.Ready() {
		p := s.peers[o.Session]
		if p == nil {
			continue
		}
		sess := p.sess
		if len(o.Frames) > 0 {
			st := sess.Stats()
			bytes := 0
			for _, f := range o.Frames {
				bytes += len(f)
			}
			if st.SendDropped > 0 || st.SendQueued+len(o.Frames) > s.cfg.Transport.SendQueueFrames ||
				st.SendQueuedBytes+bytes > s.cfg.Transport.SendQueueBytes {
				s.tooSlow(o, p, st)
				continue
			}
		}
		for _, f := range o.Frames {
			if err := sess.Send(f, transport.Data); err != nil {
				break // closing; Notify reports it gone
			}
		}
		s.node.Recycle(o.Frames) // Send copied them
		if o.Close {
			// The node has forgotten the session already.
			s.forget(p)
			s.closeAsync(sess, o.Reason)
		}
	}
}

func (s *Server) tooSlow(o Output, p *peer, st transport.Stats) {
	sess := p.sess
	s.forget(p)
	s.slow++
	reason := fmt.Sprintf("too slow: %d frames (%d bytes) queued, %d more to send, limits %d frames, %d bytes",
		st.SendQueued, st.SendQueuedBytes, len(o.Frames), s.cfg.Transport.SendQueueFrames, s.cfg.Transport.SendQueueBytes)
	if !o.Close {
		s.node.DisconnectFor(s.clock.Now(), o.Session, CauseSendQueue, reason)
	}
	s.closeAsync(sess, reason)
}

// closeAsync closes sess off the node goroutine (Close waits for the
// peer's acknowledgement) and adds its counters to the totals once.
func (s *Server) closeAsync(sess *transport.Session, reason string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sess.Close(reason)
		st := sess.Stats()
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.conns[sess]; !ok {
			return
		}
		delete(s.conns, sess)
		s.closed.FramesSent += st.FramesSent
		s.closed.FramesReceived += st.FramesReceived
		s.closed.BytesSent += st.BytesSent
		s.closed.BytesReceived += st.BytesReceived
		s.closed.SendDropped += st.SendDropped
		s.closed.Global = st.Global
	}()
}

package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = errors.New("transport: listener closed")

// Listener accepts sessions on one packet conn.
type Listener struct {
	// immutable after construction
	cfg      Config
	kl       *kcp.Listener
	conn     net.PacketConn
	guard    *guardConn // kcp-go reads conn through it
	ownConn  bool
	accepted chan *Session
	pending  chan struct{} // one token per session in its handshake
	done     chan struct{}
	once     sync.Once

	mu  sync.Mutex
	err error // why the accept loop stopped
}

// Listen listens on the UDP address addr ("host:port"; port 0 picks one).
// The listener owns the socket: Close closes it, which ends every session
// accepted from it.
func Listen(addr string, cfg Config) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen %s: %w", addr, err)
	}
	l, err := serve(conn, cfg, true)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return l, nil
}

// Serve accepts sessions over conn, any net.PacketConn (a lag simulator,
// for instance). The caller keeps ownership of conn: Close stops accepting
// but leaves conn, and the sessions running on it, open.
func Serve(conn net.PacketConn, cfg Config) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, fmt.Errorf("%w: nil conn", ErrInvalidConfig)
	}
	return serve(conn, cfg, false)
}

func serve(conn net.PacketConn, cfg Config, own bool) (*Listener, error) {
	block, err := cfg.blockCrypt()
	if err != nil {
		return nil, err
	}
	g, err := NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	gc := &guardConn{PacketConn: conn, start: time.Now(), g: g}
	kl, err := kcp.ServeConn(block, cfg.DataShards, cfg.ParityShards, gc)
	if err != nil {
		return nil, fmt.Errorf("transport: serve: %w", err)
	}
	l := &Listener{
		cfg:      cfg,
		kl:       kl,
		conn:     conn,
		guard:    gc,
		ownConn:  own,
		accepted: make(chan *Session, cfg.AcceptQueue),
		pending:  make(chan struct{}, cfg.AcceptQueue),
		done:     make(chan struct{}),
	}
	go l.acceptLoop()
	return l, nil
}

// Addr returns the local address.
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// GuardStats returns the counters of the listener's Guard: what it did
// with packets from addresses without a session.
func (l *Listener) GuardStats() GuardStats { return l.guard.stats() }

// Accept returns the next session that completed its handshake.
func (l *Listener) Accept(ctx context.Context) (*Session, error) {
	select {
	case s := <-l.accepted:
		return s, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops accepting and closes the sessions not yet accepted. With
// Listen it also closes the socket, ending every session; with Serve,
// accepted sessions keep running on the caller's conn.
func (l *Listener) Close() error {
	l.stop(ErrListenerClosed)
	return nil
}

func (l *Listener) stop(err error) {
	l.once.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.done)
		l.kl.Close()
		if l.ownConn {
			l.conn.Close()
		}
		l.drain()
	})
}

// drain closes the sessions nobody will accept.
func (l *Listener) drain() {
	for {
		select {
		case s := <-l.accepted:
			go s.Close("listener closed")
		default:
			return
		}
	}
}

func (l *Listener) acceptLoop() {
	for {
		ks, err := l.kl.AcceptKCP()
		if err != nil {
			l.stop(fmt.Errorf("%w: %w", ErrListenerClosed, err))
			return
		}
		// The guard lets the address's packets through until the session
		// is closed, once, whichever way it ends.
		addr := ks.RemoteAddr()
		l.guard.opened(addr)
		var once sync.Once
		release := func() { once.Do(func() { l.guard.closed(addr) }) }
		select {
		case l.pending <- struct{}{}:
		default:
			ks.Close() // too many handshakes at once: drop it, the peer retries or gives up
			release()
			continue
		}
		go l.handshake(ks, release)
	}
}

func (l *Listener) handshake(ks *kcp.UDPSession, release func()) {
	defer func() { <-l.pending }()
	l.cfg.tune(ks)
	br := bufio.NewReaderSize(ks, readBufferSize)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := handshake(ctx, ks, br, &l.cfg, false); err != nil {
		ks.Close()
		release()
		return
	}
	s := newSession(l.cfg, ks, br, ks, l.conn.LocalAddr(), ks.RemoteAddr(), release)
	select {
	case l.accepted <- s:
		select {
		case <-l.done: // closed meanwhile: stop's drain may have run already
			l.drain()
		default:
		}
	default:
		s.Close("accept queue full")
	}
}

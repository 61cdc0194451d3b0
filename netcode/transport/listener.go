package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = errors.New("transport: listener closed")

// Listener accepts sessions on one packet conn. One goroutine, the
// endpoint's socket loop, serves every session it accepts (see the
// package documentation).
type Listener struct {
	// immutable after construction
	cfg      Config
	ep       *endpoint
	conn     net.PacketConn
	ownConn  bool
	accepted chan *Session
	done     chan struct{}
	once     sync.Once

	mu  sync.Mutex
	err error // why accepting stopped
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
	if cfg.SocketBuffer > 0 {
		// Best effort: the kernel caps the sizes; failing to set them
		// leaves the defaults, which work at lower loads.
		conn.SetReadBuffer(cfg.SocketBuffer)
		conn.SetWriteBuffer(cfg.SocketBuffer)
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
// but leaves conn, and the sessions running on it, open; the listener
// stops reading conn once they have all closed.
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
	l := &Listener{
		cfg:      cfg,
		conn:     conn,
		ownConn:  own,
		accepted: make(chan *Session, cfg.AcceptQueue),
		done:     make(chan struct{}),
	}
	ep, err := newEndpoint(conn, cfg, own, l)
	if err != nil {
		return nil, fmt.Errorf("transport: serve: %w", err)
	}
	l.ep = ep
	return l, nil
}

// Addr returns the local address.
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// GuardStats returns the counters of the listener's Guard: what it did
// with packets from addresses without a session.
func (l *Listener) GuardStats() GuardStats { return l.ep.guardStats() }

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
	if l.ownConn {
		l.ep.close(ErrListenerClosed)
	} else {
		l.ep.stopAccepting()
	}
	return nil
}

// offer hands a handshaken session to Accept; false when the accept
// queue is full or the listener is closed. The endpoint's loop calls it.
func (l *Listener) offer(s *Session) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.accepted <- s:
		select {
		case <-l.done: // closed meanwhile: stop's drain may have run already
			l.drain()
		default:
		}
		return true
	default:
		return false
	}
}

// stop ends Accept with err (the first one wins) and closes the sessions
// nobody accepted.
func (l *Listener) stop(err error) {
	l.once.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.done)
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

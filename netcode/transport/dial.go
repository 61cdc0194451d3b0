package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// ErrHandshake is returned (wrapped) when the opening exchange fails.
var ErrHandshake = errors.New("transport: handshake failed")

// closeGrace is how long a dialled session's own socket outlives the
// session, so that packets kcp-go queued before Close still leave.
const closeGrace = 100 * time.Millisecond

// readBufferSize is the reader's buffer: several small frames per read
// call (larger frames are read past it). Every session holds one.
const readBufferSize = 8 << 10

// Dial opens a session to the listener at addr ("host:port") from a new
// UDP socket, which the session owns and closes. It returns once the
// listener answered the handshake, or fails when ctx ends or
// cfg.HandshakeTimeout passes first.
func Dial(ctx context.Context, addr string, cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	network := "udp4"
	if raddr.IP.To4() == nil {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	// kcp-go transmits from its own goroutine after Close has flushed, so
	// the socket stays open a moment longer for the last packets (the close
	// reason or its acknowledgement) to leave.
	s, err := dial(ctx, conn, raddr, cfg, func() { time.AfterFunc(closeGrace, func() { conn.Close() }) })
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// DialConn opens a session to raddr over conn, which may be any
// net.PacketConn (a lag simulator, for instance). The caller keeps
// ownership of conn and must close it after the session is done with it:
// KCP keeps reading conn until it is closed.
func DialConn(ctx context.Context, conn net.PacketConn, raddr net.Addr, cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil || raddr == nil {
		return nil, fmt.Errorf("%w: nil conn or address", ErrInvalidConfig)
	}
	return dial(ctx, conn, raddr, cfg, nil)
}

func dial(ctx context.Context, conn net.PacketConn, raddr net.Addr, cfg Config, onClose func()) (*Session, error) {
	block, err := cfg.blockCrypt()
	if err != nil {
		return nil, err
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("transport: conversation id: %w", err)
	}
	ks, err := kcp.NewConn3(binary.LittleEndian.Uint32(b[:]), raddr, block, cfg.DataShards, cfg.ParityShards, conn)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %v: %w", raddr, err)
	}
	cfg.tune(ks)
	br := bufio.NewReaderSize(ks, readBufferSize)
	if err := handshake(ctx, ks, br, &cfg, true); err != nil {
		ks.Close()
		return nil, fmt.Errorf("dial %v: %w", raddr, err)
	}
	return newSession(cfg, ks, br, ks, conn.LocalAddr(), raddr, onClose), nil
}

// handshake exchanges hello (dialer) and welcome (listener) records,
// bounded by ctx and cfg.HandshakeTimeout. Anything else first on the
// stream fails it.
func handshake(ctx context.Context, conn stream, br *bufio.Reader, cfg *Config, dialer bool) error {
	deadline := time.Now().Add(cfg.HandshakeTimeout)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	// Cancelling ctx unblocks the read by moving the deadline to the past.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	send, want := kindHello, kindWelcome
	if !dialer {
		send, want = kindWelcome, kindHello
	}
	if dialer {
		if _, err := conn.Write(appendRecord(nil, send, helloPayload())); err != nil {
			return fmt.Errorf("%w: %w", ErrHandshake, err)
		}
	}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrHandshake, ctx.Err())
		}
		if isTimeout(err) && ctxDeadline {
			return fmt.Errorf("%w: %w", ErrHandshake, context.DeadlineExceeded)
		}
		if isTimeout(err) {
			return fmt.Errorf("%w: no answer within %v (no listener there, another secret, or another protocol version)", ErrHandshake, cfg.HandshakeTimeout)
		}
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	kind, n, err := checkHeader(hdr[:], cfg.MaxFrame)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if kind != want {
		return fmt.Errorf("%w: %w: got record kind %d, want %d", ErrHandshake, ErrProtocol, kind, want)
	}
	if err := checkHello(payload); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if !dialer {
		if _, err := conn.Write(appendRecord(nil, send, helloPayload())); err != nil {
			return fmt.Errorf("%w: %w", ErrHandshake, err)
		}
	}
	return nil
}

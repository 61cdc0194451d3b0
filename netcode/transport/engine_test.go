package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the packets a listener writes. It is not a
// *net.UDPConn, so the endpoint uses its one-packet path on it.
type countingConn struct {
	net.PacketConn
	writes atomic.Int64
}

func (c *countingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.writes.Add(1)
	return c.PacketConn.WriteTo(p, addr)
}

// TestEndpointQuietSession: a session with nothing to send holds no KCP
// timer; over a quiet span it sends keepalives and the acknowledgements
// of the peer's, nothing on KCP's 10 ms interval.
func TestEndpointQuietSession(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cc := &countingConn{PacketConn: pc}
	cfg := LAN()
	cfg.KeepAlive = 500 * time.Millisecond
	l, err := Serve(cc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := Dial(ctx, pc.LocalAddr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close("done")
	srv, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close("done")
	before := cc.writes.Load()
	const quiet = 2 * time.Second
	time.Sleep(quiet)
	sent := cc.writes.Load() - before
	// Keepalives each way every 500 ms: the server sends its own (4) and
	// acknowledges the client's (4), allowing for timer alignment. KCP's
	// interval would have been 200 flushes.
	if limit := int64(2*quiet/cfg.KeepAlive) + 4; sent > limit {
		t.Fatalf("a quiet session sent %d packets in %v, want at most %d", sent, quiet, limit)
	}
	if srv.Err() != nil || cli.Err() != nil {
		t.Fatalf("the quiet session closed: %v / %v", srv.Err(), cli.Err())
	}
}

// TestEndpointManySessions: many dialled sessions on one listener's socket
// loop, each echoing frames of its own, all intact and in order.
func TestEndpointManySessions(t *testing.T) {
	const sessions, frames = 40, 30
	for _, preset := range []struct {
		name string
		cfg  func() Config
	}{
		{"lan", LAN},
		{"internet", func() Config { c := Internet(); c.Secret = []byte("sixteen bytes at least"); return c }},
		{"coalesced", func() Config { c := Internet(); c.Coalesce = 5 * time.Millisecond; return c }},
	} {
		t.Run(preset.name, func(t *testing.T) {
			cfg := preset.cfg()
			// 40 dials at once on a machine at load 20 took longer than
			// the presets' handshake bound (5 s); the test's own 30 s
			// deadline bounds it instead.
			cfg.HandshakeTimeout = 25 * time.Second
			l, err := Listen("127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			go func() {
				for {
					s, err := l.Accept(ctx)
					if err != nil {
						return
					}
					echo(t, s)
				}
			}()
			var wg sync.WaitGroup
			errs := make(chan error, sessions)
			for i := range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cli, err := Dial(ctx, l.Addr().String(), cfg)
					if err != nil {
						errs <- err
						return
					}
					defer cli.Close("done")
					for j := range frames {
						f := bytes.Repeat([]byte{byte(i), byte(j)}, 1+(i*j)%700)
						if err := cli.Send(f, Data); err != nil {
							errs <- err
							return
						}
						got, err := cli.Recv(ctx)
						if err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(got, f) {
							errs <- fmt.Errorf("session %d frame %d: got %d bytes, want %d", i, j, len(got), len(f))
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// TestEndpointPeerRestart: a new conversation opened from the address of
// a live session replaces it, and the old session's owner learns it
// ended.
func TestEndpointPeerRestart(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, err := Listen("127.0.0.1:0", LAN())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := DialConn(ctx, pc, l.Addr(), LAN())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close("done")
	s1, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A new conversation's opening from the same socket: segment 0 of
	// conversation 77 carrying the hello record.
	hello := appendRecord(nil, kindHello, helloPayload())
	seg := make([]byte, 24, 24+len(hello))
	binary.LittleEndian.PutUint32(seg, 77)
	seg[4] = 81
	binary.LittleEndian.PutUint16(seg[6:], 256)
	binary.LittleEndian.PutUint32(seg[20:], uint32(len(hello)))
	if _, err := pc.WriteTo(append(seg, hello...), l.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s1.Done():
	case <-ctx.Done():
		t.Fatal("the replaced session is still open")
	}
}

package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// peerDriver carries one Peer's packets over a UDP socket of its own,
// from the test's goroutine.
type peerDriver struct {
	t    *testing.T
	p    *Peer
	conn *net.UDPConn
	to   net.Addr
	buf  []byte
}

func newPeerDriver(t *testing.T, cfg Config, to net.Addr) *peerDriver {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p, err := NewPeer(cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &peerDriver{t: t, p: p, conn: conn, to: to, buf: make([]byte, maxPacket)}
}

// step flushes the peer, then reads what arrives within wait.
func (d *peerDriver) step(wait time.Duration) {
	now := time.Now()
	d.p.Flush(now, func(pkt []byte) {
		if _, err := d.conn.WriteTo(pkt, d.to); err != nil {
			d.t.Errorf("write: %v", err)
		}
	})
	end := now.Add(wait)
	if dl := d.p.Deadline(now); dl.Before(end) {
		end = dl
	}
	d.conn.SetReadDeadline(end)
	for {
		n, _, err := d.conn.ReadFrom(d.buf)
		if err != nil {
			return
		}
		d.p.Input(time.Now(), d.buf[:n])
		d.conn.SetReadDeadline(time.Now()) // take what is queued, then flush
	}
}

// until steps the peer until cond holds, failing after limit.
func (d *peerDriver) until(limit time.Duration, what string, cond func() bool) {
	d.t.Helper()
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			d.t.Fatalf("%s: not within %v (peer error %v)", what, limit, d.p.Err())
		}
		d.step(5 * time.Millisecond)
	}
}

// TestPeerSession: a Peer opens a session on a listener, frames go both
// ways intact and in order (each call's frames intact until the call
// after next), and each side's close reaches the other, for
// the LAN and Internet presets (FEC, encryption).
func TestPeerSession(t *testing.T) {
	for _, preset := range []struct {
		name string
		cfg  func() Config
	}{
		{"lan", LAN},
		{"internet", func() Config { c := Internet(); c.Secret = []byte("sixteen bytes at least"); return c }},
	} {
		for _, closer := range []string{"listener", "peer"} {
			t.Run(preset.name+"/"+closer, func(t *testing.T) {
				cfg := preset.cfg()
				l, err := Listen("127.0.0.1:0", cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				d := newPeerDriver(t, cfg, l.Addr())
				d.until(10*time.Second, "welcome", d.p.Open)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				srv, err := l.Accept(ctx)
				if err != nil {
					t.Fatal(err)
				}
				const frames = 50
				for i := range frames {
					// Some frames span several segments.
					f := bytes.Repeat([]byte{byte(i)}, 1+i*97)
					if err := d.p.Send(f); err != nil {
						t.Fatal(err)
					}
					if err := srv.Send(f, Data); err != nil {
						t.Fatal(err)
					}
				}
				// The listener's side reads while the test's goroutine
				// carries the peer's packets.
				fromPeer := make(chan error, 1)
				go func() {
					for i := range frames {
						f, err := srv.Recv(ctx)
						if err != nil {
							fromPeer <- err
							return
						}
						if want := bytes.Repeat([]byte{byte(i)}, 1+i*97); !bytes.Equal(f, want) {
							fromPeer <- fmt.Errorf("frame %d from the peer: %d bytes, want %d", i, len(f), len(want))
							return
						}
					}
					fromPeer <- nil
				}()
				var got [][]byte
				var prev [][]byte // the last call's frames, valid until the call after next
				peerDone := false
				d.until(10*time.Second, "frames both ways", func() bool {
					fs := d.p.Frames()
					for i, f := range prev {
						if !bytes.Equal(f, got[len(got)-len(prev)+i]) {
							t.Fatalf("a frame of the call before changed by the next call")
						}
					}
					for _, f := range fs {
						got = append(got, append([]byte(nil), f...))
					}
					prev = append(prev[:0], fs...)
					if !peerDone {
						select {
						case err := <-fromPeer:
							if err != nil {
								t.Fatal(err)
							}
							peerDone = true
						default:
						}
					}
					return len(got) >= frames && peerDone
				})
				for i, f := range got {
					if want := bytes.Repeat([]byte{byte(i)}, 1+i*97); !bytes.Equal(f, want) {
						t.Fatalf("frame %d from the listener: %d bytes, want %d", i, len(f), len(want))
					}
				}
				if d.p.Stats().SRTT <= 0 && d.p.Stats().RTO <= 0 {
					t.Errorf("no RTT estimate: %+v", d.p.Stats())
				}
				switch closer {
				case "listener":
					closed := make(chan error, 1)
					go func() { closed <- srv.Close("bye") }()
					d.until(10*time.Second, "the listener's close", func() bool { return d.p.Err() != nil })
					var ce *CloseError
					if !errors.As(d.p.Err(), &ce) || !ce.Remote || ce.Reason != "bye" || !errors.Is(d.p.Err(), ErrPeerClosed) {
						t.Fatalf("peer closed with %v, want the listener's reason", d.p.Err())
					}
					// The close acknowledgement reaches the listener.
					end := time.Now().Add(10 * time.Second)
					for {
						select {
						case err := <-closed:
							if err != nil {
								t.Fatalf("listener's Close: %v", err)
							}
							return
						default:
						}
						if time.Now().After(end) {
							t.Fatal("the listener's Close did not return")
						}
						d.step(5 * time.Millisecond)
					}
				case "peer":
					d.p.Close(time.Now(), "leaving")
					if err := d.p.Send([]byte("late")); err == nil {
						t.Fatal("Send after Close succeeded")
					}
					d.until(10*time.Second, "the peer's close acknowledged", func() bool { return d.p.Err() != nil })
					_, err := srv.Recv(ctx)
					var ce *CloseError
					if !errors.As(err, &ce) || !ce.Remote || ce.Reason != "leaving" {
						t.Fatalf("listener's session ended with %v, want the peer's reason", err)
					}
				}
			})
		}
	}
}

// TestPeerRefusesWrongSecret: a Peer with another secret is never
// welcomed and fails its handshake after HandshakeTimeout.
func TestPeerRefusesWrongSecret(t *testing.T) {
	cfg := Internet()
	cfg.Secret = []byte("sixteen bytes at least")
	cfg.HandshakeTimeout = 300 * time.Millisecond
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other := cfg
	other.Secret = []byte("another sixteen bytes")
	d := newPeerDriver(t, other, l.Addr())
	d.until(10*time.Second, "handshake failure", func() bool { return d.p.Err() != nil })
	if !errors.Is(d.p.Err(), ErrHandshake) || d.p.Open() {
		t.Fatalf("peer ended with %v (open %v), want a handshake failure", d.p.Err(), d.p.Open())
	}
}

// TestPeerBadConfig: NewPeer validates its Config.
func TestPeerBadConfig(t *testing.T) {
	cfg := LAN()
	cfg.MTU = 10
	if _, err := NewPeer(cfg, time.Now()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewPeer with MTU 10: %v, want ErrInvalidConfig", err)
	}
	cfg = LAN()
	p, err := NewPeer(cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(make([]byte, cfg.MaxFrame+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Send over MaxFrame: %v", err)
	}
}

package lagsim

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// Compile-time: Conn is a net.PacketConn ...
var _ net.PacketConn = (*Conn)(nil)

// ... and not a UDP conn: kcp-go switches to batched syscalls on the socket
// underneath when a conn has these methods, which would bypass the simulator.
func TestConnHidesUDPConn(t *testing.T) {
	var c any = &Conn{}
	if _, ok := c.(interface {
		ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error)
	}); ok {
		t.Fatal("Conn exposes ReadMsgUDP")
	}
	if _, ok := c.(interface{ SyscallConn() (any, error) }); ok {
		t.Fatal("Conn exposes SyscallConn")
	}
}

func listen(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// pair returns a wrapped conn a and a plain conn b, both on loopback.
func pair(t *testing.T, opts Options) (*Conn, net.PacketConn) {
	t.Helper()
	a, err := Wrap(listen(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	b := listen(t)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func readWithin(t *testing.T, pc net.PacketConn, d time.Duration) ([]byte, error) {
	t.Helper()
	if err := pc.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, _, err := pc.ReadFrom(buf)
	return buf[:n], err
}

func TestConnOutboundDelay(t *testing.T) {
	const delay = 30 * time.Millisecond
	a, b := pair(t, Options{Seed: 1, Out: Profile{Delay: delay}})
	start := time.Now()
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, err := readWithin(t, b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay {
		t.Errorf("arrived after %v, before the %v delay", el, delay)
	}
	if string(got) != "hello" {
		t.Errorf("got %q", got)
	}
	if s := a.Stats(); s.Out.Packets != 1 || s.Out.Delivered != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestConnInboundDelay(t *testing.T) {
	const delay = 30 * time.Millisecond
	a, b := pair(t, Options{Seed: 1, In: Profile{Delay: delay}})
	start := time.Now()
	if _, err := b.WriteTo([]byte("ping"), a.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, err := readWithin(t, a, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay {
		t.Errorf("arrived after %v, before the %v delay", el, delay)
	}
	if string(got) != "ping" {
		t.Errorf("got %q", got)
	}
}

func TestConnPassthroughOrder(t *testing.T) {
	a, b := pair(t, Options{Seed: 1})
	for i := range 50 {
		if _, err := a.WriteTo([]byte{byte(i)}, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		got, err := readWithin(t, b, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("packet %d: got %v", i, got)
		}
	}
}

func TestConnTotalLoss(t *testing.T) {
	a, b := pair(t, Options{Seed: 1, Out: Profile{Loss: 1}})
	for range 20 {
		if _, err := a.WriteTo([]byte("x"), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if s := a.Stats(); s.Out.Lost != 20 || s.Out.Delivered != 0 {
		t.Fatalf("stats %+v, want 20 lost", s)
	}
	if _, err := readWithin(t, b, 50*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v, want a timeout (nothing may arrive)", err)
	}
}

func TestConnQueueLimit(t *testing.T) {
	a, b := pair(t, Options{Seed: 1, Out: Profile{Delay: 30 * time.Second}, MaxQueued: 4})
	for range 10 {
		if _, err := a.WriteTo([]byte("x"), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if s := a.Stats(); s.Out.QueueDrops != 6 {
		t.Fatalf("stats %+v, want 6 queue drops", s)
	}
}

func TestConnSetProfileLive(t *testing.T) {
	a, b := pair(t, Options{Seed: 1, Out: Profile{Loss: 1}})
	if _, err := a.WriteTo([]byte("lost"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := a.SetProfile(Profile{Delay: 5 * time.Millisecond}, Profile{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteTo([]byte("kept"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, err := readWithin(t, b, 5*time.Second)
	if err != nil || string(got) != "kept" {
		t.Fatalf("got %q, %v", got, err)
	}
	if err := a.SetProfile(Profile{Loss: 2}, Profile{}); !errors.Is(err, ErrInvalidProfile) {
		t.Fatalf("SetProfile(bad) = %v, want ErrInvalidProfile", err)
	}
	if out, _ := a.Profile(); out.Delay != 5*time.Millisecond {
		t.Fatalf("a rejected profile replaced the old one: %+v", out)
	}
}

func TestConnDeadlineAndClose(t *testing.T) {
	a, _ := pair(t, Options{Seed: 1})
	if _, err := readWithin(t, a, 10*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v, want deadline exceeded", err)
	}
	// A read blocked without a deadline is released by Close.
	a.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, _, err := a.ReadFrom(make([]byte, 10))
		done <- err
	}()
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a blocked ReadFrom")
	}
	if _, err := a.WriteTo([]byte("x"), a.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close = %v, want net.ErrClosed", err)
	}
}

func TestConnDrain(t *testing.T) {
	a, b := pair(t, Options{Seed: 1, Out: Profile{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}})
	for range 30 {
		if _, err := a.WriteTo([]byte("x"), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Out.Delivered != 30 {
		t.Fatalf("after Drain: stats %+v, want 30 delivered", s)
	}
}

func TestWrapRejects(t *testing.T) {
	pc := listen(t)
	defer pc.Close()
	for name, opts := range map[string]Options{
		"bad out":   {Out: Profile{Delay: -1}},
		"bad in":    {In: Profile{Loss: -1}},
		"bad limit": {MaxQueued: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Wrap(pc, opts); err == nil {
				t.Fatal("Wrap accepted bad options")
			}
		})
	}
	if _, err := Wrap(nil, Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Wrap(nil) = %v", err)
	}
}

func TestListen(t *testing.T) {
	c, err := Listen("127.0.0.1:0", Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || !addr.IP.IsLoopback() || addr.Port == 0 {
		t.Errorf("LocalAddr = %v, want a loopback UDP port", c.LocalAddr())
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	if _, err := Listen("127.0.0.1:0", Options{MaxQueued: -1}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("bad options: err = %v, want ErrInvalidOptions", err)
	}
	if _, err := Listen("127.0.0.1:99999", Options{}); err == nil {
		t.Error("a bad address was accepted")
	}
}

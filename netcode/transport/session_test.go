package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testConfig() Config {
	c := LAN()
	c.MaxFrame = 1000
	c.SendQueueBytes = 10000
	c.RecvQueueFrames = 8
	return c
}

// pipePair returns two sessions joined by an in-memory pipe.
func pipePair(t *testing.T, cfg Config) (a, b *Session) {
	ca, cb := net.Pipe()
	a = newSession(cfg, ca, bufio.NewReader(ca), nil, ca.LocalAddr(), ca.RemoteAddr(), nil)
	b = newSession(cfg, cb, bufio.NewReader(cb), nil, cb.LocalAddr(), cb.RemoteAddr(), nil)
	t.Cleanup(func() { a.finish(&CloseError{Reason: "test over"}); b.finish(&CloseError{Reason: "test over"}) })
	return a, b
}

// rawPeer is a session facing a hand-driven pipe end: the test writes raw
// records and reads what the session writes.
type rawPeer struct {
	conn    net.Conn
	records chan record
}

type record struct {
	kind    byte
	payload []byte
}

func rawPair(t *testing.T, cfg Config) (*Session, *rawPeer) {
	ca, cb := net.Pipe()
	s := newSession(cfg, ca, bufio.NewReader(ca), nil, ca.LocalAddr(), ca.RemoteAddr(), nil)
	p := &rawPeer{conn: cb, records: make(chan record, 100)}
	go func() {
		defer close(p.records)
		var h [headerSize]byte
		for {
			if _, err := io.ReadFull(cb, h[:]); err != nil {
				return
			}
			n := binary.BigEndian.Uint32(h[1:])
			if n > 1<<20 {
				return
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(cb, b); err != nil {
				return
			}
			p.records <- record{h[0], b}
		}
	}()
	t.Cleanup(func() { s.finish(&CloseError{Reason: "test over"}); cb.Close() })
	return s, p
}

// next returns the next record that is not a keepalive.
func (p *rawPeer) next(t *testing.T) record {
	t.Helper()
	for r := range p.records {
		if r.kind != kindKeepAlive {
			return r
		}
	}
	t.Fatal("peer stream ended")
	return record{}
}

func TestSessionFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipePair(t, testConfig())
		ctx := context.Background()
		for i := range 50 {
			f := bytes.Repeat([]byte{byte(i)}, i*20) // 0 to 980 bytes
			if err := a.Send(f, Data); err != nil {
				t.Fatal(err)
			}
			got, err := b.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, f) {
				t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(f))
			}
		}
		// And back.
		if err := b.Send([]byte("pong"), Control); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Recv(ctx); err != nil || string(got) != "pong" {
			t.Fatalf("got %q, %v", got, err)
		}
		synctest.Wait()
		sa, sb := a.Stats(), b.Stats()
		if sa.FramesSent != 50 || sb.FramesReceived != 50 || sa.BytesSent != sb.BytesReceived || sa.FramesReceived != 1 {
			t.Fatalf("stats a %+v, b %+v", sa, sb)
		}
	})
}

func TestSessionSendCopiesFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := rawPair(t, testConfig())
		f := []byte("original")
		if err := s.Send(f, Data); err != nil {
			t.Fatal(err)
		}
		copy(f, "CHANGED!")
		if r := p.next(t); r.kind != kindFrame || string(r.payload) != "original" {
			t.Fatalf("peer got %d %q", r.kind, r.payload)
		}
	})
}

func TestSessionSendErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		a, _ := pipePair(t, cfg)
		if err := a.Send(make([]byte, cfg.MaxFrame+1), Data); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("oversize Send = %v, want ErrFrameTooLarge", err)
		}
		if err := a.Send(nil, Class(7)); !errors.Is(err, ErrInvalidClass) {
			t.Errorf("Send with class 7 = %v, want ErrInvalidClass", err)
		}
		a.Close("done")
		if err := a.Send([]byte("late"), Data); !errors.Is(err, ErrClosed) {
			t.Errorf("Send after Close = %v, want ErrClosed", err)
		}
	})
}

func TestSessionCleanClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipePair(t, testConfig())
		for _, f := range []string{"one", "two"} {
			if err := a.Send([]byte(f), Data); err != nil {
				t.Fatal(err)
			}
		}
		a.Close("server shutting down")
		ctx := context.Background()
		for _, want := range []string{"one", "two"} {
			if got, err := b.Recv(ctx); err != nil || string(got) != want {
				t.Fatalf("Recv = %q, %v; want %q (frames queued before Close arrive)", got, err, want)
			}
		}
		_, err := b.Recv(ctx)
		var ce *CloseError
		if !errors.As(err, &ce) || !ce.Remote || ce.Reason != "server shutting down" {
			t.Fatalf("peer Recv after close = %v, want the remote reason", err)
		}
		if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrPeerClosed) {
			t.Errorf("%v does not match ErrClosed and ErrPeerClosed", err)
		}
		if err := a.Err(); !errors.As(err, &ce) || ce.Remote || ce.Reason != "server shutting down" || ce.Err != nil {
			t.Errorf("closer's Err = %#v", err)
		}
	})
}

func TestSessionCloseWaitsForAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		s, p := rawPair(t, cfg)
		start := time.Now()
		closed := make(chan struct{})
		go func() { s.Close(strings.Repeat("é", MaxReasonBytes)); close(closed) }()
		r := p.next(t)
		if r.kind != kindClose || len(r.payload) > MaxReasonBytes || !strings.HasPrefix(string(r.payload), "éé") {
			t.Fatalf("peer got kind %d, %d bytes", r.kind, len(r.payload))
		}
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned before the ack or the linger time")
		default:
		}
		p.conn.Write(appendRecord(nil, kindCloseAck, nil))
		<-closed
		if el := time.Since(start); el != 0 {
			t.Errorf("Close took %v of fake time after an immediate ack", el)
		}
	})
}

func TestSessionCloseLingerBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		s, p := rawPair(t, cfg)
		start := time.Now()
		go func() {
			for range p.records { // read but never acknowledge
			}
		}()
		s.Close("bye")
		if el := time.Since(start); el != cfg.CloseLinger {
			t.Errorf("Close without ack took %v, want CloseLinger %v", el, cfg.CloseLinger)
		}
	})
}

func TestSessionKeepAliveAndIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		a, b := pipePair(t, cfg)
		// Silent owners: keepalives keep both ends open far beyond IdleTimeout.
		time.Sleep(10 * cfg.IdleTimeout)
		if a.Err() != nil || b.Err() != nil {
			t.Fatalf("keepalives did not hold the session: %v / %v", a.Err(), b.Err())
		}

		// A peer that reads but never writes is declared gone after exactly
		// IdleTimeout.
		s, p := rawPair(t, cfg)
		go func() {
			for range p.records {
			}
		}()
		start := time.Now()
		<-s.Done()
		if el := time.Since(start); el != cfg.IdleTimeout {
			t.Errorf("idle close after %v, want %v", el, cfg.IdleTimeout)
		}
		if err := s.Err(); !errors.Is(err, ErrIdleTimeout) {
			t.Errorf("Err = %v, want ErrIdleTimeout", err)
		}
	})
}

func TestSessionRejectsBadInput(t *testing.T) {
	cfg := testConfig()
	header := func(kind byte, n uint32) []byte {
		h := []byte{kind, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(h[1:], n)
		return h
	}
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"frame over MaxFrame", header(kindFrame, uint32(cfg.MaxFrame)+1), ErrFrameTooLarge},
		{"frame of 4 GiB", header(kindFrame, 0xFFFFFFFF), ErrFrameTooLarge},
		{"unknown kind", header(99, 0), ErrProtocol},
		{"keepalive with payload", header(kindKeepAlive, 3), ErrProtocol},
		{"huge close reason", header(kindClose, 100000), ErrProtocol},
		{"hello after handshake", appendRecord(nil, kindHello, helloPayload()), ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, p := rawPair(t, cfg)
				go p.conn.Write(tt.input)
				r := p.next(t)
				if r.kind != kindClose {
					t.Fatalf("peer got record kind %d, want a close", r.kind)
				}
				<-s.Done()
				err := s.Err()
				if !errors.Is(err, tt.want) || !errors.Is(err, ErrClosed) {
					t.Fatalf("Err = %v, want %v", err, tt.want)
				}
				if string(r.payload) != err.(*CloseError).Reason {
					t.Errorf("peer told %q, session says %q", r.payload, err.(*CloseError).Reason)
				}
			})
		})
	}
}

func TestSessionRecvOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		a, b := pipePair(t, cfg)
		for range cfg.RecvQueueFrames + 1 {
			if err := a.Send([]byte("x"), Data); err != nil {
				t.Fatal(err)
			}
		}
		<-b.Done()
		if err := b.Err(); !errors.Is(err, ErrRecvOverflow) {
			t.Fatalf("slow owner: Err = %v, want ErrRecvOverflow", err)
		}
		<-a.Done()
		var ce *CloseError
		if err := a.Err(); !errors.As(err, &ce) || !ce.Remote || !strings.Contains(ce.Reason, "receive queue overflow") {
			t.Fatalf("sender: Err = %v, want the peer's overflow reason", err)
		}
		// What arrived in time is still readable.
		for range cfg.RecvQueueFrames {
			if _, err := b.Recv(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestSessionRecvContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := pipePair(t, testConfig())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := a.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Recv = %v, want the context's deadline", err)
		}
	})
}

func TestSessionDrainNotify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := rawPair(t, testConfig())
		var calls int
		s.Notify(func() { calls++ }) // synctest: each call is waited for below
		if calls != 1 {
			t.Fatalf("Notify called f %d times at once, want 1", calls)
		}
		if got, err := s.Drain(nil, 10); len(got) != 0 || err != nil {
			t.Fatalf("Drain of an empty session = %q, %v; want nothing, nil", got, err)
		}

		// One write of three frames is one burst: one call.
		var burst []byte
		for _, f := range []string{"a", "bb", "ccc"} {
			burst = appendRecord(burst, kindFrame, []byte(f))
		}
		if _, err := p.conn.Write(burst); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if calls != 2 {
			t.Fatalf("after a burst of 3 frames f was called %d times, want 2", calls)
		}
		burstAt := time.Now()
		// Frames wait unread for a second; their arrival times do not
		// move.
		time.Sleep(time.Second)
		got, err := s.Drain(nil, 2)
		if err != nil {
			t.Fatal(err)
		}
		got, err = s.Drain(got, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []Frame{{[]byte("a"), burstAt}, {[]byte("bb"), burstAt}, {[]byte("ccc"), burstAt}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("drained frames (-want +got):\n%s", diff)
		}

		// A frame, then the peer's close: the frame comes first, then the
		// CloseError, and f hears of both.
		if _, err := p.conn.Write(appendRecord(nil, kindFrame, []byte("last"))); err != nil {
			t.Fatal(err)
		}
		if _, err := p.conn.Write(appendRecord(nil, kindClose, []byte("bye"))); err != nil {
			t.Fatal(err)
		}
		<-s.Done()
		synctest.Wait()
		if calls < 4 {
			t.Fatalf("f called %d times after a frame and a close, want at least 4", calls)
		}
		got, err = s.Drain(nil, 10)
		if len(got) != 1 || string(got[0].Data) != "last" || !got[0].At.After(burstAt) || !errors.Is(err, ErrPeerClosed) {
			t.Fatalf("Drain after close = %q, %v; want [last], ErrPeerClosed", got, err)
		}
		if got, err := s.Drain(nil, 10); len(got) != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Drain once drained = %q, %v; want nothing, ErrClosed", got, err)
		}
		if got, err := s.Drain(nil, 0); len(got) != 0 || err != nil {
			t.Fatalf("Drain(max 0) = %q, %v; want nothing, nil", got, err)
		}
	})
}

package hostile

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
)

// The same players and attacks over a real transport, for loopback tests
// and the report (authority/cmd/hostile-report). Times here are the wall
// clock's: what they measure depends on the machine and its load, so
// tests hold them to nothing but generous deadlines.

// Player is an honest player over the real transport: it watches the
// counters and calls add at a steady rate, timing each call from sending
// it to its result.
type Player struct {
	c    *testclient.Client
	name string
	seq  uint64 // the last call's sequence number (Play's)

	mu     sync.Mutex
	sent   map[uint64]time.Time
	lat    []latency
	err    error // why the session ended, if it did
	closed bool
}

type latency struct {
	sent time.Time
	d    time.Duration
	ok   bool
}

// JoinPlayer dials addr, says Hello and watches the counters.
func JoinPlayer(ctx context.Context, addr, name string, cfg transport.Config) (*Player, error) {
	c, err := testclient.Dial(ctx, addr, testclient.Config{Transport: cfg})
	if err != nil {
		return nil, err
	}
	if err := c.Watch(counter.Prefix); err != nil {
		c.Close("watch failed")
		return nil, err
	}
	return &Player{c: c, name: name, sent: map[uint64]time.Time{}}, nil
}

// Play calls add rate times a second until ctx ends, reading everything
// the authority sends meanwhile.
func (p *Player) Play(ctx context.Context, rate float64) {
	go p.read()
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	args := counter.AddArgs(p.name, 1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		// Filed before it is sent: the result may come back before Call
		// returns. Only Play calls, so the id is the next sequence number.
		p.seq++
		p.mu.Lock()
		p.sent[p.seq] = time.Now()
		p.mu.Unlock()
		if id, err := p.c.Call(counter.Add, args, p.c.ServerNow(), 0); err != nil || id.Seq != p.seq {
			p.mu.Lock()
			delete(p.sent, p.seq)
			p.mu.Unlock()
			return
		}
	}
}

func (p *Player) read() {
	for {
		m, err := p.c.Next(context.Background())
		if err != nil {
			p.mu.Lock()
			p.closed, p.err = true, err
			p.mu.Unlock()
			return
		}
		if m.Kind != wire.KindCallResult {
			continue
		}
		now := time.Now()
		p.mu.Lock()
		if t, ok := p.sent[m.CallResult.ID.Seq]; ok {
			delete(p.sent, m.CallResult.ID.Seq)
			p.lat = append(p.lat, latency{t, now.Sub(t), m.CallResult.Status == wire.CallOK})
		}
		p.mu.Unlock()
	}
}

// Close leaves.
func (p *Player) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.c.Close("player leaves")
}

// Report is what the players saw of calls sent in [from, to).
type Report struct {
	Sent, Confirmed, Refused, Unanswered int
	P50, P99, Max                        time.Duration
	Disconnected                         []string
}

// Collect reports the calls players sent in [from, to): a call not
// answered yet counts as unanswered.
func Collect(ps []*Player, from, to time.Time) Report {
	var r Report
	var ds []time.Duration
	for _, p := range ps {
		p.mu.Lock()
		for _, l := range p.lat {
			if l.sent.Before(from) || !l.sent.Before(to) {
				continue
			}
			r.Sent++
			if l.ok {
				r.Confirmed++
				ds = append(ds, l.d)
			} else {
				r.Refused++
			}
		}
		for _, t := range p.sent {
			if !t.Before(from) && t.Before(to) {
				r.Sent++
				r.Unanswered++
			}
		}
		if p.err != nil && !errors.Is(p.err, context.Canceled) {
			r.Disconnected = append(r.Disconnected, p.name+": "+p.err.Error())
		}
		p.mu.Unlock()
	}
	slices.Sort(ds)
	if len(ds) > 0 {
		r.P50, r.P99, r.Max = ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]
	}
	return r
}

// Unanswered counts the calls the players are still waiting for.
func Unanswered(ps []*Player) int {
	n := 0
	for _, p := range ps {
		p.mu.Lock()
		n += len(p.sent)
		p.mu.Unlock()
	}
	return n
}

// LoopbackAbuser is an Abuser over a real session.
type LoopbackAbuser struct {
	c   *testclient.Client
	seq uint64
	err error
}

// Frame implements Abuser.
func (a *LoopbackAbuser) Frame(ms ...*wire.Message) []byte {
	f, err := a.c.Frame(ms...)
	if err != nil && a.err == nil {
		a.err = err
	}
	return f
}

// CallMsg implements Abuser.
func (a *LoopbackAbuser) CallMsg(name string, args []byte, w int64) *wire.Message {
	a.seq++
	return &wire.Message{Kind: wire.KindCall, Call: wire.Call{ID: wire.CallID{Creator: a.c.Creator(), Seq: a.seq}, Name: name, Args: args,
		Time: wire.Time{Nanos: w, Creator: a.c.Creator()}}}
}

// Creator implements Abuser.
func (a *LoopbackAbuser) Creator() uint32 { return a.c.Creator() }

// Now implements Abuser.
func (a *LoopbackAbuser) Now() int64 { return a.c.ServerNow() }

// Abuse dials addr and plays fc until the authority closes the session or
// ctx ends. It returns how long the session lasted after its first
// abusive frame was sent (cut is false if it was never closed).
func Abuse(ctx context.Context, addr string, cfg transport.Config, fc FrameClass) (lasted time.Duration, cut bool, err error) {
	c, err := testclient.Dial(ctx, addr, testclient.Config{Transport: cfg})
	if err != nil {
		return 0, false, err
	}
	defer c.Close("abuser done")
	a := &LoopbackAbuser{c: c}
	closed := make(chan time.Time, 1)
	go func() {
		for {
			if _, err := c.Next(context.Background()); err != nil {
				closed <- time.Now()
				return
			}
		}
	}()
	if fc.Setup != nil {
		if err := c.SendFrame(fc.Setup(a)); err != nil {
			return 0, false, err
		}
	}
	t := time.NewTicker(frame)
	defer t.Stop()
	var first time.Time
	for {
		f := fc.Make(a)
		if a.err != nil {
			return 0, false, a.err
		}
		if first.IsZero() {
			first = time.Now()
		}
		if err := c.SendFrame(f); err != nil {
			// Closed meanwhile: the reader saw it, or will.
			select {
			case at := <-closed:
				return at.Sub(first), true, nil
			case <-time.After(5 * time.Second):
				return time.Since(first), true, nil
			}
		}
		select {
		case at := <-closed:
			return at.Sub(first), true, nil
		case <-ctx.Done():
			return time.Since(first), false, nil
		case <-t.C:
		}
	}
}

// Garbage sends random datagrams of 24 to 1,024 bytes to addr from
// sockets source ports, pps a second in all, until ctx ends. It returns
// how many it sent.
func Garbage(ctx context.Context, addr string, sockets, pps int, seed uint64) (int, error) {
	dst, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return 0, err
	}
	var cs []*net.UDPConn
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for range sockets {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: dst.IP})
		if err != nil {
			return 0, err
		}
		cs = append(cs, c)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	buf := make([]byte, 1024)
	sent := 0
	const burst = 10 * time.Millisecond
	t := time.NewTicker(burst)
	defer t.Stop()
	per := max(1, pps*int(burst)/int(time.Second))
	for {
		for range per {
			n := 24 + rng.IntN(1000)
			for i := range buf[:n] {
				buf[i] = byte(rng.Uint32())
			}
			cs[rng.IntN(len(cs))].WriteToUDP(buf[:n], dst)
			sent++
		}
		select {
		case <-ctx.Done():
			return sent, nil
		case <-t.C:
		}
	}
}

// HalfOpen opens n KCP conversations to addr, each from its own port, that
// send the first 3 bytes of the transport's hello record and nothing more,
// and keeps their sockets until ctx ends.
func HalfOpen(ctx context.Context, addr string, n int) error {
	dst, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	var cs []*net.UDPConn
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: dst.IP})
		if err != nil {
			return err
		}
		cs = append(cs, c)
		// A KCP data segment: conv, cmd 81, frg, wnd, ts, sn 0, una, len 3,
		// then the record's kind and the first two bytes of its length.
		seg := make([]byte, 24, 27)
		binary.LittleEndian.PutUint32(seg, uint32(0x1000+i))
		seg[4] = 81
		binary.LittleEndian.PutUint16(seg[6:], 128)
		binary.LittleEndian.PutUint32(seg[20:], 3)
		seg = append(seg, 1, 0, 0)
		if _, err := c.WriteToUDP(seg, dst); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// Mute opens n transport sessions to addr that never say Hello, at most
// rate a second, from src's IP address ("" for the default), and keeps
// them until ctx ends or the authority closes them. It returns how many
// opened and how many the authority closed.
func Mute(ctx context.Context, addr, src string, cfg transport.Config, n int, rate float64) (opened, closed int) {
	dial := func() (*transport.Session, func(), error) {
		if src == "" {
			s, err := transport.Dial(ctx, addr, cfg)
			return s, func() {}, err
		}
		raddr, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)})
		if err != nil {
			return nil, nil, err
		}
		s, err := transport.DialConn(ctx, pc, raddr, cfg)
		if err != nil {
			pc.Close()
			return nil, nil, err
		}
		return s, func() { time.AfterFunc(100*time.Millisecond, func() { pc.Close() }) }, nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for range n {
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, release, err := dial()
			if err != nil {
				return
			}
			defer release()
			defer s.Close("mute done")
			mu.Lock()
			opened++
			mu.Unlock()
			for {
				if _, err := s.Recv(ctx); err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						closed++
						mu.Unlock()
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	return opened, closed
}

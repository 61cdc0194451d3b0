package hostile

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/netcode/transport"
)

// TestLoopback plays the attacks that need a real transport over
// 127.0.0.1 while four honest players play: garbage from 256 source ports
// and 200 conversations that send part of a hello, sessions that never
// say Hello, and three abusers (snapshot amplification, a message flood,
// a path that is not UTF-8). It holds the outcome to what does not depend
// on the machine's speed: every honest call answered, no honest player
// disconnected, a player joining during the attack welcomed, the abusers
// cut off and the mute sessions closed, the garbage dropped by the
// listener's guard. Waits are bounded deadlines, not measurements, and the
// change window is a minute so that no call is late however loaded the
// machine is.
func TestLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tcfg := transport.LAN()
	// Generous timeouts: a loaded machine may hold a goroutine for
	// seconds, and a session lost to that says nothing about the attacks.
	tcfg.HandshakeTimeout = 20 * time.Second
	tcfg.IdleTimeout = 30 * time.Second
	cfg := authority.DefaultServerConfig("127.0.0.1:0", Registry())
	cfg.Transport = tcfg
	cfg.Node.Limits.HelloTimeout = time.Second
	// A loaded machine delays the players' calls by any amount; with the
	// default change window (1 s) some would be refused as too old, which
	// says nothing about the attacks. A minute's window keeps every
	// refusal the attacks' doing.
	cfg.Node.Store.MaxChangeAge = time.Minute
	srv, err := authority.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		srv.Close()
		<-served
	}()
	addr := srv.Addr().String()

	var players []*Player
	for i := range 4 {
		p, err := JoinPlayer(ctx, addr, "p"+string(rune('a'+i)), tcfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		players = append(players, p)
	}
	play, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range players {
		wg.Add(1)
		go func() { defer wg.Done(); p.Play(play, 20) }()
	}
	start := time.Now()

	attack, stopAttack := context.WithCancel(ctx)
	var awg sync.WaitGroup
	awg.Add(2)
	go func() { defer awg.Done(); Garbage(attack, addr, 256, 5000, 1) }()
	go func() { defer awg.Done(); HalfOpen(attack, addr, 200) }()
	// Within the host's handshake burst, so the player joining below
	// still finds openings left.
	var opened, closed int
	awg.Add(1)
	go func() { defer awg.Done(); opened, closed = Mute(ctx, addr, "", tcfg, 20, 200) }()
	classes := map[string]bool{"snapshot-amplification": true, "message-flood": true, "bad-utf8": true}
	type cut struct {
		name   string
		lasted time.Duration
		ok     bool
		err    error
	}
	cuts := make(chan cut, len(classes))
	for _, fc := range FrameClasses() {
		if classes[fc.Name] {
			go func() {
				lasted, ok, err := Abuse(ctx, addr, tcfg, fc)
				cuts <- cut{fc.Name, lasted, ok, err}
			}()
		}
	}
	time.Sleep(500 * time.Millisecond) // the attacks under way
	late, err := JoinPlayer(ctx, addr, "late", tcfg)
	if err != nil {
		t.Fatalf("a player joining during the attack: %v (guard %+v)", err, srv.Stats().Transport.Guard)
	}
	late.Close()
	for range classes {
		c := <-cuts
		if c.err != nil || !c.ok {
			t.Errorf("%s: not cut off (%v)", c.name, c.err)
		}
		t.Logf("%s: cut off %v after its first frame", c.name, c.lasted)
	}
	time.Sleep(500 * time.Millisecond)
	stopAttack()
	awg.Wait()
	if opened == 0 || closed != opened {
		t.Errorf("%d mute sessions opened, %d closed by the authority", opened, closed)
	}
	stop()
	wg.Wait()
	// Every call gets its answer.
	for Unanswered(players) > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	rep := Collect(players, start, time.Now())
	t.Logf("honest: %d calls, %d ok, %d refused, p50 %v p99 %v max %v (wall clock, not asserted)", rep.Sent, rep.Confirmed, rep.Refused, rep.P50, rep.P99, rep.Max)
	if rep.Unanswered > 0 || rep.Refused > 0 || len(rep.Disconnected) > 0 {
		t.Errorf("honest players: %+v", rep)
	}
	st := srv.Stats()
	t.Logf("node: kicked %d, hello timeouts %d, evicted %d; guard %+v; node goroutine rounds %v, longest %v (wall clock, not asserted)",
		st.Node.Kicked, st.Node.HelloTimeouts, st.Node.WaitingEvicted, st.Transport.Guard, st.Rounds, st.LongestRound)
	if n := st.Rounds[0] + st.Rounds[1] + st.Rounds[2] + st.Rounds[3] + st.Rounds[4]; n == 0 || st.LongestRound <= 0 {
		t.Errorf("the node goroutine's rounds were not counted: %v, longest %v", st.Rounds, st.LongestRound)
	}
	if g := st.Transport.Guard; g.NotOpening == 0 {
		t.Errorf("the guard dropped no garbage: %+v", g)
	}
}

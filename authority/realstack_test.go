package authority_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/lagsim"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
)

var realStackSeed = flag.Uint64("realstack.seed", 1, "seed of the lag simulator in TestRealStack")

// TestRealStack runs the whole authority over loopback KCP behind the lag
// simulator: several clients add to one shared counter and to one counter
// each, watch every counter, and must see every call answered and every
// counter converge on its total. Each client stamps its calls a little
// further in the past than the one before it, so calls from different
// clients arrive out of write-time order: the authority must re-run the
// later calls a late one invalidated for the shared total to come out
// right.
func TestRealStack(t *testing.T) {
	const (
		clients   = 4
		rounds    = 25                    // each round: one add to "total", one to the client's own counter
		pace      = 25 * time.Millisecond // between a client's calls
		skew      = 25 * time.Millisecond // client i stamps its calls i*skew in the past
		preset    = "broadband"
		deadline  = 90 * time.Second // a bound against a hang; the run takes a few seconds
		wantTotal = clients * rounds
	)
	seed := *realStackSeed
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce the lag simulator's decisions with -realstack.seed=%d", seed)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	prof, err := lagsim.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	// One end wrapped both ways: the whole round trip of the preset.
	link, err := lagsim.Listen("127.0.0.1:0", lagsim.Options{Seed: seed, Out: prof, In: prof})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()

	tcfg := transport.Internet() // FEC on, acks batched: the configuration a game ships
	tcfg.CloseLinger = 500 * time.Millisecond
	cfg := authority.DefaultServerConfig("", counter.Registry())
	cfg.Conn = link
	cfg.Transport = tcfg
	srv, err := authority.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer srv.Close()

	cs := make([]*testclient.Client, clients)
	for i := range cs {
		c, err := testclient.Dial(ctx, srv.Addr().String(), testclient.Config{Transport: tcfg})
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer c.Close("test over")
		if err := c.Watch(counter.Prefix); err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}

	want := map[string]int64{counter.Prefix + "total": wantTotal}
	for i := range clients {
		want[fmt.Sprintf("%sc%d", counter.Prefix, i)] = rounds
	}
	begin := make(chan struct{})
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			errs[i] = drive(ctx, c, i, rounds, pace, time.Duration(i)*skew, want)
		}()
	}
	start := time.Now()
	close(begin)
	wg.Wait()
	elapsed := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	if t.Failed() {
		return
	}

	st := srv.Stats()
	n := st.Node
	t.Logf("%d clients × %d calls over %s (seed %d) in %v: reruns %d, values sent %d, state changes sent %d, frames out %d, kcp retransmits %d, FEC recovered %d",
		clients, 2*rounds, preset, seed, elapsed.Round(time.Millisecond), n.Reruns, n.ValuesSent, n.StatesSent, n.FramesOut,
		st.Transport.Global.Retransmits, st.Transport.Global.FECRecovered)
	if n.Calls != 2*clients*rounds || st.Funcs["add"].Calls != n.Calls {
		t.Errorf("node counted %d calls (add: %d), clients sent %d", n.Calls, st.Funcs["add"].Calls, 2*clients*rounds)
	}
	if n.CallErrors != 0 || n.CallsRejected != 0 || n.Strikes != 0 || n.Kicked != 0 {
		t.Errorf("refusals: %+v", n)
	}
	if n.ValuesSent == 0 || n.Sessions != clients || n.Connects != clients {
		t.Errorf("node stats %+v", n)
	}
	if n.Reruns == 0 || st.Funcs["add"].Reruns != n.Reruns {
		t.Errorf("reruns: node %d, add %d; the skewed clients must have caused some", n.Reruns, st.Funcs["add"].Reruns)
	}
	if st.Transport.SendDropped != 0 || st.Transport.TooSlow != 0 || st.Transport.Open != clients {
		t.Errorf("transport stats %+v", st.Transport)
	}

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// drive makes client c (number i) send its calls, one every pace, stamped
// lag in the past, while reading what comes back. It returns once every
// call was answered OK and the client's view of every counter equals want,
// or with the first thing that went wrong.
func drive(ctx context.Context, c *testclient.Client, i, rounds int, pace, lag time.Duration, want map[string]int64) error {
	total := 2 * rounds
	answered := make(map[uint64]bool, total)
	view := testclient.NewView()
	sent := 0
	next := time.Now()
	for {
		if sent < total && !time.Now().Before(next) {
			name := "total"
			if sent%2 == 1 {
				name = fmt.Sprintf("c%d", i)
			}
			if _, err := c.Call("add", counter.AddArgs(name, 1), c.ServerNow()-int64(lag), 0); err != nil {
				return err
			}
			sent++
			next = next.Add(pace)
		}
		if sent == total && len(answered) == total && converged(view, want) {
			return nil
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		if sent == total {
			rctx, cancel = context.WithCancel(ctx)
		}
		m, err := c.Next(rctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				continue // time for the next call
			}
			return fmt.Errorf("after %d calls, %d answered: %w (converged: %v)", sent, len(answered), err, converged(view, want))
		}
		switch m.Kind {
		case wire.KindCallResult:
			r := m.CallResult
			if r.Status != wire.CallOK {
				return fmt.Errorf("call %d: status %d: %s", r.ID.Seq, r.Status, r.Error)
			}
			answered[r.ID.Seq] = true
		case wire.KindError:
			return fmt.Errorf("error from the authority: code %d: %s", m.Error.Code, m.Error.Text)
		case wire.KindValues, wire.KindValidStates:
			view.Apply(m)
		}
	}
}

func converged(v *testclient.View, want map[string]int64) bool {
	for path, n := range want {
		b, _ := v.Latest(path)
		if got, err := counter.Count(b); err != nil || got != n {
			return false
		}
	}
	return true
}

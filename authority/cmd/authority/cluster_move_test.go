package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
)

// metric reads one sample of the Prometheus text at base/metrics: the
// line that starts with name (labels included), or -1 when absent.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return v
		}
	}
	return -1
}

// TestClusterMove runs three authority processes as one sharded cluster:
// counters/ owned by authorities 1 (primary) and 2 (-ranges), every
// member holding counters/ (-watch). A client of authority 1 adds to a
// counter of its own per call, without pause, while the operator moves
// counters/ to authority 3 through authority 2's endpoint (POST
// /admin/move-range): 3 joins the range, and once every member holds
// that map and a settling second later, 1 leaves it. The client goes on
// through the move; its calls then go from 1 to the new owners. Every
// confirmed call is there exactly once on an authority that owned the
// range throughout, and on the new owner; none ran twice.
func TestClusterMove(t *testing.T) {
	if testing.Short() {
		t.Skip("three authority processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound against a hang
	defer cancel()
	var ms []*member
	var pages []string
	for id := 1; id <= 3; id++ {
		page := "127.0.0.1:" + strconv.Itoa(freePort(t))
		pages = append(pages, "http://"+page)
		join := ""
		if id > 1 {
			join = ms[0].gossip
		}
		ms = append(ms, startMember(ctx, t, id, join, "-ranges", "counters/=1,2", "-watch", counter.Prefix,
			"-http", page, "-http-admin"))
	}
	logs := func() string {
		var b strings.Builder
		for i, m := range ms {
			fmt.Fprintf(&b, "authority %d:\n%s\n", i+1, m.logs.String())
		}
		return b.String()
	}
	dial := func(addr string) *netcode.Client {
		opts := netcode.Options{Registry: counter.Registry(), Transport: transport.LAN()}
		for {
			c, err := netcode.Dial(ctx, addr, opts)
			if err == nil {
				return c
			}
			if ctx.Err() != nil {
				t.Fatalf("dial %s: %v\n%s", addr, err, logs())
			}
			time.Sleep(50 * time.Millisecond) // a member refuses clients until it has caught up
		}
	}
	c := dial(ms[0].addr)
	defer c.Close()
	if err := c.Watch(counter.Prefix); err != nil {
		t.Fatal(err)
	}

	calls := map[netcode.CallID]string{}
	confirmed := map[string]bool{}
	failed := 0
	frame := func() {
		for _, ev := range c.Update() {
			if ev.Kind != netcode.EventResult {
				continue
			}
			if name, ok := calls[ev.Call]; ok {
				delete(calls, ev.Call)
				if ev.Err == nil {
					confirmed[name] = true
				} else {
					failed++
					t.Logf("call %s failed: %v", name, ev.Err)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	next := 0
	call := func() {
		if len(calls) >= 8 {
			return
		}
		next++
		name := fmt.Sprintf("k%d", next)
		if id, err := c.Call(counter.Add, counter.AddArgs(name, 1)); err == nil {
			calls[id] = name
		} else {
			next--
		}
	}
	for len(confirmed) < 20 {
		if ctx.Err() != nil {
			t.Fatalf("calls did not go through in time\n%s", logs())
		}
		call()
		frame()
	}

	// The move, through authority 2's endpoint, while the client calls.
	type answer struct {
		code int
		body string
		err  error
	}
	moved := make(chan answer, 1)
	go func() {
		form := url.Values{"range": {"counters/"}, "to": {"3"}}
		resp, err := http.PostForm(pages[1]+"/admin/move-range", form)
		if err != nil {
			moved <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		moved <- answer{code: resp.StatusCode, body: string(b), err: err}
	}()
	during := len(confirmed)
	var a answer
	for waiting := true; waiting; {
		select {
		case a = <-moved:
			waiting = false
		case <-ctx.Done():
			t.Fatalf("the move did not end in time\n%s", logs())
		default:
			call()
			frame()
		}
	}
	if a.err != nil || a.code != http.StatusOK {
		t.Fatalf("move: %d %q %v\n%s", a.code, a.body, a.err, logs())
	}
	t.Logf("move: %s", strings.TrimSpace(a.body))
	if !strings.Contains(a.body, "owners [1 2] → [3 2]") {
		t.Errorf("move answered %q: want owners [1 2] → [3 2]", a.body)
	}
	during = len(confirmed) - during
	ranBefore := metric(t, pages[2], `rewind_calls_total{function="add"}`)
	for n := len(confirmed) + 20; len(confirmed) < n; {
		if ctx.Err() != nil {
			t.Fatalf("calls did not go through after the move\n%s", logs())
		}
		call()
		frame()
	}
	for len(calls) > 0 && ctx.Err() == nil {
		frame()
	}
	// The range is the new owners': authority 3 runs the calls now, 1
	// owns nothing.
	if ran := metric(t, pages[2], `rewind_calls_total{function="add"}`); ran <= ranBefore {
		t.Errorf("authority 3 ran %v adds before the last 20 calls and %v after: the calls do not reach the new owner", ranBefore, ran)
	}
	for i, want := range []float64{0, 1, 1} {
		if got := metric(t, pages[i], "rewind_cluster_ranges_owned"); got != want {
			t.Errorf("authority %d owns %v ranges after the move, want %v", i+1, got, want)
		}
	}

	// Every confirmed call there exactly once, none twice: read on
	// authority 2 (an owner throughout) and on 3 (the new owner).
	for _, m := range ms[1:] {
		w := dial(m.addr)
		if err := w.Watch(counter.Prefix); err != nil {
			t.Fatal(err)
		}
		ok := func() bool {
			w.Update()
			if !w.WatchReady(counter.Prefix) {
				return false
			}
			for name := range confirmed {
				if v, present := w.Read(counter.Prefix + name); !present || w.Predicted(counter.Prefix+name) {
					return false
				} else if n, _ := counter.Count(v); n != 1 {
					return false
				}
			}
			return true
		}
		for !ok() {
			if ctx.Err() != nil {
				for name := range confirmed {
					v, present := w.Read(counter.Prefix + name)
					if n, _ := counter.Count(v); !present || n != 1 {
						t.Errorf("on %s: counter %s is %d (present %v): want 1", m.addr, name, n, present)
					}
				}
				t.Fatalf("confirmed calls missing on %s\n%s", m.addr, logs())
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, path := range w.Children(counter.Prefix) {
			v, _ := w.Read(counter.Prefix + path)
			if n, _ := counter.Count(v); n != 1 {
				t.Errorf("on %s: counter %s is %d: a call ran twice", m.addr, path, n)
			}
		}
		w.Close()
	}
	t.Logf("%d calls confirmed (%d while the range moved), %d failed", len(confirmed), during, failed)
	if during == 0 {
		t.Errorf("no call confirmed while the range moved")
	}
	if t.Failed() {
		t.Log(logs())
	}
}

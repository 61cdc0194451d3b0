package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
)

// freePort returns a loopback port free for both UDP and TCP (gossip uses
// both), at the time of asking.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// member is one authority process of the cluster.
type member struct {
	cmd    *exec.Cmd
	addr   string
	gossip string
	logs   *syncLog

	waited  sync.Once
	waitErr error
}

// wait waits for the process to exit, once: every caller, from any
// goroutine, gets the one Wait's result (exec.Cmd.Wait must not be called
// twice, let alone concurrently).
func (m *member) wait() error {
	m.waited.Do(func() { m.waitErr = m.cmd.Wait() })
	return m.waitErr
}

// startMember starts authority id of a three-node cluster, joining join,
// with the extra flags.
func startMember(ctx context.Context, t *testing.T, id int, join string, extra ...string) *member {
	t.Helper()
	gossip := "127.0.0.1:" + strconv.Itoa(freePort(t))
	args := []string{"-listen", "127.0.0.1:0", "-transport", "lan", "-functions", "counter",
		"-node-id", strconv.Itoa(id), "-gossip", gossip, "-cluster-key", "the cluster key of this test run",
		"-cluster-size", "3", "-calls-per-sec", "100000", "-messages-per-sec", "100000"}
	if join != "" {
		args = append(args, "-join", join)
	}
	args = append(args, extra...)
	cmd := command(ctx, t, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &member{cmd: cmd, gossip: gossip, logs: &syncLog{}}
	t.Cleanup(func() {
		m.cmd.Process.Kill() // only the processes this test started
		m.wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			m.logs.add(sc.Text())
			if a := addrRE.FindStringSubmatch(sc.Text()); a != nil && !sent {
				ready <- a[1]
				sent = true
			}
		}
		if !sent {
			close(ready)
		}
	}()
	select {
	case a, ok := <-ready:
		if !ok {
			t.Fatalf("authority %d did not start:\n%s", id, m.logs.String())
		}
		m.addr = a
	case <-ctx.Done():
		t.Fatalf("authority %d did not start in time", id)
	}
	return m
}

// TestClusterKill runs three authority processes as one cluster and a
// client (the netcode library, with the other two as failover addresses)
// adding to a counter of its own per call. The client's authority is
// killed with SIGKILL: the others declare it down, hand over and take over
// its calls; the client notices, fails over, resumes its creator, and
// goes on. Every call confirmed before the kill is there afterwards, and
// no call ran twice.
func TestClusterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("three authority processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound against a hang
	defer cancel()
	m1 := startMember(ctx, t, 1, "")
	m2 := startMember(ctx, t, 2, m1.gossip)
	m3 := startMember(ctx, t, 3, m1.gossip)

	tcfg := transport.LAN()
	tcfg.KeepAlive, tcfg.IdleTimeout = 200*time.Millisecond, time.Second // notice a dead authority within a second
	opts := netcode.Options{Registry: counter.Registry(), Transport: tcfg,
		Failover:  []string{m2.addr, m3.addr},
		Reconnect: netcode.Reconnect{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}}
	var c *netcode.Client
	for {
		var err error
		if c, err = netcode.Dial(ctx, m1.addr, opts); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("dial: %v\n%s", err, m1.logs.String())
		}
		time.Sleep(50 * time.Millisecond) // the member refuses clients until it has caught up
	}
	defer c.Close()
	if err := c.Watch(counter.Prefix); err != nil {
		t.Fatal(err)
	}
	creator := c.Stats().Creator

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
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	next := 0
	play := func(n int) {
		for range n {
			for {
				if ctx.Err() != nil {
					t.Fatalf("calls did not go through in time\n%s\n%s", m2.logs.String(), m3.logs.String())
				}
				if len(calls) < 8 {
					next++
					name := fmt.Sprintf("k%d", next)
					if id, err := c.Call(counter.Add, counter.AddArgs(name, 1)); err == nil {
						calls[id] = name
						break
					}
					next--
				}
				frame()
			}
			frame()
		}
	}
	play(40)
	for len(calls) > 0 && ctx.Err() == nil {
		frame()
	}
	before := len(confirmed)

	killed := time.Now()
	if err := m1.cmd.Process.Kill(); err != nil { // SIGKILL, by PID
		t.Fatal(err)
	}
	m1.wait()
	play(40)
	for (len(calls) > 0 || !c.WatchReady(counter.Prefix)) && ctx.Err() == nil {
		frame()
	}
	st := c.Stats()
	t.Logf("failed over to %s %v after the kill; %d calls confirmed before, %d after, %d failed", st.Addr, time.Since(killed).Round(time.Millisecond), before, len(confirmed)-before, failed)
	if st.Failovers < 1 || st.Creator != creator {
		t.Errorf("after the kill: %d failovers (want at least 1), creator %x (want %x, resumed)", st.Failovers, st.Creator, creator)
	}
	// Every confirmed call is there, once; none ran twice.
	for name := range confirmed {
		v, ok := c.Read(counter.Prefix + name)
		if n, _ := counter.Count(v); !ok || n != 1 {
			t.Errorf("counter %s is %d (present %v) after the kill: want 1", name, n, ok)
		}
	}
	for _, path := range c.Children(counter.Prefix) {
		v, _ := c.Read(counter.Prefix + path)
		if n, _ := counter.Count(v); n != 1 {
			t.Errorf("counter %s is %d: a call ran twice", path, n)
		}
	}
	if t.Failed() {
		t.Logf("authority 2:\n%s", m2.logs.String())
	}
}

// TestClusterKillAfterFailedCalls: the killed authority's last calls
// failed (a game rule refused them; their records carry no outputs). The
// member that takes its calls over checks them for re-runs and must not
// crash on a record without a version (it did: an index out of range in
// processReruns, which brought the whole cluster below its quorum); the
// client fails over to it and its calls go on.
func TestClusterKillAfterFailedCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("three authority processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound against a hang
	defer cancel()
	m1 := startMember(ctx, t, 1, "")
	m2 := startMember(ctx, t, 2, m1.gossip)
	m3 := startMember(ctx, t, 3, m1.gossip)
	exited := make(chan error, 1)
	go func() { exited <- m2.wait() }()

	tcfg := transport.LAN()
	tcfg.KeepAlive, tcfg.IdleTimeout = 200*time.Millisecond, time.Second
	opts := netcode.Options{Registry: counter.Registry(), Transport: tcfg,
		Failover:  []string{m2.addr, m3.addr},
		Reconnect: netcode.Reconnect{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}}
	var c *netcode.Client
	for {
		var err error
		if c, err = netcode.Dial(ctx, m1.addr, opts); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("dial: %v\n%s", err, m1.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Close()
	// Calls until answered; the bad ones (no counter name) fail at the
	// authority.
	call := func(args []byte) error {
		id, err := c.Call(counter.Add, args)
		for err != nil {
			if ctx.Err() != nil {
				t.Fatalf("call: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
			id, err = c.Call(counter.Add, args)
		}
		for {
			for _, ev := range c.Update() {
				if ev.Kind == netcode.EventResult && ev.Call == id {
					return ev.Err
				}
			}
			select {
			case err := <-exited:
				t.Fatalf("authority 2 exited (%v):\n%s", err, m2.logs.String())
			case <-ctx.Done():
				t.Fatalf("no result\n%s\n%s", m2.logs.String(), m3.logs.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	if err := call(counter.AddArgs("ok", 1)); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := call([]byte{1, 2, 3}); err == nil {
			t.Fatal("a call with bad arguments succeeded")
		}
	}
	if err := m1.cmd.Process.Kill(); err != nil { // SIGKILL, by PID, within a second of the failed calls
		t.Fatal(err)
	}
	m1.wait()
	// The client fails over (to m2, which takes m1's calls over) and goes
	// on: a call pending across the failover may be refused as too old,
	// the next ones go through.
	for ok := 0; ok < 3; {
		if err := call(counter.AddArgs("after", 1)); err == nil {
			ok++
		}
	}
	select {
	case err := <-exited:
		t.Fatalf("authority 2 exited (%v) after taking over:\n%s", err, m2.logs.String())
	default:
	}
	if st := c.Stats(); st.Failovers < 1 {
		t.Errorf("no failover: %+v", st)
	}
}

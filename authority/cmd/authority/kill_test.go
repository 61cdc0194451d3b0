package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
)

// killFlush is the kill test's group-commit interval of the log.
const killFlush = 20 * time.Millisecond

var addrRE = regexp.MustCompile(`authority starting"? addr=(\S+)`)

// startDurable starts the authority binary (this test binary running main)
// on dir and returns it with its address once it serves.
func startDurable(ctx context.Context, t *testing.T, dir, httpAddr string) (*exec.Cmd, string, *syncLog) {
	t.Helper()
	cmd := command(ctx, t, "-listen", "127.0.0.1:0", "-transport", "lan", "-functions", "counter", "-http", httpAddr,
		"-data", dir, "-wal-flush", killFlush.String(), "-max-change-age", "3s", "-calls-per-sec", "100000", "-messages-per-sec", "100000", "-snapshot-values-per-sec", "1000000")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &syncLog{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			logs.add(sc.Text())
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		if !sent {
			close(addr)
		}
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			cmd.Wait()
			t.Fatalf("the authority did not start:\n%s", logs.String())
		}
		return cmd, a, logs
	case <-ctx.Done():
		t.Fatalf("the authority did not start in time: %v", ctx.Err())
	}
	return nil, "", nil
}

// counters reads every counter the authority holds through a watch of the
// counter prefix (its snapshot, up to the WatchDone).
func counters(ctx context.Context, t *testing.T, c *testclient.Client) map[string]int64 {
	t.Helper()
	if err := c.Send(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{counter.Prefix}, Done: true}}); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("reading the counters: %v", err)
		}
		switch m.Kind {
		case wire.KindValues:
			for _, v := range m.Values.Items {
				n, _ := counter.Count(v.Value)
				out[strings.TrimPrefix(v.Path, counter.Prefix)] = n
			}
		case wire.KindWatchDone:
			return out
		}
	}
}

// syncLog collects a process's log lines from its reader goroutine.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

type confirmed struct {
	name string
	at   time.Time // when its result arrived
}

// logCounts reads the archive's appended and durable log records from the
// authority's /metrics.
func logCounts(ctx context.Context, t *testing.T, httpAddr string) (appended, durable float64) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	appended, durable = -1, -1
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		switch {
		case err != nil:
		case f[0] == "rewind_archive_log_records_total":
			appended = v
		case f[0] == "rewind_archive_durable_records_total":
			durable = v
		}
	}
	if appended < 0 || durable < 0 {
		t.Fatalf("metrics without the log's record counts:\n%s", b)
	}
	return appended, durable
}

// durableBarrier waits until every log record appended so far is on disk.
// Every call confirmed before it is called is then durable: the server
// answers a call only after appending its record.
func durableBarrier(ctx context.Context, t *testing.T, httpAddr string) {
	t.Helper()
	target, _ := logCounts(ctx, t, httpAddr)
	for {
		if _, d := logCounts(ctx, t, httpAddr); d >= target {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the log never caught up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKillLoop kills the durable authority with SIGKILL at random moments
// while a client makes counter calls (each to a counter of its own), and
// restarts it on the same directory, six times: after each restart every
// call confirmed before a moment at which the log was known durable (a
// barrier read from /metrics at a random point of each round, after which
// the calls go on until the kill) is there, no counter was incremented
// twice, and the client resumes its creator with its token. The rule is the
// server's own durability signal, not a time bound, so a slow disk on a
// loaded machine only moves the barrier.
func TestKillLoop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a bound against a hang
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	httpAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	var done []confirmed
	var resume []byte
	var creator uint32
	var seq uint64
	var must []confirmed // calls that must survive every later restart
	const rounds = 6
	next := 0
	for round := 0; round <= rounds; round++ {
		cmd, addr, logs := startDurable(ctx, t, dir, httpAddr)
		c, err := testclient.Dial(ctx, addr, testclient.Config{Transport: transport.LAN(), Resume: resume, Seq: seq})
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: dial: %v\n%s", round, err, logs.String())
		}
		if round > 0 && c.Creator() != creator {
			t.Errorf("round %d: creator %d after the restart, want %d (resumed)", round, c.Creator(), creator)
		}
		creator, resume = c.Creator(), c.Welcome().Resume
		got := counters(ctx, t, c)
		for name, n := range got {
			if n != 1 {
				t.Errorf("round %d: counter %s is %d: a call ran twice", round, name, n)
			}
		}
		for _, d := range must {
			if _, ok := got[d.name]; !ok {
				t.Errorf("round %d (seed %d): call %s, confirmed before the log was known durable, is lost", round, seed, d.name)
			}
		}
		if round == rounds {
			c.Close("done")
			cmd.Process.Kill() // only the process this test started
			cmd.Wait()
			break
		}
		// Calls until a random moment, with a durability barrier at a
		// random point before it, then SIGKILL, sometimes with a call in
		// flight.
		span := time.Duration(600+rng.IntN(800)) * time.Millisecond
		barrierAt := time.Now().Add(time.Duration(rng.Int64N(int64(span) / 2)))
		deadline := time.Now().Add(span)
		roundStart, barrier := len(done), false
		for time.Now().Before(deadline) {
			if !barrier && time.Now().After(barrierAt) {
				barrier = true
				durableBarrier(ctx, t, httpAddr)
				must = append(must, done[roundStart:]...)
			}
			next++
			name := fmt.Sprintf("k%d", next)
			id, err := c.Call("add", counter.AddArgs(name, 1), c.ServerNow(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if rng.IntN(20) == 0 && time.Until(deadline) < 100*time.Millisecond {
				break // killed with this call unanswered
			}
			if err := waitResult(ctx, c, id); err != nil {
				t.Fatalf("round %d: call %s: %v\n%s", round, name, err, logs.String())
			}
			done = append(done, confirmed{name: name, at: time.Now()})
			time.Sleep(2 * time.Millisecond) // a player's pace, not a flood
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL, by PID
			t.Fatal(err)
		}
		// The calls after the barrier may be lost, never run twice.
		cmd.Wait()
		seq = c.Seq()
		c.Close("killed")
	}
	if len(must) < 20 {
		t.Fatalf("only %d calls confirmed before a durability barrier in %d kills", len(must), rounds)
	}
	t.Logf("%d calls confirmed over %d kills, %d of them before a durability barrier", len(done), rounds, len(must))
}

// waitResult reads messages until the CallResult of id, which must be OK.
func waitResult(ctx context.Context, c *testclient.Client, id wire.CallID) error {
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return err
		}
		switch m.Kind {
		case wire.KindCallResult:
			if m.CallResult.ID != id {
				continue
			}
			if m.CallResult.Status != wire.CallOK {
				return fmt.Errorf("status %v: %s", m.CallResult.Status, m.CallResult.Error)
			}
			return nil
		case wire.KindError:
			return errors.New(m.Error.Text)
		}
	}
}

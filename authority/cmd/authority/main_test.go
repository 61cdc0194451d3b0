package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/cli"
	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
)

// mainEnv makes the test binary run main instead of the tests, so the
// tests can check exit statuses and signal handling of the real command.
const mainEnv = "REWIND_AUTHORITY_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRunBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"positional argument", []string{"extra"}},
		{"unknown registry", []string{"-functions", "bogus"}},
		{"unknown transport", []string{"-transport", "carrier-pigeon"}},
		{"bad log level", []string{"-log-level", "loud"}},
		{"zero tick", []string{"-tick", "0"}},
		{"short secret", []string{"-secret", "short"}},
		{"node id too large", []string{"-node-id", "300"}},
		{"no sessions", []string{"-max-sessions", "0"}},
		{"negative call rate", []string{"-calls-per-sec", "-1"}},
		{"no message budget", []string{"-messages-per-sec", "0"}},
		{"no waiting sessions", []string{"-max-pending-sessions", "0"}},
		{"negative handshake rate", []string{"-handshakes-per-host", "-1"}},
		{"no hello time", []string{"-hello-timeout", "0s"}},
		{"no snapshot budget", []string{"-snapshot-values-per-sec", "0"}},
		{"bad duration", []string{"-max-change-age", "soon"}},
		{"zero change age", []string{"-max-change-age", "0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"-listen", "127.0.0.1:0"}, tc.args...)
			err := program.Run(context.Background(), args, &stderr, func(net.Addr) { t.Error("server started") })
			if !errors.Is(err, cli.ErrUsage) {
				t.Fatalf("run(%q) = %v, want a usage error", tc.args, err)
			}
		})
	}
}

func TestRunBusyPort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var stderr bytes.Buffer
	err = program.Run(context.Background(), []string{"-listen", pc.LocalAddr().String()}, &stderr, func(net.Addr) { t.Error("server started") })
	if err == nil || errors.Is(err, cli.ErrUsage) {
		t.Fatalf("run on a busy port = %v, want a listen error", err)
	}
}

// serve runs the command in the background and returns its address and
// the channel run's result arrives on.
func serve(t *testing.T, ctx context.Context, args ...string) (string, <-chan error) {
	t.Helper()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- program.Run(ctx, append([]string{"-listen", "127.0.0.1:0", "-transport", "lan"}, args...), &stderr,
			func(a net.Addr) { addr <- a.String() })
	}()
	select {
	case a := <-addr:
		return a, done
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, stderr.String())
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return "", nil
}

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	addr, done := serve(t, sctx, "-functions", "counter")

	c, err := testclient.Dial(ctx, addr, testclient.Config{Transport: transport.LAN()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close("test over")
	id, err := c.Call("add", counter.AddArgs("smoke", 3), c.ServerNow(), 0)
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, ctx, c, wire.KindCallResult)
	if m.CallResult.ID != id || m.CallResult.Status != wire.CallOK {
		t.Fatalf("result %+v", m.CallResult)
	}

	stop()
	if m := next(t, ctx, c, wire.KindError); m.Error.Code != authority.CodeShutdown {
		t.Fatalf("error %+v, want the shutdown code", m.Error)
	}
	if err := <-done; err != nil {
		t.Fatalf("run after shutdown: %v", err)
	}
}

func TestRunWithSecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	secret := []byte("a secret of at least sixteen bytes")
	addr, done := serve(t, sctx, "-secret", string(secret))

	tcfg := transport.LAN()
	tcfg.Secret = secret
	var nonce [16]byte
	rand.Read(nonce[:])
	tok, err := authority.IssueToken(secret, "player-1", time.Now().Add(time.Minute).UnixNano(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	c, err := testclient.Dial(ctx, addr, testclient.Config{Transport: tcfg, Token: tok})
	if err != nil {
		t.Fatalf("with a valid token: %v", err)
	}
	c.Close("test over")
	// The same token again is a replay.
	if _, err := testclient.Dial(ctx, addr, testclient.Config{Transport: tcfg, Token: tok}); !errors.Is(err, testclient.ErrRefused) {
		t.Fatalf("replayed token: %v, want refused", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, ctx context.Context, c *testclient.Client, kind wire.Kind) *wire.Message {
	t.Helper()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v", kind, err)
		}
		if m.Kind == kind {
			return m
		}
	}
}

// command runs this test binary as the authority command.
func command(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	return cmd
}

func TestMainExitStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("bad flag exits 2", func(t *testing.T) {
		out, err := command(ctx, t, "-functions", "bogus").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit: %v, want status 2\n%s", err, out)
		}
		if !strings.Contains(string(out), `-functions "bogus"`) {
			t.Fatalf("output does not name the bad flag:\n%s", out)
		}
	})

	t.Run("busy port exits 1", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		out, err := command(ctx, t, "-listen", pc.LocalAddr().String()).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit: %v, want status 1\n%s", err, out)
		}
		if strings.Contains(string(out), "authority: authority:") || !strings.Contains(string(out), "address already in use") {
			t.Errorf("want one program name and the cause:\n%s", out)
		}
	})

	t.Run("-h exits 0", func(t *testing.T) {
		out, err := command(ctx, t, "-h").CombinedOutput()
		if err != nil {
			t.Fatalf("exit: %v, want status 0\n%s", err, out)
		}
		if !strings.Contains(string(out), "-functions") || !strings.Contains(string(out), "counter|none") {
			t.Errorf("usage does not list the registries:\n%s", out)
		}
	})

	t.Run("SIGTERM exits 0", func(t *testing.T) {
		cmd := command(ctx, t, "-listen", "127.0.0.1:0", "-transport", "lan")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "msg=serving") {
				break
			}
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, strings.Join(lines, "\n"))
		}
		if !strings.Contains(strings.Join(lines, "\n"), "authority stopped") {
			t.Fatalf("no stop log:\n%s", strings.Join(lines, "\n"))
		}
	})
}

package ops_test

import (
	"bytes"
	"context"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/examples/counter"
)

var screenshot = flag.String("ops.screenshot", "", "write the debug page's screenshot to this PNG `file` (docs/debug-page.png)")

// chromium finds Debian's Chromium (make deps installs it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (make deps installs Debian's chromium): the debug page's browser test cannot run")
	return ""
}

// TestDebugPageInBrowser opens /debug/rewind in headless Chromium against
// a durable authority with three players, one of whose calls was re-run after a
// late one: the page shows the sessions and the function, refreshes
// itself (a new call shows without a reload), and explains the re-run.
func TestDebugPageInBrowser(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	r := newRig(t, func(c *authority.ServerConfig) { c.Data = archiveOptions(dir) })
	alice, bob, carol := r.dial("alice"), r.dial("bob"), r.dial("carol")
	for _, c := range []interface{ TimeSync(int64) error }{alice, bob, carol} {
		if err := c.TimeSync(time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	// alice at W, bob at W+100ms (reads alice's count), then carol at
	// W+50ms: late for bob's call, which the authority re-runs.
	w := alice.ServerNow()
	// Each result is awaited before the next call, so the calls reach
	// the authority in this order.
	r.call(alice, w)
	r.await(alice, 1)
	r.call(bob, w+int64(100*time.Millisecond))
	r.await(bob, 1)
	r.call(carol, w+int64(50*time.Millisecond))
	r.await(carol, 1)
	eventually(t, "bob's call re-run", func() bool {
		v, _ := value(r.scrape(), "rewind_reruns_total", "function", counter.Add)
		return v >= 1
	})
	r.calls(carol, 4)
	eventually(t, "seven calls run", func() bool {
		v, _ := value(r.scrape(), "rewind_calls_total", "function", counter.Add)
		return v == 7
	})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // root on CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		// A closed network: no background fetches that would fail.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// Bounded: a browser that cannot start, or a page that never
	// refreshes, fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("reading #%s: %v", id, err)
		}
		return v
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(r.base+"/debug/rewind"),
		chromedp.WaitVisible(chromedp.ID("sessions")),
	); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	sessions, functions, reruns, taken, calls := text("sessions"), text("functions"), text("reruns"), text("taken"), text("calls")
	for _, p := range []string{"alice", "bob", "carol"} {
		if !strings.Contains(sessions, p) {
			t.Errorf("sessions do not show %s:\n%s", p, sessions)
		}
	}
	if !strings.Contains(functions, counter.Add) {
		t.Errorf("functions do not show %q:\n%s", counter.Add, functions)
	}
	if !strings.Contains(reruns, "read counters/clicks written 50ms before the call by carol") {
		t.Errorf("the re-run is not explained:\n%s", reruns)
	}
	before, err := strconv.Atoi(strings.TrimSpace(calls))
	if err != nil {
		t.Fatalf("calls %q: %v", calls, err)
	}

	// More calls; the page shows them without a reload.
	r.calls(alice, 3)
	want := strconv.Itoa(before + 3)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`Number(document.getElementById("calls").textContent.trim()) >= `+want+
			` && document.getElementById("taken").textContent !== `+strconv.Quote(taken),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)),
	); err != nil {
		t.Fatalf("the page did not refresh to %s calls: %v", want, err)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() < 800 || img.Bounds().Dy() < 400 {
		t.Fatalf("screenshot: %v, %v", err, img.Bounds())
	}
	if *screenshot != "" {
		if err := os.WriteFile(*screenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

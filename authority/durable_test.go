package authority

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// pump hands what the node recorded to an archive, as the server does.
func pump(t *testing.T, h *harness, a *archive.Archive) Persist {
	t.Helper()
	p := h.n.TakePersist()
	for i := range p.Entries {
		if err := a.Append(p.Entries[i].Now, &p.Entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	a.AddFinal(p.Final)
	return p
}

func durableConfig(c *Config) {
	c.Persist = true
	c.Limits.CallsPerSecond = 1000
}

func addCall(h *harness, name string, seq uint64, w int64) {
	c := h.clients[name]
	h.send(name, &wire.Message{Kind: wire.KindCall, Call: wire.Call{
		ID: wire.CallID{Creator: c.creator, Seq: seq}, Name: "add", Args: u64(1),
		Time: wire.Time{Nanos: w, Creator: c.creator}}})
}

// TestRestoreFromArchive: a node that logged its calls and snapshotted its
// final values is rebuilt from the archive after a crash: the same values,
// its creator resumable with the same token, and a call sent again
// answered from its record, not run again.
func TestRestoreFromArchive(t *testing.T) {
	dir := t.TempDir()
	o := archive.DefaultOptions(dir)
	o.FlushEvery = time.Millisecond
	a, err := archive.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, durableConfig)
	welcomeOf(t, h, "a", nil)
	token := h.clients["a"].resume
	skew := int64(h.n.cfg.Store.MaxFutureSkew)
	const calls = 300
	for i := 1; i <= calls; i++ {
		h.now += 10 * ms
		addCall(h, "a", uint64(i), h.now)
		h.n.Tick(h.now)
		h.drain()
		p := pump(t, h, a)
		if i%50 == 0 {
			a.Snapshot(p.Horizon, p.Horizon-skew, h.n.ArchiveMeta())
		}
	}
	if err := a.WaitSnapshots(); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Blocks == 0 {
		t.Fatal("no snapshot block written")
	}
	// The crash: the files as they are now, the process gone.
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	want, _ := h.n.Store().Latest("total", netcode.Time{Nanos: 1 << 62})
	if getU64(want.Value) != calls {
		t.Fatalf("total %d before the crash", getU64(want.Value))
	}

	o.Dirs = []string{crashed}
	b, err := archive.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h2 := newHarnessWith(t, durableConfig)
	h2.now = h.now + 300*ms
	refused, err := h2.n.Restore(h2.now, b.Recovered())
	if err != nil || refused != 0 {
		t.Fatalf("restore: %d refused, %v", refused, err)
	}
	got, _ := h2.n.Store().Latest("total", netcode.Time{Nanos: 1 << 62})
	if getU64(got.Value) != calls || got.Time != want.Time {
		t.Fatalf("total %d@%v after the restart, want %d@%v", getU64(got.Value), got.Time, calls, want.Time)
	}
	// The client resumes its creator with its token.
	w := welcomeOf(t, h2, "a", token)
	if w.Creator != h.clients["a"].creator {
		t.Fatalf("creator %d after the restart, want %d", w.Creator, h.clients["a"].creator)
	}
	// The last call, sent again, is answered from its record.
	addCall(h2, "a", calls, h.now)
	out := h2.drain()
	if !strings.Contains(out, "CallResult") || strings.Contains(out, "rejected") || strings.Contains(out, "failed") {
		t.Fatalf("resent call:\n%s", out)
	}
	if st := h2.n.Stats(); st.Calls != 0 || st.Restored == 0 {
		t.Fatalf("a resent call ran again, or nothing was restored: %+v", st)
	}
	// A fresh client gets a creator id not used before the crash.
	welcomeOf(t, h2, "b", nil)
	if h2.clients["b"].creator == h.clients["a"].creator {
		t.Fatal("a creator id was reused after the restart")
	}
	// New calls go on from the restored state.
	h2.now += 10 * ms
	addCall(h2, "a", calls+1, h2.now)
	h2.n.Tick(h2.now)
	h2.drain()
	got, _ = h2.n.Store().Latest("total", netcode.Time{Nanos: 1 << 62})
	if getU64(got.Value) != calls+1 {
		t.Fatalf("total %d after one more call", getU64(got.Value))
	}
}

// TestNotDurableRefuses: once the shell says the log failed, new calls and
// raw writes are refused with the reason; nothing is stored.
func TestNotDurableRefuses(t *testing.T) {
	h := newHarnessWith(t, durableConfig)
	welcomeOf(t, h, "a", nil)
	h.n.SetNotDurable("archive: log failed: disk full")
	h.now += 10 * ms
	addCall(h, "a", 1, h.now)
	out := h.drain()
	if !strings.Contains(out, "not durable") || !strings.Contains(out, "disk full") {
		t.Fatalf("call while not durable:\n%s", out)
	}
	if _, ok := h.n.Store().Latest("total", netcode.Time{Nanos: 1 << 62}); ok {
		t.Fatal("a refused call stored a value")
	}
	if p := h.n.TakePersist(); len(p.Entries) != 1 || p.Entries[0].Kind != archive.EntryCreator {
		t.Fatalf("entries %+v", p.Entries)
	}
	h.n.SetNotDurable("")
	addCall(h, "a", 2, h.now)
	if out := h.drain(); strings.Contains(out, "not durable") {
		t.Fatalf("still refused:\n%s", out)
	}
}

// TestRestoreReruns: two clients add to one total with write times that
// arrive out of order, so the node re-runs calls a late add invalidated;
// the node restored from its archive at any point holds the same valid
// values and the same versions of every live call as the node that wrote
// it.
func TestRestoreReruns(t *testing.T) {
	for _, stop := range []int{37, 120, 199} {
		t.Run(fmt.Sprint(stop), func(t *testing.T) {
			dir := t.TempDir()
			o := archive.DefaultOptions(dir)
			o.FlushEvery = time.Millisecond
			a, err := archive.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarnessWith(t, durableConfig)
			welcomeOf(t, h, "a", nil)
			welcomeOf(t, h, "b", nil)
			skew := int64(h.n.cfg.Store.MaxFutureSkew)
			rng := rand.New(rand.NewPCG(uint64(stop), 9))
			seq := map[string]uint64{}
			lastW := map[string]int64{}
			for i := 1; i <= stop; i++ {
				h.now += 10 * ms
				name := []string{"a", "b"}[rng.IntN(2)]
				// b's calls arrive up to 60 ms late: earlier than a's
				// calls already run, which they invalidate.
				w := h.now
				if name == "b" {
					w -= int64(rng.IntN(6)) * 10 * ms
				}
				w = max(w, lastW[name]+1)
				lastW[name] = w
				seq[name]++
				addCall(h, name, seq[name], w)
				if i%3 == 0 {
					h.n.Tick(h.now)
				}
				h.drain()
				p := pump(t, h, a)
				if i%40 == 0 {
					a.Snapshot(p.Horizon, p.Horizon-skew, h.n.ArchiveMeta())
				}
			}
			if h.n.Stats().Reruns == 0 {
				t.Fatal("no call was re-run: the test does not test re-runs")
			}
			if err := a.WaitSnapshots(); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := archive.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			h2 := newHarnessWith(t, durableConfig)
			h2.now = h.now
			if refused, err := h2.n.Restore(h2.now, b.Recovered()); err != nil || refused != 0 {
				t.Fatalf("restore: %d refused, %v", refused, err)
			}
			cut := max(h.n.Store().Horizon(), h2.n.Store().Horizon())
			valid := func(n *Node) []string {
				var out []string
				n.Store().PathsUnder("", func(p string) bool {
					n.Store().History(p, func(v netcode.PathValue) bool {
						if v.State == netcode.Valid && v.Time.Nanos >= cut {
							out = append(out, fmt.Sprintf("%s@%v=%d", p, v.Time, getU64(v.Value)))
						}
						return true
					})
					return true
				})
				return out
			}
			if d := cmp.Diff(valid(h.n), valid(h2.n)); d != "" {
				t.Fatalf("valid values (-written +restored):\n%s", d)
			}
			// And the final value they build on.
			w1, ok1 := h.n.Store().Latest("total", netcode.Time{Nanos: cut})
			w2, ok2 := h2.n.Store().Latest("total", netcode.Time{Nanos: cut})
			if ok1 != ok2 || w1.Time != w2.Time || getU64(w1.Value) != getU64(w2.Value) {
				t.Fatalf("total before %d: written %v@%v, restored %v@%v", cut, getU64(w1.Value), w1.Time, getU64(w2.Value), w2.Time)
			}
			for id, rec := range h.n.calls {
				rec2 := h2.n.calls[id]
				if rec.call.Time < h2.n.Store().Horizon() {
					continue
				}
				if rec2 == nil || len(rec2.versions) != len(rec.versions) || (rec.lastErr == nil) != (rec2.lastErr == nil) {
					t.Fatalf("call %v: restored record %+v, written %+v", id, rec2, rec)
				}
			}
			// The first tick finds nothing left to re-run.
			before := h2.n.Stats().Reruns
			h2.n.Tick(h2.now)
			if got := h2.n.Stats().Reruns; got != before {
				t.Fatalf("%d re-runs after the restore: the log missed some", got-before)
			}
		})
	}
}

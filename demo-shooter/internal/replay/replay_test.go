package replay

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/match"
	"github.com/rewindnet/rewind/netcode"
)

// recorded plays a short match of bots against a durable authority in
// this process, with an observer client that watches every player's
// values from the start and keeps their history. It returns the archive's
// directory, the observer (still connected; the authority still runs)
// and a stop function that shuts the authority down.
func recorded(t *testing.T, ctx context.Context, bots int, play time.Duration) (string, *netcode.Client, func()) {
	t.Helper()
	dir := t.TempDir()
	cfg := authority.DefaultServerConfig("127.0.0.1:0", game.Registry())
	cfg.Data = archive.DefaultOptions(dir)
	srv, err := authority.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-served
	}
	t.Cleanup(stop)
	addr := srv.Addr().String()
	dial := func() *netcode.Client {
		c, err := netcode.Dial(ctx, addr, netcode.Options{Registry: game.Registry()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	obs := dial()
	if err := obs.WatchHistory(game.PlayersPrefix, time.Hour); err != nil {
		t.Fatal(err)
	}
	var players []*match.Player
	for i := range bots {
		p, err := match.NewPlayer(dial(), fmt.Sprintf("bot%d", i), game.NewBot(uint64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		players = append(players, p)
	}
	frame := func() {
		now := time.Now()
		for _, p := range players {
			p.Frame(now)
		}
		obs.Update()
		time.Sleep(match.Frame)
	}
	for end := time.Now().Add(play); time.Now().Before(end); {
		frame()
	}
	// The bots stop and every call is answered; then they leave.
	for _, p := range players {
		p.Idle = true
	}
	for waiting := 1; waiting > 0 && ctx.Err() == nil; {
		frame()
		waiting = 0
		for _, p := range players {
			waiting += p.Awaiting()
		}
	}
	for _, p := range players {
		p.C.Close()
	}
	return dir, obs, stop
}

// disagree lists how the replay differs from what the observer holds:
// every valid value the observer has of a player path must be in the
// replay at its exact time with the same bytes, and each path's latest
// value must be the same. Empty when they agree.
func disagree(m *Match, obs *netcode.Client) []string {
	var out []string
	ids := 0
	for _, seg := range obs.Children(game.PlayersPrefix) {
		ids++
		for _, field := range []string{game.FieldName, game.FieldMotion, game.FieldAim, game.FieldLife, game.FieldScore, game.FieldShot, game.FieldGravity} {
			path := game.PlayersPrefix + seg + "/" + field
			seen := obs.History(path)
			kept := m.tl.History(path)
			for _, v := range seen {
				i := slices.IndexFunc(kept, func(k netcode.PathValue) bool { return k.Time == v.Time })
				if i < 0 || !bytes.Equal(kept[i].Value, v.Value) {
					out = append(out, fmt.Sprintf("%s at %v: the observer saw %x, the replay has it: %v", path, v.Time, v.Value, i >= 0))
				}
			}
			if len(seen) > 0 {
				last, _ := m.View().Read(path)
				if want := seen[len(seen)-1].Value; !bytes.Equal(last, want) {
					out = append(out, fmt.Sprintf("%s: the replay ends with %x, the observer with %x", path, last, want))
				}
			}
		}
	}
	if ids != len(m.Players()) {
		out = append(out, fmt.Sprintf("the observer saw %d players, the replay has %v", ids, m.Players()))
	}
	return out
}

// TestReplayHoldsTheMatch records a real match (an authority with a data
// directory, bots over loopback) and reads it back: every value an
// observer client saw confirmed is in the replay, at its exact time, with
// its bytes; the positions decoded from them are the observer's; the
// summary's kills agree with the scores.
func TestReplayHoldsTheMatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound against a hang
	defer cancel()
	dir, obs, stop := recorded(t, ctx, 4, 3*time.Second)

	// The live archive is read (read-only) until it has caught up with
	// what the observer saw, which bounds the wait without a guess at the
	// machine's speed.
	var diff []string
	for {
		obs.Update()
		m, err := Open([]string{dir}, 0)
		if err == nil {
			if diff = disagree(m, obs); len(diff) == 0 {
				break
			}
		} else {
			diff = []string{err.Error()}
		}
		if ctx.Err() != nil {
			t.Fatalf("the replay never held what the observer saw:\n%s", strings.Join(diff[:min(len(diff), 20)], "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()

	// After the authority's clean stop, the same, and the positions.
	m, err := Open([]string{dir}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := disagree(m, obs); len(d) > 0 {
		t.Fatalf("after the stop:\n%s", strings.Join(d, "\n"))
	}
	if d := m.Damage(); d != "" {
		t.Errorf("a clean stop left damage: %s", d)
	}
	view := obsView{obs}
	for _, id := range m.Players() {
		for _, at := range []int64{m.Start + (m.End-m.Start)/2, m.End} {
			got, ok1 := m.Player(id, at)
			want, ok2 := game.PlayerAt(view, id, at+1)
			if ok1 != ok2 || got.Pos != want.Pos || got.Life != want.Life || got.Score != want.Score {
				t.Errorf("player %d at %d: replay %+v (%v), observer %+v (%v)", id, at, got, ok1, want, ok2)
			}
		}
	}
	s := m.Summarise()
	if len(s.Players) != 4 || s.ScoreKills != s.Kills {
		t.Errorf("summary: %d players, score kills %d, shot kills %d", len(s.Players), s.ScoreKills, s.Kills)
	}
	for _, p := range s.Players {
		if !strings.HasPrefix(p.Name, "bot") {
			t.Errorf("player %d named %q", p.ID, p.Name)
		}
	}
	var out bytes.Buffer
	if err := s.WriteText(&out); err != nil || !strings.Contains(out.String(), "4 players") {
		t.Errorf("summary text (%v):\n%s", err, out.String())
	}
}

// obsView is the observer's game view (every player path watched).
type obsView struct{ c *netcode.Client }

func (v obsView) Read(path string) ([]byte, bool)            { return v.c.Read(path) }
func (v obsView) ReadAt(path string, t int64) ([]byte, bool) { return v.c.ReadAt(path, t) }
func (v obsView) Children(prefix string) []string            { return v.c.Children(prefix) }

// TestOpenRefuses: no archive, an empty one, an unknown player.
func TestOpenRefuses(t *testing.T) {
	if _, err := Open(nil, 0); err == nil {
		t.Error("no directory: no error")
	}
	dir := t.TempDir()
	a, err := archive.Open(archive.DefaultOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := Open([]string{dir}, 0); err == nil {
		t.Error("an empty archive: no error")
	}
}

// Package replay plays a recorded match of the demo shooter back from the
// authority's archive: the values the authority stored, read with
// archive.ReadTimeline, decoded by the game's own helpers at any time and
// from any player's view. Nothing is re-simulated: a position is the
// stored motion evaluated at the time asked (game.PlayerAt), exactly as
// the clients computed it during the match; shots, deaths and scores are
// the values the authority's calls wrote.
//
// A Match is pure and immutable once read: the window steps a clock
// through it at any speed, the summary reads it once.
package replay

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/match"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/physics"
)

// ErrEmpty: the archive holds no player of the shooter (another game's
// archive, or a match nobody joined).
var ErrEmpty = errors.New("replay: no player in the archive")

// ErrNoPlayer: a view asked for a player the match does not have.
var ErrNoPlayer = errors.New("replay: no such player")

// Match is a recorded match: the archive's timeline and what the replay
// derives from it once (the players, every shot).
type Match struct {
	tl    *archive.Timeline
	ids   []uint32
	names map[uint32]string
	shots []game.Shot // every shot, by time
	// Start and End are the synced times of the first value and just past
	// the last.
	Start, End int64
}

// Open reads the match recorded in an authority's archive spread over
// dirs with parity parity shards. Damaged records are skipped (and
// reported by Damage), so a match cut short by a crash plays up to where
// its log was durable.
func Open(dirs []string, parity int) (*Match, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("replay: no archive directory")
	}
	opts := archive.DefaultOptions(dirs[0])
	opts.Dirs, opts.Parity = dirs, parity
	opts.Recover = archive.RecoverSkip
	tl, err := archive.ReadTimeline(opts, netcode.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	return FromTimeline(tl)
}

// FromTimeline makes a Match of a timeline already read.
func FromTimeline(tl *archive.Timeline) (*Match, error) {
	m := &Match{tl: tl, names: map[uint32]string{}}
	m.Start, m.End = tl.Span()
	seen := map[uint32]bool{}
	for _, p := range tl.Paths() {
		rest, ok := strings.CutPrefix(p, game.PlayersPrefix)
		if !ok {
			continue
		}
		seg, field, _ := strings.Cut(rest, "/")
		n, err := strconv.ParseUint(seg, 10, 32)
		if err != nil {
			continue
		}
		id := uint32(n)
		if !seen[id] {
			seen[id] = true
			m.ids = append(m.ids, id)
		}
		switch field {
		case game.FieldName:
			if v, ok := tl.At(p, math.MaxInt64); ok && v.Value != nil {
				m.names[id] = string(v.Value)
			}
		case game.FieldShot:
			for _, v := range tl.History(p) {
				if s, err := game.DecodeShot(v.Value); err == nil && v.Flags&netcode.FlagEvent == 0 {
					m.shots = append(m.shots, s)
				}
			}
		}
	}
	if len(m.ids) == 0 {
		return nil, ErrEmpty
	}
	slices.Sort(m.ids)
	slices.SortStableFunc(m.shots, func(a, b game.Shot) int {
		if a.Time != b.Time {
			return cmpInt(a.Time, b.Time)
		}
		return cmpInt(int64(a.Shooter), int64(b.Shooter))
	})
	return m, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Players returns the ids of every player that played, ascending.
func (m *Match) Players() []uint32 { return m.ids }

// Name returns player id's name ("player N" without one).
func (m *Match) Name(id uint32) string {
	if n := m.names[id]; n != "" {
		return n
	}
	return "player " + strconv.FormatUint(uint64(id), 10)
}

// Find returns the player named by s: its id in decimal, or its name.
func (m *Match) Find(s string) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil && slices.Contains(m.ids, uint32(n)) {
		return uint32(n), nil
	}
	for _, id := range m.ids {
		if m.names[id] == s {
			return id, nil
		}
	}
	return 0, fmt.Errorf("%w: %q (the match has %s)", ErrNoPlayer, s, m.list())
}

func (m *Match) list() string {
	var out []string
	for _, id := range m.ids {
		out = append(out, fmt.Sprintf("%d %s", id, m.Name(id)))
	}
	return strings.Join(out, ", ")
}

// Damage describes what reading the archive skipped or rebuilt; empty
// when it was clean.
func (m *Match) Damage() string {
	if r := m.tl.Report(); !r.Clean() {
		return r.String()
	}
	return ""
}

// View is the game's view of the match (game.View): each path's stored
// values by time, as a client's store held them once confirmed.
func (m *Match) View() game.View { return view{m} }

type view struct{ m *Match }

// Read returns the path's last value of the match.
func (v view) Read(path string) ([]byte, bool) { return v.ReadAt(path, math.MaxInt64) }

// ReadAt returns the path's latest value strictly before t (a deletion
// reads as absent).
func (v view) ReadAt(path string, t int64) ([]byte, bool) {
	pv, ok := v.m.tl.At(path, t-1)
	if !ok || pv.Value == nil {
		return nil, false
	}
	return pv.Value, true
}

// Children lists the players under game.PlayersPrefix, sorted as strings
// (the only prefix the game lists).
func (v view) Children(prefix string) []string {
	if prefix != game.PlayersPrefix {
		return nil
	}
	out := make([]string, 0, len(v.m.ids))
	for _, id := range v.m.ids {
		out = append(out, strconv.FormatUint(uint64(id), 10))
	}
	slices.Sort(out)
	return out
}

// Player returns player id as it was at t (ok false before it joined).
func (m *Match) Player(id uint32, t int64) (game.Player, bool) {
	return game.PlayerAt(m.View(), id, t+1)
}

// ViewDelay returns how far behind player id's client showed the others
// at t: the view delay of its latest shot by then (a shot records the
// view time it was judged at), 0 before its first shot.
func (m *Match) ViewDelay(id uint32, t int64) time.Duration {
	b, ok := m.View().ReadAt(game.PlayerPath(id, game.FieldShot), t+1)
	if !ok {
		return 0
	}
	s, err := game.DecodeShot(b)
	if err != nil {
		return 0
	}
	return time.Duration(s.Time - s.ViewTime)
}

// Scene is what the replay shows at t from player me's view: me where it
// was at t; the others where they were at t, or, asSeen, where me's
// client showed them (at t minus its view delay, see ViewDelay); the
// shots of the last match.ShotFade. Ghost is not set (the replay has the
// confirmed values only).
func (m *Match) Scene(me uint32, t int64, asSeen bool) match.Scene {
	sc := match.Scene{Now: t, Me: me}
	others := t
	if asSeen {
		others = t - int64(m.ViewDelay(me, t))
	}
	for _, id := range m.ids {
		at := others
		if id == me {
			at = t
		}
		if pl, ok := m.Player(id, at); ok {
			sc.Players = append(sc.Players, pl)
		}
	}
	sc.Shots = m.Shots(t-int64(match.ShotFade), t+1)
	return sc
}

// Shots returns the shots with from <= Time < to, by time.
func (m *Match) Shots(from, to int64) []game.Shot {
	i, _ := slices.BinarySearchFunc(m.shots, from, func(s game.Shot, t int64) int { return cmpInt(s.Time, t) })
	j, _ := slices.BinarySearchFunc(m.shots, to, func(s game.Shot, t int64) int { return cmpInt(s.Time, t) })
	return m.shots[i:j]
}

// Kills returns the shots that killed with from <= Time < to, by time.
func (m *Match) Kills(from, to int64) []game.Shot {
	var out []game.Shot
	for _, s := range m.Shots(from, to) {
		if s.Killed {
			out = append(out, s)
		}
	}
	return out
}

// Hitbox is where a shot's target was when the authority judged the shot
// (at the shooter's view time, the rewound hitbox) and when it was fired.
type Hitbox struct {
	Shot         game.Shot
	Target       uint32
	Rewound, AtW physics.Vec2
}

// Hitbox returns the rewound hitbox of a shot that hit (ok false for a
// miss, or a target not found).
func (m *Match) Hitbox(s game.Shot) (Hitbox, bool) {
	if s.Target == 0 {
		return Hitbox{}, false
	}
	then, ok1 := m.Player(s.Target, s.ViewTime)
	now, ok2 := m.Player(s.Target, s.Time)
	if !ok1 || !ok2 {
		return Hitbox{}, false
	}
	return Hitbox{Shot: s, Target: s.Target, Rewound: then.Pos, AtW: now.Pos}, true
}

// PlayerSummary is one player's match.
type PlayerSummary struct {
	ID     uint32 `json:"id"`
	Name   string `json:"name"`
	Kills  uint32 `json:"kills"`  // its score at the end
	Deaths uint32 `json:"deaths"` // its score at the end
	Shots  int    `json:"shots"`  // shots it fired (the authority's, confirmed)
	Hits   int    `json:"hits"`   // of them, hits
	// Rewind is the mean view delay its hits were judged at (how far
	// back lag compensation took them), in milliseconds.
	RewindMs float64 `json:"rewind_ms"`
}

// Summary is what a recorded match holds.
type Summary struct {
	Duration time.Duration   `json:"duration"`
	Paths    int             `json:"paths"`
	Values   int             `json:"values"`
	Players  []PlayerSummary `json:"players"`
	Shots    int             `json:"shots"`
	Hits     int             `json:"hits"`
	Kills    int             `json:"kills"` // shots that killed
	// ScoreKills is the sum of the players' kill scores at the end, which
	// equals Kills when every shot of the match is in the archive.
	ScoreKills int    `json:"score_kills"`
	Damage     string `json:"damage,omitempty"`
}

// Summarise reads the whole match once.
func (m *Match) Summarise() Summary {
	s := Summary{Duration: time.Duration(m.End - m.Start), Paths: len(m.tl.Paths()), Damage: m.Damage()}
	for _, p := range m.tl.Paths() {
		s.Values += len(m.tl.History(p))
	}
	by := map[uint32]*PlayerSummary{}
	for _, id := range m.ids {
		ps := PlayerSummary{ID: id, Name: m.Name(id)}
		if pl, ok := m.Player(id, m.End); ok {
			ps.Kills, ps.Deaths = pl.Score.Kills, pl.Score.Deaths
		}
		s.ScoreKills += int(ps.Kills)
		s.Players = append(s.Players, ps)
	}
	for i := range s.Players {
		by[s.Players[i].ID] = &s.Players[i]
	}
	rewind := map[uint32]time.Duration{}
	for _, sh := range m.shots {
		s.Shots++
		ps := by[sh.Shooter]
		if ps != nil {
			ps.Shots++
		}
		if sh.Target != 0 {
			s.Hits++
			if ps != nil {
				ps.Hits++
				rewind[sh.Shooter] += time.Duration(sh.Time - sh.ViewTime)
			}
		}
		if sh.Killed {
			s.Kills++
		}
	}
	for i := range s.Players {
		ps := &s.Players[i]
		if ps.Hits > 0 {
			ps.RewindMs = float64(rewind[ps.ID]) / float64(ps.Hits) / float64(time.Millisecond)
		}
	}
	return s
}

// WriteText prints the summary as a table.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "a match of %.1f s: %d players, %d shots, %d hits, %d kills (%d paths, %d values stored)\n",
		s.Duration.Seconds(), len(s.Players), s.Shots, s.Hits, s.Kills, s.Paths, s.Values)
	fmt.Fprintf(&b, "%4s  %-16s %6s %6s %6s %6s %10s\n", "id", "name", "kills", "deaths", "shots", "hits", "rewind ms")
	for _, p := range s.Players {
		fmt.Fprintf(&b, "%4d  %-16s %6d %6d %6d %6d %10.0f\n", p.ID, p.Name, p.Kills, p.Deaths, p.Shots, p.Hits, p.RewindMs)
	}
	if s.ScoreKills != s.Kills {
		fmt.Fprintf(&b, "the scores count %d kills, the shots %d: the archive does not hold every shot (compacted, or damaged)\n", s.ScoreKills, s.Kills)
	}
	if s.Damage != "" {
		fmt.Fprintf(&b, "archive damage: %s\n", s.Damage)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

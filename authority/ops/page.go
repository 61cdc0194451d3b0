package ops

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rewindnet/rewind/authority"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ms":   func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) },
	"nsms": func(ns int64) string { return fmt.Sprintf("%.1f ms", float64(ns)/1e6) },
	"secs": func(d time.Duration) string {
		if d < time.Second {
			return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
		}
		return d.Round(100 * time.Millisecond).String()
	},
	"rate": func(r float64) string { return fmt.Sprintf("%.1f", r) },
	"bytes": func(n uint64) string {
		switch {
		case n >= 1<<30:
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
}).Parse(pageHTML))

// pageData is what the template shows.
type pageData struct {
	Name, Error    string
	RefreshMillis  int64
	Taken          string
	Uptime         time.Duration
	Ready          bool
	NotReady       string // why not
	St             authority.Status
	FinalityLag    time.Duration
	Sessions       []sessionRow
	SessionsHidden int
	Functions      []funcRow
	Causes         []causeRow
	Members        []memberRow
	Ranges         []rangeRow
	Peers          []peerRow
	Archive        *archiveRow
	Reruns         []rerunRow
}

type sessionRow struct {
	authority.SessionStatus
	For         time.Duration
	CallsPerSec float64
}

type funcRow struct {
	Name                 string
	Calls, Reruns, Errs  uint64
	CallsPerSec, MeanRun float64 // calls a second; mean run, µs (0: not timed)
}

type causeRow struct {
	Cause                     string
	Refusals, Strikes, Closes uint64
}

type memberRow struct {
	Name, Addr, Client, State string
	NodeID                    uint8
}

type rangeRow struct {
	Range     string
	Owners    string
	ClosedLag string
	Mine      bool
}

type peerRow struct {
	ID                     uint8
	Up, Stream, TakingOver bool
	SyncAgo, ClosedLag     string
}

type archiveRow struct {
	Dirs                        string
	DurableLag, MeanSync        string
	Records, Flushes, Snapshots uint64
	LogBytes                    uint64
	Blocks, PendingFinal        int
	Skipped                     int64
	Failures, SnapshotErrors    uint64
}

type rerunRow struct {
	Ago                    time.Duration
	Call, Function, Player string
	Version                uint32
	Explain                string
}

// page serves /debug/rewind; ?part=live serves only the part the script
// refreshes.
func (e *Endpoint) page(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.StatusTimeout)
	defer cancel()
	st, rd, err := e.status(ctx, authority.StatusOptions{Sessions: e.cfg.PageSessions, Reruns: true})
	d := pageData{Name: e.cfg.Name, RefreshMillis: RefreshEvery.Milliseconds(), Taken: time.Now().Format("15:04:05.000"),
		Uptime: time.Since(e.start).Round(time.Second), Ready: rd.ok(), NotReady: rd.why, St: st}
	if err != nil {
		d.Error = rd.why
	} else {
		e.fill(&d, &st)
	}
	name := "page"
	if r.URL.Query().Get("part") == "live" {
		name = "live"
	}
	var b bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&b, name, &d); err != nil {
		e.log.Warn("debug page", "error", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

// fill derives the page's tables from a status.
func (e *Endpoint) fill(d *pageData, st *authority.Status) {
	if st.Horizon > 0 && st.Now > st.Horizon {
		d.FinalityLag = time.Duration(st.Now - st.Horizon)
	}
	sessCalls := make(map[authority.SessionID]uint64, len(st.Sessions))
	for _, s := range st.Sessions {
		sessCalls[s.ID] = s.Calls
	}
	funcCalls := make(map[string]uint64, len(st.Stats.Funcs))
	for name, fs := range st.Stats.Funcs {
		funcCalls[name] = fs.Calls
	}
	e.mu.Lock()
	sessRate, funcRate := e.rates.update(time.Now(), sessCalls, funcCalls)
	e.mu.Unlock()

	for _, s := range st.Sessions {
		d.Sessions = append(d.Sessions, sessionRow{SessionStatus: s, For: time.Duration(st.Now - s.Connected).Round(time.Second),
			CallsPerSec: sessRate[s.ID]})
	}
	d.SessionsHidden = st.SessionsTotal - len(st.Sessions)
	for name, fs := range st.Stats.Funcs {
		row := funcRow{Name: name, Calls: fs.Calls, Reruns: fs.Reruns, Errs: fs.Errors, CallsPerSec: funcRate[name]}
		if runs := sumBuckets(fs.Runs[:]); runs > 0 {
			row.MeanRun = float64(fs.RunNanos) / float64(runs) / 1e3
		}
		d.Functions = append(d.Functions, row)
	}
	slices.SortFunc(d.Functions, func(a, b funcRow) int { return cmp.Compare(a.Name, b.Name) })
	n := &st.Stats.Node
	for k := range authority.NumCauses {
		if n.Refusals[k]+n.StrikesBy[k]+n.Closes[k] > 0 {
			d.Causes = append(d.Causes, causeRow{Cause: k.String(), Refusals: n.Refusals[k], Strikes: n.StrikesBy[k], Closes: n.Closes[k]})
		}
	}
	lag := func(t int64) string {
		if t <= 0 {
			return "unknown"
		}
		return (time.Duration(st.Now - t)).Round(time.Millisecond).String()
	}
	if cl := st.Cluster; cl != nil {
		for _, m := range cl.Members {
			state := "alive"
			switch {
			case m.Meta.NodeID == cl.NodeID:
				state = "this authority"
			case !slices.ContainsFunc(cl.Peers, func(p authority.PeerInfo) bool { return p.ID == m.Meta.NodeID && p.Up }):
				state = "alive, not up here yet"
			}
			d.Members = append(d.Members, memberRow{Name: m.Name, Addr: m.Addr, State: state, NodeID: m.Meta.NodeID, Client: m.Meta.ClientAddr})
		}
		for _, r := range cl.Ranges {
			owners := make([]string, len(r.Owners))
			for i, o := range r.Owners {
				owners[i] = fmt.Sprint(o)
			}
			d.Ranges = append(d.Ranges, rangeRow{Range: r.Range, Owners: strings.Join(owners, ", "), ClosedLag: lag(r.Closed),
				Mine: slices.Contains(r.Owners, cl.NodeID)})
		}
		for _, p := range cl.Peers {
			d.Peers = append(d.Peers, peerRow{ID: p.ID, Up: p.Up, Stream: p.Stream, TakingOver: p.TakingOver,
				SyncAgo: lag(p.SyncAt), ClosedLag: lag(p.Closed)})
		}
	}
	if len(st.Data) > 0 {
		a := &st.Stats.Archive
		row := &archiveRow{Dirs: strings.Join(st.Data, ", "), DurableLag: lag(a.DurableNow), Records: a.Log.Records,
			LogBytes: a.Log.Bytes, Flushes: a.Log.Flushes, Snapshots: a.Snapshots, Blocks: a.Blocks,
			PendingFinal: a.PendingFinal, Skipped: a.RecoverySkipped, Failures: a.Log.Failures, SnapshotErrors: a.SnapshotErrors,
			MeanSync: "none yet"}
		if a.Log.Flushes > 0 {
			row.MeanSync = fmt.Sprintf("%.2f ms", float64(a.Log.SyncNanos)/float64(a.Log.Flushes)/1e6)
		}
		if a.DurableNow > 0 {
			row.DurableLag += " ago"
		} else {
			row.DurableLag = "none yet"
		}
		d.Archive = row
	}
	for _, r := range st.Reruns {
		d.Reruns = append(d.Reruns, rerunRow{Ago: time.Duration(st.Now - r.At).Round(time.Millisecond),
			Call: fmt.Sprintf("%d:%d", r.Call.Creator, r.Call.Seq), Function: r.Function, Player: r.Player,
			Version: r.Version, Explain: r.Explain()})
	}
}

// rates turns call counters into calls a second over at least
// minRateSpan: the counts of the last sample at least that old are kept.
type rates struct {
	at       time.Time
	sessions map[authority.SessionID]uint64
	funcs    map[string]uint64
	// the rates computed at the latest sample, shown until the next
	sessRate map[authority.SessionID]float64
	funcRate map[string]float64
}

const minRateSpan = time.Second

func (r *rates) update(now time.Time, sessions map[authority.SessionID]uint64, funcs map[string]uint64) (map[authority.SessionID]float64, map[string]float64) {
	span := now.Sub(r.at)
	if r.sessions == nil || span >= minRateSpan {
		if r.sessions != nil {
			r.sessRate = make(map[authority.SessionID]float64, len(sessions))
			for id, n := range sessions {
				if old, ok := r.sessions[id]; ok && n >= old {
					r.sessRate[id] = float64(n-old) / span.Seconds()
				}
			}
			r.funcRate = make(map[string]float64, len(funcs))
			for name, n := range funcs {
				if old := r.funcs[name]; n >= old {
					r.funcRate[name] = float64(n-old) / span.Seconds()
				}
			}
		}
		r.at, r.sessions, r.funcs = now, sessions, funcs
	}
	return r.sessRate, r.funcRate
}

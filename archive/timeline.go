package archive

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/rewindnet/rewind/netcode"
)

// Timeline is a match read back from an archive, for replays: every value
// that was final in its blocks or ended valid in its log, by path and
// time, and the events its log still holds. Nothing is re-simulated:
// values are stored. A Timeline is immutable and safe for concurrent
// reads.
//
//	tl, err := archive.ReadTimeline(archive.DefaultOptions(dir), netcode.DefaultConfig())
//	start, end := tl.Span()
//	for t := start; t < end; t += frame {
//		pos, ok := tl.At("players/7/pos", t)   // the state at t
//		tl.Range(t, t+frame, func(v netcode.PathValue) bool { ...; return true }) // what happened
//	}
type Timeline struct {
	paths  map[string][]netcode.PathValue // by time; values, deletions and events
	names  []string
	start  int64
	end    int64
	report Report
}

// ReadTimeline opens the archive in opts.Dirs read-only and reads it into
// a Timeline. The log's values are resolved as the authority would resolve
// them: inserted into a store with cfg's rules at the times they were
// accepted, then made final, so values that turned invalid (a late input,
// a call re-run) are left out. Events are kept from the log only (blocks
// hold values, not events), so a compacted past has no events. Damage is
// handled as opts.Recover says and reported by Report.
func ReadTimeline(opts Options, cfg netcode.Config) (*Timeline, error) {
	opts.ReadOnly = true
	a, err := Open(opts)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	st := a.Recovered()
	tl := &Timeline{paths: map[string][]netcode.PathValue{}, start: math.MaxInt64, end: math.MinInt64, report: st.Report}
	store, err := netcode.NewStore(cfg)
	if err != nil {
		return nil, err
	}
	var finals []netcode.PathValue
	if err := st.ScanFinals(func(v netcode.PathValue) error {
		finals = append(finals, v)
		tl.add(v)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := store.LoadFinal(st.Horizon, finals); err != nil {
		return nil, fmt.Errorf("archive: timeline: %w", err)
	}
	store.CollectFinal(true)
	var events []netcode.PathValue
	last := int64(math.MinInt64)
	for i := range st.Entries {
		e := &st.Entries[i]
		if e.Kind != EntryRun && e.Kind != EntryWrite {
			continue
		}
		vals := make([]netcode.PathValue, 0, len(e.Values))
		for _, v := range e.Values {
			if v.Time.Nanos >= st.Horizon {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		// Refused values (already there, or malformed) stay out.
		if _, err := store.InsertBatch(e.Now, vals); err == nil {
			for _, v := range vals {
				if v.Flags&netcode.FlagEvent != 0 {
					events = append(events, v)
				}
			}
		}
		last = max(last, e.Now)
	}
	for _, v := range events {
		if got, ok := store.Get(v.Path, v.Time); ok && got.State == netcode.Valid {
			v.Locks, v.State = nil, netcode.Valid
			tl.add(v)
		}
	}
	if last > math.MinInt64 {
		store.Tick(last + int64(cfg.MaxChangeAge+cfg.MaxFutureSkew+cfg.FinalitySkew) + 1)
	}
	for _, v := range store.TakeFinal() {
		v.State = netcode.Valid
		tl.add(v)
	}
	for p, vs := range tl.paths {
		slices.SortStableFunc(vs, func(x, y netcode.PathValue) int { return x.Time.Compare(y.Time) })
		tl.names = append(tl.names, p)
	}
	sort.Strings(tl.names)
	if tl.start > tl.end {
		tl.start, tl.end = 0, 0
	}
	return tl, nil
}

func (tl *Timeline) add(v netcode.PathValue) {
	tl.paths[v.Path] = append(tl.paths[v.Path], v)
	tl.start = min(tl.start, v.Time.Nanos)
	tl.end = max(tl.end, v.Time.Nanos+1)
}

// Span returns the time of the first value and just past the last.
func (tl *Timeline) Span() (start, end int64) { return tl.start, tl.end }

// Paths returns every path with a value, sorted.
func (tl *Timeline) Paths() []string { return tl.names }

// History returns the values of path in time order (do not modify).
func (tl *Timeline) History(path string) []netcode.PathValue { return tl.paths[path] }

// At returns the value path had at time t: its latest value (not event) at
// or before t. A deletion is returned as such (nil Value); ok is false
// when the path had no value yet.
func (tl *Timeline) At(path string, t int64) (netcode.PathValue, bool) {
	vs := tl.paths[path]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].Time.Nanos > t })
	for i--; i >= 0; i-- {
		if vs[i].Flags&netcode.FlagEvent == 0 {
			return vs[i], true
		}
	}
	return netcode.PathValue{}, false
}

// Range calls fn for every value and event with from <= Time.Nanos < to,
// in time order (ties by path), until fn returns false.
func (tl *Timeline) Range(from, to int64, fn func(netcode.PathValue) bool) {
	var out []netcode.PathValue
	for _, p := range tl.names {
		vs := tl.paths[p]
		i := sort.Search(len(vs), func(i int) bool { return vs[i].Time.Nanos >= from })
		for ; i < len(vs) && vs[i].Time.Nanos < to; i++ {
			out = append(out, vs[i])
		}
	}
	slices.SortStableFunc(out, func(x, y netcode.PathValue) int { return x.Time.Compare(y.Time) })
	for _, v := range out {
		if !fn(v) {
			return
		}
	}
}

// Report says what reading the archive found (damage skipped, shards
// rebuilt).
func (tl *Timeline) Report() *Report { return &tl.report }

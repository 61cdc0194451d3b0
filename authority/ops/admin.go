package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/shardmap"
)

// moveRange serves POST /admin/move-range: range, to, from, settle.
func (e *Endpoint) moveRange(w http.ResponseWriter, r *http.Request) {
	s := e.srv.Load()
	if s == nil {
		http.Error(w, ErrRecovering.Error(), http.StatusServiceUnavailable)
		return
	}
	rg, err := shardmap.ParseRange(r.FormValue("range"))
	if err != nil {
		http.Error(w, "range: "+err.Error(), http.StatusBadRequest)
		return
	}
	node := func(name string, required bool) (uint8, bool) {
		v := r.FormValue(name)
		if v == "" && !required {
			return 0, true
		}
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil || n == 0 {
			http.Error(w, fmt.Sprintf("%s %q: want a node id from 1 to 255", name, v), http.StatusBadRequest)
			return 0, false
		}
		return uint8(n), true
	}
	to, ok := node("to", true)
	if !ok {
		return
	}
	from, ok := node("from", false)
	if !ok {
		return
	}
	opts := authority.MoveOptions{From: from}
	if v := r.FormValue("settle"); v != "" {
		if opts.Settle, err = time.ParseDuration(v); err != nil || opts.Settle <= 0 {
			http.Error(w, fmt.Sprintf("settle %q: want a positive duration", v), http.StatusBadRequest)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), MoveTimeout)
	defer cancel()
	e.log.Info("range move asked", "range", rg.String(), "to", to, "from", from, "remote", r.RemoteAddr)
	res, err := s.MoveRange(ctx, rg, to, opts)
	switch {
	case errors.Is(err, authority.ErrMoveBusy):
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case errors.Is(err, authority.ErrNoCluster):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case errors.Is(err, context.DeadlineExceeded):
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "moved %v to node %d: owners %v → %v (map versions %d, %d) in %v\n",
		res.Range, to, res.Before, res.After, res.Joined, res.Left, res.Took.Round(time.Millisecond))
}

// ShardMapInfo is GET /admin/shard-map's answer.
type ShardMapInfo struct {
	Node uint8 `json:"node"`
	// Calls counts the calls this node has run (first runs, relayed
	// ones included) since it started.
	Calls  uint64      `json:"calls"`
	Ranges []RangeInfo `json:"ranges"`
}

// RangeInfo is a live range of the shard map.
type RangeInfo struct {
	// Range as shardmap.ParseRange reads it.
	Range  string  `json:"range"`
	Owners []uint8 `json:"owners"`
	// Calls counts the calls this node ran whose shard key is in the
	// range (first runs, relayed ones included; authority.RangeInfo's
	// Calls): the range's load here. Given for the first
	// authority.MaxRangeInfo ranges of the map, 0 beyond.
	Calls uint64 `json:"calls,omitempty"`
}

// shardMap serves GET /admin/shard-map.
func (e *Endpoint) shardMap(w http.ResponseWriter, r *http.Request) {
	s := e.srv.Load()
	if s == nil {
		http.Error(w, ErrRecovering.Error(), http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.StatusTimeout)
	defer cancel()
	st, err := s.Status(ctx, authority.StatusOptions{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	info := ShardMapInfo{Node: s.NodeID(), Calls: st.Stats.Node.Calls, Ranges: []RangeInfo{}}
	var calls map[string]uint64
	if st.Cluster != nil {
		calls = make(map[string]uint64, len(st.Cluster.Ranges))
		for _, r := range st.Cluster.Ranges {
			calls[r.Range] = r.Calls
		}
	}
	if m := s.ShardMap(); m != nil {
		for _, en := range m.Entries() {
			if !en.Removed {
				r := en.Range.String()
				info.Ranges = append(info.Ranges, RangeInfo{Range: r, Owners: en.Owners, Calls: calls[r]})
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(info)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority/ops"
)

func TestPlan(t *testing.T) {
	ranges := []ops.RangeInfo{
		{Range: `"regions/0/"`, Owners: []uint8{1, 2}},
		{Range: `"regions/1/"`, Owners: []uint8{2, 3}},
		{Range: `"regions/2/"`, Owners: []uint8{3, 1}},
		{Range: `"regions/3/"`, Owners: []uint8{1}},
	}
	for _, tc := range []struct {
		name  string
		rates map[uint8]float64
		want  Move
		ok    bool
	}{
		{"busy 1, idle 2: not the range 2 owns already", map[uint8]float64{1: 100, 2: 10, 3: 50}, Move{`"regions/3/"`, 1, 2}, true},
		{"busy 1, idle 3: the first of 1's", map[uint8]float64{1: 100, 2: 50, 3: 10}, Move{`"regions/0/"`, 1, 3}, true},
		{"busy 3, idle 2", map[uint8]float64{1: 50, 2: 10, 3: 100}, Move{`"regions/2/"`, 3, 2}, true},
		{"busy 2, idle 3 owns 2's only range: 1", map[uint8]float64{1: 50, 2: 100, 3: 10}, Move{`"regions/1/"`, 2, 1}, true},
		{"busy 2, idle 3 owns 2's only range, 1 too busy", map[uint8]float64{1: 90, 2: 100, 3: 10}, Move{}, false},
		{"balanced", map[uint8]float64{1: 100, 2: 90, 3: 80}, Move{}, false},
		{"too little load", map[uint8]float64{1: 5, 2: 0, 3: 0}, Move{}, false},
		{"one node", map[uint8]float64{1: 100}, Move{}, false},
		{"busiest primary of nothing", map[uint8]float64{1: 0, 2: 0, 4: 100}, Move{}, false},
	} {
		got, why, ok := Plan(tc.rates, nil, ranges, 1.5, 10)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: %+v, %v (%s), want %+v, %v", tc.name, got, ok, why, tc.want, tc.ok)
		}
		if !ok && why == "" {
			t.Errorf("%s: no move and no reason", tc.name)
		}
	}
}

// TestPlanByLoad: with the busiest node's calls by range known, the move
// takes the range that evens the two nodes best, never one that carries
// none of the load or the whole difference.
func TestPlanByLoad(t *testing.T) {
	ranges := []ops.RangeInfo{
		{Range: `"a/"`, Owners: []uint8{1, 2}},
		{Range: `"b/"`, Owners: []uint8{1}},
		{Range: `"c/"`, Owners: []uint8{1, 3}},
		{Range: `"d/"`, Owners: []uint8{1}},
		{Range: `"e/"`, Owners: []uint8{2, 1}},
	}
	rates := map[uint8]float64{1: 100, 2: 20, 3: 60}
	for _, tc := range []struct {
		name string
		load map[string]float64 // node 1's
		want Move
		ok   bool
	}{
		{"nearest half the difference (40)", map[string]float64{`"a/"`: 5, `"b/"`: 10, `"c/"`: 50, `"d/"`: 35}, Move{`"d/"`, 1, 2}, true},
		{"ties: the first in the map", map[string]float64{`"b/"`: 30, `"d/"`: 50}, Move{`"b/"`, 1, 2}, true},
		{"the hot range would only move the imbalance", map[string]float64{`"b/"`: 95, `"d/"`: 0}, Move{}, false},
		{"a range 1 is a secondary of is not 1's to give", map[string]float64{`"e/"`: 40, `"d/"`: 85}, Move{}, false},
		{"not known: the first", map[string]float64{}, Move{`"b/"`, 1, 2}, true},
	} {
		got, why, ok := Plan(rates, map[uint8]map[string]float64{1: tc.load}, ranges, 1.5, 10)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: %+v, %v (%s), want %+v, %v", tc.name, got, ok, why, tc.want, tc.ok)
		}
		if !ok && why == "" {
			t.Errorf("%s: no move and no reason", tc.name)
		}
	}
}

// fakeNode is an authority's operator endpoint whose calls grow by step
// at every read of its map.
type fakeNode struct {
	mu     sync.Mutex
	id     uint8
	calls  uint64
	step   uint64
	ranges []ops.RangeInfo
	moves  []string
}

func (f *fakeNode) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/shard-map", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls += f.step
		json.NewEncoder(w).Encode(ops.ShardMapInfo{Node: f.id, Calls: f.calls, Ranges: f.ranges})
	})
	mux.HandleFunc("POST /admin/move-range", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.moves = append(f.moves, r.FormValue("range")+" from "+r.FormValue("from")+" to "+r.FormValue("to"))
		w.Write([]byte("moved\n"))
	})
	return mux
}

// TestRunOnce: over one period the busiest of three endpoints gets one
// of its ranges moved to the least busy, asked of an endpoint once; a
// balanced cluster gets none.
func TestRunOnce(t *testing.T) {
	ranges := []ops.RangeInfo{{Range: `"regions/0/"`, Owners: []uint8{1, 2}}, {Range: `"regions/1/"`, Owners: []uint8{2, 3}}, {Range: `"regions/2/"`, Owners: []uint8{3, 1}}}
	for _, tc := range []struct {
		name  string
		steps []uint64
		moves int
	}{
		{"unbalanced", []uint64{1000, 300, 50}, 1},
		{"balanced", []uint64{300, 300, 300}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fakes []*fakeNode
			var addrs []string
			for i, step := range tc.steps {
				f := &fakeNode{id: uint8(i + 1), step: step, ranges: ranges}
				srv := httptest.NewServer(f.handler())
				defer srv.Close()
				fakes = append(fakes, f)
				addrs = append(addrs, srv.URL)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out, errs bytes.Buffer
			if err := run(ctx, []string{"-nodes", strings.Join(addrs, ","), "-every", "50ms", "-once"}, &out, &errs); err != nil {
				t.Fatalf("%v\n%s", err, errs.String())
			}
			var moves []string
			for _, f := range fakes {
				moves = append(moves, f.moves...)
			}
			if len(moves) != tc.moves {
				t.Fatalf("moves %q, want %d\n%s", moves, tc.moves, out.String())
			}
			if tc.moves == 1 && moves[0] != `"regions/0/" from 1 to 3` {
				t.Errorf("move %q, want regions/0/ from 1 to 3", moves[0])
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"-nodes", "a", "-every", "0s"}, {"-nodes", "a", "-min-ratio", "0.5"}, {"-nodes", "a", "extra"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

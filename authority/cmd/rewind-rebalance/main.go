// Command rewind-rebalance moves ranges of a sharded cluster's shard map
// from its busiest authority to its least busy one, throttled: it reads
// every authority's operator endpoint (-http with -http-admin) every
// -every, measures each one's calls run per second over the period, and
// when the busiest runs more than -min-ratio times the least busy's (and
// at least -min-rate), moves one range whose primary is the busiest to
// the least busy (POST /admin/move-range, a live move; one the least
// busy does not own yet, so the range keeps its number of owners), then
// waits a whole period again before it looks. At most one move is under way at a time.
//
//	rewind-rebalance -nodes 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093 -every 30s
//
// Load is calls run per node, which is what the shard map decides, and
// each node's calls per second by range (the calls it ran whose shard key
// is in the range, from the same endpoint): the move takes the busiest
// node's range that brings the two nodes nearest to even, and none when
// every candidate would only move the imbalance (a range carrying as
// much as the whole difference). Nodes that report no calls by range get
// the busiest node's first range in the map's order. A range may move to
// a node that held nothing of it: the new owner routes its calls to the
// other owners until its catch-up of the range is in. -once looks over
// one period, moves at most once, and exits.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rewindnet/rewind/authority/ops"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp) || errors.Is(err, context.Canceled):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "rewind-rebalance:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "rewind-rebalance:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// Move is a planned range move.
type Move struct {
	Range    string
	From, To uint8
}

// Plan picks the move that takes load off the busiest node, from the
// nodes' calls per second (rates), each node's calls per second by range
// (load, by ops.RangeInfo.Range; nil or all zero for the busiest node:
// not known) and the shard map's live ranges: none (with the reason) when
// the busiest runs fewer than minRate calls a second or less than
// minRatio times the least busy node's, or is the primary of no range
// that a node under that ratio does not own already (moving a range to
// one of its owners would leave it an owner fewer). The target is the
// least busy such node (ties: the lower id). The range, when the busiest
// node's load by range is known, is the one whose load there is nearest
// half the two nodes' difference (ties: the first in the map's order),
// among those carrying some load and less than the whole difference (a
// range with as much only moves the imbalance); none when no range
// qualifies. Without loads by range, the first in the map's order.
func Plan(rates map[uint8]float64, load map[uint8]map[string]float64, ranges []ops.RangeInfo, minRatio, minRate float64) (Move, string, bool) {
	ids := make([]uint8, 0, len(rates))
	for id := range rates {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) < 2 {
		return Move{}, "fewer than two nodes", false
	}
	busy := ids[0]
	for _, id := range ids[1:] {
		if rates[id] > rates[busy] {
			busy = id
		}
	}
	if rates[busy] < minRate {
		return Move{}, fmt.Sprintf("the busiest node %d runs %.1f calls/s, under %.1f", busy, rates[busy], minRate), false
	}
	// The least busy first, then the next ones while still under the
	// ratio: the first that does not own one of the busiest's ranges.
	idle := slices.Clone(ids)
	slices.SortStableFunc(idle, func(a, b uint8) int { return cmp.Compare(rates[a], rates[b]) })
	why := fmt.Sprintf("balanced: node %d %.1f calls/s, node %d %.1f (ratio under %.2f)", busy, rates[busy], idle[0], rates[idle[0]], minRatio)
	for _, to := range idle {
		if to == busy || rates[busy] < minRatio*rates[to] {
			break
		}
		known := false
		for _, l := range load[busy] {
			known = known || l > 0
		}
		gap := rates[busy] - rates[to]
		best, bestOff, candidates := -1, math.Inf(1), 0
		for i := range ranges {
			r := &ranges[i]
			if len(r.Owners) == 0 || r.Owners[0] != busy || slices.Contains(r.Owners, to) {
				continue
			}
			candidates++
			if !known {
				return Move{Range: r.Range, From: busy, To: to}, "", true
			}
			if l := load[busy][r.Range]; l > 0 && l < gap {
				if off := math.Abs(l - gap/2); off < bestOff {
					best, bestOff = i, off
				}
			}
		}
		if best >= 0 {
			return Move{Range: ranges[best].Range, From: busy, To: to}, "", true
		}
		if candidates > 0 {
			why = fmt.Sprintf("no range of the busiest node %d would even it with node %d (%.1f calls/s apart): each carries none of its load or all of the difference", busy, to, gap)
			continue
		}
		why = fmt.Sprintf("the busiest node %d is the primary of no range the less busy nodes do not own already", busy)
	}
	return Move{}, why, false
}

// node is one authority's operator endpoint.
type node struct {
	base string // http://host:port
}

func (n node) shardMap(ctx context.Context, c *http.Client) (ops.ShardMapInfo, error) {
	var info ops.ShardMapInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.base+"/admin/shard-map", nil)
	if err != nil {
		return info, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return info, fmt.Errorf("%s/admin/shard-map: %s: %s", n.base, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&info); err != nil {
		return info, fmt.Errorf("%s/admin/shard-map: %w", n.base, err)
	}
	return info, nil
}

func (n node) move(ctx context.Context, c *http.Client, m Move) (string, error) {
	form := url.Values{"range": {m.Range}, "to": {strconv.Itoa(int(m.To))}, "from": {strconv.Itoa(int(m.From))}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base+"/admin/move-range", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s/admin/move-range: %s: %s", n.base, resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// sample is every answering node's calls, in all and by range, and the
// map of the first.
type sample struct {
	at         time.Time
	calls      map[uint8]uint64
	rangeCalls map[uint8]map[string]uint64
	ranges     []ops.RangeInfo
	via        node // a node that answered
}

func take(ctx context.Context, c *http.Client, nodes []node, log io.Writer) (sample, error) {
	s := sample{at: time.Now(), calls: map[uint8]uint64{}, rangeCalls: map[uint8]map[string]uint64{}}
	got := false
	for _, n := range nodes {
		info, err := n.shardMap(ctx, c)
		if err != nil {
			fmt.Fprintf(log, "rewind-rebalance: %v\n", err)
			continue
		}
		s.calls[info.Node] = info.Calls
		rc := make(map[string]uint64, len(info.Ranges))
		for _, r := range info.Ranges {
			rc[r.Range] = r.Calls
		}
		s.rangeCalls[info.Node] = rc
		if !got {
			s.ranges, s.via, got = info.Ranges, n, true
		}
	}
	if !got {
		return s, errors.New("no node answered")
	}
	return s, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rewind-rebalance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		nodesArg = fs.String("nodes", "", "comma-separated operator endpoints of the authorities (their -http addresses, served with -http-admin)")
		every    = fs.Duration("every", 30*time.Second, "the measuring period: at most one move a period, each after a whole period of measuring")
		minRatio = fs.Float64("min-ratio", 1.5, "move only when the busiest node runs at least this many times the least busy node's calls a second")
		minRate  = fs.Float64("min-rate", 10, "move only when the busiest node runs at least this many calls a second")
		once     = fs.Bool("once", false, "measure one period, move at most once, and exit")
		timeout  = fs.Duration("move-timeout", 5*time.Minute, "how long a move may take")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	case *nodesArg == "":
		return fmt.Errorf("%w: -nodes is required", errUsage)
	case *every <= 0 || *timeout <= 0:
		return fmt.Errorf("%w: -every and -move-timeout must be positive", errUsage)
	case *minRatio < 1 || *minRate < 0:
		return fmt.Errorf("%w: -min-ratio below 1 or -min-rate below 0", errUsage)
	}
	var nodes []node
	for _, a := range strings.Split(*nodesArg, ",") {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		if !strings.HasPrefix(a, "http://") && !strings.HasPrefix(a, "https://") {
			a = "http://" + a
		}
		nodes = append(nodes, node{base: a})
	}
	c := &http.Client{Timeout: *timeout}
	prev, err := take(ctx, c, nodes, stderr)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(*every):
		}
		cur, err := take(ctx, c, nodes, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "rewind-rebalance: %v\n", err)
			continue
		}
		dt := cur.at.Sub(prev.at).Seconds()
		rates := map[uint8]float64{}
		for id, n := range cur.calls {
			if p, ok := prev.calls[id]; ok && n >= p {
				rates[id] = float64(n-p) / dt
			}
		}
		load := map[uint8]map[string]float64{}
		for id, rc := range cur.rangeCalls {
			if _, ok := prev.calls[id]; !ok {
				continue // not measured over the whole period
			}
			load[id] = map[string]float64{}
			for r, n := range rc {
				// A range new to the node's map counts from nothing.
				if p := prev.rangeCalls[id][r]; n >= p {
					load[id][r] = float64(n-p) / dt
				}
			}
		}
		prev = cur
		m, why, ok := Plan(rates, load, cur.ranges, *minRatio, *minRate)
		if !ok {
			fmt.Fprintf(stdout, "no move: %s\n", why)
		} else {
			fmt.Fprintf(stdout, "moving %s (%.1f calls/s there) from node %d (%.1f calls/s) to node %d (%.1f calls/s)\n", m.Range, load[m.From][m.Range], m.From, rates[m.From], m.To, rates[m.To])
			said, err := cur.via.move(ctx, c, m)
			if err != nil {
				if *once {
					return err
				}
				fmt.Fprintf(stderr, "rewind-rebalance: %v\n", err)
			} else {
				fmt.Fprintln(stdout, said)
			}
			// Measure the next period afresh: the move took its time.
			if prev, err = take(ctx, c, nodes, stderr); err != nil {
				return err
			}
		}
		if *once {
			return nil
		}
	}
}

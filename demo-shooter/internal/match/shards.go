package match

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode"
)

// Sharded matches: the arena is cut into regions, vertical strips of
// equal width, one per node, and each region's calls run on the owners of
// its range of the cluster's shard map.
//
// A call carries its region after its arguments (and after its trace
// tag): the region of the caller's own position in its client's view when
// it made the call (the region of its previous call while it has no
// position, 0 before its first). RegionRegistry wraps every game
// function: the shard key (netcode.FuncOptions.ShardKey) is
// regions/<region>/<caller>, so the call is relayed by the bot's node to
// an owner of regions/<region>/ and runs there; the function strips the
// byte and runs the game's rules unchanged. The game's state stays under
// players/ (and trace/), which no range holds, so every node holds it
// all: every call reads every player's motion (a shot is checked against
// every other player, gravity pulls everyone), so a node holding only its
// region's players would read the others across ranges on every call.
// What the shard map splits is where the calls run. A region is a claim
// of the client's, as any argument is: a client that lies runs its calls
// on another region's owner, under the same rules.

// RegionPrefix is the prefix of the regions' shard keys and ranges.
const RegionPrefix = "regions/"

// regionTagSize is the region byte after a call's arguments.
const regionTagSize = 1

// crossWindow: a player's motion calls within this long of its moving to
// another region are its boundary crossings (counted apart in the report,
// with the shots whose target stood in another region).
const crossWindow = time.Second

// Region returns the region of x in an arena cut into regions strips.
func Region(x float64, regions int) int {
	if regions <= 1 || math.IsNaN(x) {
		return 0
	}
	r := int(x * float64(regions) / game.ArenaWidth)
	return min(max(r, 0), regions-1)
}

// RegionRange returns the prefix of region r's range: regions/<r>/.
func RegionRange(r int) string { return RegionPrefix + strconv.Itoa(r) + "/" }

// RegionRegistry returns base's registry with every function taking a
// region byte after its arguments and routed by it (see above), and its
// spatial layers. The clients and the authorities of a sharded match link
// it both.
func RegionRegistry(base func() *netcode.Registry, regions int) func() *netcode.Registry {
	return func() *netcode.Registry {
		b := base()
		r := netcode.NewRegistry()
		key := func(caller uint32, args []byte) string {
			if len(args) < regionTagSize || int(args[len(args)-1]) >= regions {
				return "" // runs where it arrives, and fails there
			}
			return RegionRange(int(args[len(args)-1])) + strconv.FormatUint(uint64(caller), 10)
		}
		for _, name := range b.Names() {
			f, _ := b.Lookup(name)
			opts := f.Options
			opts.ShardKey = key
			if err := r.Register(name, regioned(f.Fn, regions), opts); err != nil {
				panic(err) // names a registry already accepted: a failure is a bug here
			}
		}
		for _, l := range b.Layers() {
			if err := r.Spatial(l); err != nil {
				panic(err)
			}
		}
		return r
	}
}

// regioned wraps fn: check and strip the region byte, run fn.
func regioned(fn netcode.Func, regions int) netcode.Func {
	return func(tx *netcode.Tx, args []byte) error {
		n := len(args) - regionTagSize
		if n < 0 || int(args[n]) >= regions {
			return fmt.Errorf("%w: arguments of %d bytes carry no region below %d", game.ErrBadArgs, len(args), regions)
		}
		return fn(tx, args[:n:n])
	}
}

// regionOwners returns region r's owners in a cluster of nodes: node r+1
// first, then the next one, round the nodes (one owner when there are
// only two nodes, so that a range move has a node to go to).
func regionOwners(r, nodes int) []uint8 {
	owners := []uint8{uint8(r%nodes + 1)}
	if nodes > 2 {
		owners = append(owners, uint8((r+1)%nodes+1))
	}
	return owners
}

// rangesFlag returns the -ranges of a sharded match's nodes.
func rangesFlag(regions, nodes int) string {
	var parts []string
	for r := range regions {
		var ids []string
		for _, o := range regionOwners(r, nodes) {
			ids = append(ids, strconv.Itoa(int(o)))
		}
		parts = append(parts, RegionRange(r)+"="+strings.Join(ids, ","))
	}
	return strings.Join(parts, ";")
}

// rangeMove moves region 0's range, at a set time of the measured span,
// to the first node that does not own it, through the second node's
// operator endpoint (POST /admin/move-range), as an operator would; the
// match goes on meanwhile.
type rangeMove struct {
	at    time.Time // zero: never
	began time.Time
	after []uint8 // region 0's owners once moved
	done  chan moveResult
	res   *moveResult
}

type moveResult struct {
	took time.Duration
	said string
	err  error
}

func (m *rangeMove) due(now time.Time) bool {
	return !m.at.IsZero() && m.began.IsZero() && !now.Before(m.at)
}

// start posts the move in a goroutine of its own.
func (m *rangeMove) start(ctx context.Context, cl *cluster, nodes int) {
	m.began = time.Now()
	m.done = make(chan moveResult, 1)
	owners := regionOwners(0, nodes)
	to := 0
	for id := 1; id <= nodes; id++ {
		if !slices.Contains(owners, uint8(id)) {
			to = id
			break
		}
	}
	m.after = []uint8{uint8(to)}
	for _, o := range owners {
		if o != owners[0] && o != uint8(to) {
			m.after = append(m.after, o)
		}
	}
	page := cl.pages[min(1, len(cl.pages)-1)]
	go func() {
		form := url.Values{"range": {RegionRange(0)}, "to": {strconv.Itoa(to)}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, page+"/admin/move-range", strings.NewReader(form.Encode()))
		if err != nil {
			m.done <- moveResult{err: err}
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			m.done <- moveResult{err: fmt.Errorf("match: range move: %w", err)}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		said := strings.TrimSpace(string(b))
		if resp.StatusCode != http.StatusOK {
			m.done <- moveResult{err: fmt.Errorf("match: range move: %s: %s", resp.Status, said)}
			return
		}
		m.done <- moveResult{took: time.Since(m.began), said: said}
	}()
}

// relayed reports whether a call of region made through the node at
// addrs[i] runs on another node, by the map as the match set it (ok
// false while the move is under way, or for an unknown address).
func (m *rangeMove) relayed(addrs []string, nodes, region int, addr string) (relayed, ok bool) {
	i := slices.Index(addrs, addr)
	if i < 0 || !m.began.IsZero() && m.res == nil {
		return false, false
	}
	owners := regionOwners(region, nodes)
	if region == 0 && m.res != nil && m.res.err == nil {
		owners = m.after
	}
	return !slices.Contains(owners, uint8(i+1)), true
}

// poll notes the move's end, if it came.
func (m *rangeMove) poll() {
	if m.done == nil || m.res != nil {
		return
	}
	select {
	case r := <-m.done:
		m.res = &r
	default:
	}
}

// wait waits for the move's end, within ctx.
func (m *rangeMove) wait(ctx context.Context) error {
	if m.done == nil || m.res != nil {
		return nil
	}
	select {
	case r := <-m.done:
		m.res = &r
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

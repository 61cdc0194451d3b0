package match

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rewindnet/rewind/authority/cli"
	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
)

// Cluster match settings.
const (
	// MaxNodes bounds a cluster match's authorities (node ids are 1-255;
	// a loopback cluster of more would only share the same cores).
	MaxNodes = 9
	// quiesce is how long a cluster match waits, its bots idle and every
	// call answered, before it reads the surviving authorities' states:
	// longer than the change window and MaxClosedLag (4 × MaxChangeAge),
	// so every value is final on every node and no re-run can still come.
	quiesce = 5 * time.Second
	// observeTimeout bounds reading one authority's state.
	observeTimeout = 20 * time.Second
	// startTries: a node whose gossip port was taken between choosing and
	// binding it is started again on another.
	startTries = 3
)

// clusterTransport is the bots' transport in a cluster match: the
// Internet preset, with a session declared lost after a second of
// silence (keep-alives every 250 ms), so a client notices its dead
// authority within about a second and fails over. The authorities send
// their watchers values many times a second and keep-alives besides, so
// a live link falls silent that long only when it drops four keep-alives
// in a row.
func clusterTransport() transport.Config {
	c := transport.Internet()
	c.KeepAlive, c.IdleTimeout = 250*time.Millisecond, time.Second
	return c
}

// clusterReconnect redials quickly: a failover's first redial goes to a
// live member.
var clusterReconnect = netcode.Reconnect{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// cluster is the authority processes of a cluster match.
type cluster struct {
	nodes  []*Child
	gossip []string
	pages  []string // the nodes' operator endpoints (http://...), in a sharded match
	dir    string   // the temporary directory of the data and logs
	killed int      // index of the killed node, -1 while none
	// killCPU is the killed node's CPU time just before the kill.
	killCPU time.Duration
}

// freePort returns a loopback port free for both UDP and TCP (gossip uses
// both) at the time of asking.
func freePort() (int, error) {
	var last error
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			u.Close()
			return port, nil
		}
		last = err
	}
	return 0, fmt.Errorf("%w: no free gossip port: %w", ErrChild, last)
}

// startCluster starts s.Nodes authorities as one cluster on loopback:
// node 1 founds it, the others join it; each has a -data directory of its
// own under a new temporary directory, writes its log there, and runs the
// functions traced. They share a random cluster key (in the environment,
// not the command line).
func startCluster(s Settings) (cl *cluster, err error) {
	dir, err := os.MkdirTemp("", "rewind-cluster-match-")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChild, err)
	}
	key := make([]byte, 16)
	rand.Read(key)
	cl = &cluster{dir: dir, killed: -1}
	defer func() {
		if err != nil {
			cl.close()
			err = fmt.Errorf("%w (logs in %s)", err, dir)
		}
	}()
	for i := range s.Nodes {
		var c *Child
		var gossip, page string
		for try := 0; c == nil; try++ {
			port, err := freePort()
			if err != nil {
				return cl, err
			}
			gossip = "127.0.0.1:" + strconv.Itoa(port)
			args := []string{"-serve", "127.0.0.1:0", "-trace-calls",
				"-node-id", strconv.Itoa(i + 1), "-gossip", gossip,
				"-cluster-size", strconv.Itoa(s.Nodes), "-data", filepath.Join(dir, "n"+strconv.Itoa(i+1))}
			if i > 0 {
				args = append(args, "-join", strings.Join(cl.gossip, ","))
			}
			page = ""
			if s.Regions > 0 {
				hp, err := freePort()
				if err != nil {
					return cl, err
				}
				page = "127.0.0.1:" + strconv.Itoa(hp)
				args = append(args, "-regions", strconv.Itoa(s.Regions), "-ranges", rangesFlag(s.Regions, s.Nodes),
					"-http", page, "-http-admin")
			}
			cmd := s.Authority(args)
			cmd.Env = append(cmd.Environ(), cli.EnvName("cluster-key")+"="+hex.EncodeToString(key))
			logf, err := os.OpenFile(filepath.Join(dir, "n"+strconv.Itoa(i+1)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return cl, fmt.Errorf("%w: %w", ErrChild, err)
			}
			cmd.Stderr = logf
			c, err = StartChild(cmd, childTimeout)
			logf.Close() // the child has its own descriptor
			if err != nil && try+1 >= startTries {
				return cl, fmt.Errorf("node %d: %w", i+1, err)
			}
		}
		cl.nodes = append(cl.nodes, c)
		cl.gossip = append(cl.gossip, gossip)
		if page != "" {
			cl.pages = append(cl.pages, "http://"+page)
		}
	}
	return cl, nil
}

// addrs returns the nodes' client addresses.
func (cl *cluster) addrs() []string {
	out := make([]string, len(cl.nodes))
	for i, c := range cl.nodes {
		out[i] = c.Addr
	}
	return out
}

// kill kills node i with SIGKILL (by its PID: only the process this match
// started) and waits for it.
func (cl *cluster) kill(i int) error {
	cpu, err := cl.nodes[i].CPU()
	if err != nil {
		return err
	}
	cl.killCPU, cl.killed = cpu, i
	return cl.nodes[i].Kill()
}

// cpu returns the CPU time the nodes used so far, the killed node's as of
// its kill.
func (cl *cluster) cpu() (time.Duration, error) {
	var sum time.Duration
	for i, c := range cl.nodes {
		if i == cl.killed {
			sum += cl.killCPU
			continue
		}
		t, err := c.CPU()
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// survivors returns the nodes not killed.
func (cl *cluster) survivors() []*Child {
	var out []*Child
	for i, c := range cl.nodes {
		if i != cl.killed {
			out = append(out, c)
		}
	}
	return out
}

// stop stops the survivors gracefully and sums their counters (the killed
// node's died with it).
func (cl *cluster) stop() (ServeStats, error) {
	var sum ServeStats
	var first error
	for _, c := range cl.survivors() {
		st, err := c.Stop(childTimeout)
		if err != nil && first == nil {
			first = err
		}
		sum.Calls += st.Calls
		sum.Reruns += st.Reruns
		sum.Kicked += st.Kicked
		sum.TooSlow += st.TooSlow
		sum.RelayedIn += st.RelayedIn
		sum.Forwarded += st.Forwarded
	}
	return sum, first
}

// close kills what still runs (only this match's processes: a node
// stopped already is waited for again, which does nothing).
func (cl *cluster) close() {
	for i, c := range cl.nodes {
		if i != cl.killed {
			c.kill()
		}
	}
}

// remove removes the temporary directory (data and logs).
func (cl *cluster) remove() { os.RemoveAll(cl.dir) }

// failoverAddrs returns the nodes' addresses starting after i, round the
// list: the failover list of a bot of node i.
func failoverAddrs(addrs []string, i int) []string {
	out := make([]string, 0, len(addrs)-1)
	for k := 1; k < len(addrs); k++ {
		out = append(out, addrs[(i+k)%len(addrs)])
	}
	return out
}

// observedPrefixes are what a cluster match's state holds: the players
// and the calls' traces (the shots are events, kept nowhere).
var observedPrefixes = []string{game.PlayersPrefix, TracePrefix}

// rejoiningReason is how an authority that replaces itself with a fresh
// node (it lost its quorum) closes its sessions.
const rejoiningReason = "rejoining its cluster"

// observe reads an authority's whole state through a watch client of its
// own (no failover): every path under observedPrefixes with its latest
// confirmed value, once the snapshots of its watches have arrived. A
// member refuses clients while it catches up (after it rejoined its
// cluster, say): observe dials again until observeTimeout, and rejoined
// says whether the member was rejoining (its state is then what it caught
// up from the others).
func observe(ctx context.Context, addr string, reg *netcode.Registry) (state map[string][]byte, rejoined bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, observeTimeout)
	defer cancel()
	var c *netcode.Client
	for {
		c, err = netcode.Dial(ctx, addr, netcode.Options{Registry: reg, Reconnect: netcode.Reconnect{Attempts: -1}})
		if err == nil {
			break
		}
		rejoined = rejoined || strings.Contains(err.Error(), rejoiningReason)
		select {
		case <-ctx.Done():
			return nil, rejoined, fmt.Errorf("match: observe %s: %w", addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer c.Close()
	for _, p := range observedPrefixes {
		if err := c.Watch(p); err != nil {
			return nil, rejoined, fmt.Errorf("match: observe %s: %w", addr, err)
		}
	}
	paths := map[string]bool{}
	for {
		for _, ev := range c.Update() {
			switch ev.Kind {
			case netcode.EventValue:
				paths[ev.Path] = true
			case netcode.EventDisconnected, netcode.EventError:
				return nil, rejoined, fmt.Errorf("match: observe %s: %v: %v", addr, ev.Kind, ev.Err)
			}
		}
		if !slices.ContainsFunc(observedPrefixes, func(p string) bool { return !c.WatchReady(p) }) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, rejoined, fmt.Errorf("match: observe %s: no whole snapshot: %w", addr, ctx.Err())
		case <-time.After(Frame):
		}
	}
	state = make(map[string][]byte, len(paths))
	for p := range paths {
		if v, ok := c.Read(p); ok {
			state[p] = v
		}
	}
	return state, rejoined, nil
}

// tracedGame is the registry of a cluster match's clients.
var tracedGame = TracedRegistry(game.Registry)

// clusterGame returns the registry of a cluster match's clients: traced,
// and with regions in a sharded match.
func clusterGame(regions int) func() *netcode.Registry {
	if regions > 0 {
		return RegionRegistry(tracedGame, regions)
	}
	return tracedGame
}

package hostile

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/wire"
)

// Attack is one class of abuse, started at the attack's start time.
type Attack struct {
	Name string
	What string // one line for reports
	// Start sets the attack going; it uses r's clients and clock.
	Start func(r *Run)
	// CutOff is the longest an abuser of this class may keep its session
	// after its first abusive frame reached the node; zero for classes
	// whose sessions break no rule (they are not cut off).
	CutOff time.Duration
	// Cooldown is how long the run goes on after the attack at least,
	// for its abusers to be cut off.
	Cooldown time.Duration
	// NoLatencyBar marks a class that stops the node itself (a stall):
	// calls made meanwhile cannot meet a latency bar; only the rest of
	// the properties hold.
	NoLatencyBar bool
}

// frame is one attack frame's period: a client that sends as fast as a
// game loop.
const frame = 16 * time.Millisecond

// abuse starts one abuser that, once welcomed, does setup (may be nil)
// and then sends make()'s frame every period until cut off or the attack
// ends.
func abuse(r *Run, name string, setup func(c *Client), make func(c *Client) []byte) {
	c := r.NewAbuser(name)
	c.OnWelcome(func(c *Client) {
		if setup != nil {
			setup(c)
		}
		r.Every(frame, func() {
			if c.Open() {
				c.Abuse(make(c))
			}
		})
	})
	c.Connect(true)
}

func pings(n int) []*wire.Message {
	ms := make([]*wire.Message, n)
	for i := range ms {
		ms[i] = &wire.Message{Kind: wire.KindPing, Ping: wire.Ping{Seq: uint64(i)}}
	}
	return ms
}

func write(c *Client, v wire.Value) *wire.Message {
	v.Time = wire.Time{Nanos: c.r.Now(), Creator: c.Creator()}
	if v.Value == nil {
		v.Value = []byte{1}
	}
	return &wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: []wire.Value{v}}}
}

// Attacks is every class the suite runs, one attacker session each unless
// its description says otherwise.
func Attacks() []*Attack {
	return []*Attack{
		{
			Name:   "snapshot-amplification",
			What:   "watches counters/, then each frame repeats it 1,024 times (4 Watches × 256 prefixes)",
			CutOff: time.Second,
			Start: func(r *Run) {
				dup := slices.Repeat([]string{counter.Prefix}, 256)
				abuse(r, "amplifier", func(c *Client) {
					c.Send(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{counter.Prefix}}})
				}, func(c *Client) []byte {
					w := &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: dup}}
					return c.Frame(w, w, w, w)
				})
			},
		},
		{
			Name:   "message-flood",
			What:   "1,024 Pings a frame",
			CutOff: time.Second,
			Start: func(r *Run) {
				abuse(r, "pinger", nil, func(c *Client) []byte { return c.Frame(pings(1024)...) })
			},
		},
		{
			Name:   "call-flood",
			What:   "100 calls a frame",
			CutOff: time.Second,
			Start: func(r *Run) {
				abuse(r, "caller", nil, func(c *Client) []byte {
					ms := make([]*wire.Message, 100)
					for i := range ms {
						ms[i] = c.CallMsg(counter.Add, counter.AddArgs("flood", 1), r.Now()+int64(i))
					}
					return c.Frame(ms...)
				})
			},
		},
		{
			Name:   "byte-flood",
			What:   "a call with 60 KiB of arguments each frame (3.7 MB/s)",
			CutOff: time.Second,
			Start: func(r *Run) {
				args := append(counter.AddArgs("big", 1), bytes.Repeat([]byte{'x'}, 60<<10)...)
				abuse(r, "bytes", nil, func(c *Client) []byte {
					return c.Frame(c.CallMsg(counter.Add, args, r.Now()))
				})
			},
		},
		{
			Name:   "watch-flood",
			What:   "256 new prefixes a frame, past the watch limit",
			CutOff: time.Second,
			Start: func(r *Run) {
				n := 0
				abuse(r, "watcher", nil, func(c *Client) []byte {
					ps := make([]string, 256)
					for i := range ps {
						n++
						ps[i] = fmt.Sprintf("w%d/", n)
					}
					return c.Frame(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: ps}})
				})
			},
		},
		{
			Name:   "forbidden-writes",
			What:   "a write outside its clients/<creator>/ each frame",
			CutOff: time.Second,
			Start: func(r *Run) {
				abuse(r, "trespasser", nil, func(c *Client) []byte {
					return c.Frame(write(c, wire.Value{Path: counter.Prefix + "total"}))
				})
			},
		},
		{
			Name:   "path-rule",
			What:   "a write to a path with an empty segment each frame",
			CutOff: time.Second,
			Start: func(r *Run) {
				abuse(r, "badpath", nil, func(c *Client) []byte {
					return c.Frame(write(c, wire.Value{Path: fmt.Sprintf("clients/%d/a//b", c.Creator())}))
				})
			},
		},
		{
			Name:   "future-locks",
			What:   "a write whose read lock ends after it, each frame",
			CutOff: time.Second,
			Start: func(r *Run) {
				abuse(r, "locker", nil, func(c *Client) []byte {
					v := wire.Value{Path: fmt.Sprintf("clients/%d/x", c.Creator())}
					m := write(c, v)
					it := &m.Write.Items[0]
					it.Locks = []wire.Lock{{Path: counter.Prefix + "total", Start: wire.Time{Nanos: 1}, End: wire.Time{Nanos: it.Time.Nanos + int64(time.Second)}}}
					return c.Frame(m)
				})
			},
		},
		{
			Name:   "stale-calls",
			What:   "10 calls a frame written 5 s in the past",
			CutOff: time.Second,
			Start: func(r *Run) {
				abuse(r, "stale", nil, func(c *Client) []byte {
					ms := make([]*wire.Message, 10)
					for i := range ms {
						ms[i] = c.CallMsg(counter.Add, counter.AddArgs("stale", 1), r.Now()-int64(5*time.Second))
					}
					return c.Frame(ms...)
				})
			},
		},
		{
			Name:   "unknown-function",
			What:   "a call to a function nobody registered each frame",
			CutOff: time.Second,
			Start: func(r *Run) {
				abuse(r, "nofunc", nil, func(c *Client) []byte {
					return c.Frame(c.CallMsg("nosuchfunction", nil, r.Now()))
				})
			},
		},
		{
			Name:   "bad-utf8",
			What:   "a write whose path is not UTF-8",
			CutOff: time.Second,
			Start: func(r *Run) {
				abuse(r, "binary", nil, func(c *Client) []byte {
					f := c.Frame(write(c, wire.Value{Path: fmt.Sprintf("clients/%d/bin%d", c.Creator(), c.r.Now())}))
					if i := bytes.Index(f, []byte("/bin")); i >= 0 {
						copy(f[i+1:], "\xff\xfe")
					}
					return f
				})
			},
		},
		{
			Name:     "no-hello",
			What:     "2,000 sessions opened over one second that never say Hello",
			CutOff:   5*time.Second + 100*time.Millisecond, // HelloTimeout, plus a tick and a busy node
			Cooldown: 6 * time.Second,
			Start: func(r *Run) {
				for i := range 2000 {
					c := r.NewAbuser(fmt.Sprintf("mute%d", i))
					c.connectAbusive = true
					r.At(r.Now()+int64(i)*int64(time.Second)/2000, func() { c.Connect(false) })
				}
			},
		},
		{
			Name: "mass-churn",
			What: "2,000 players join over one second, then all leave over the next",
			Start: func(r *Run) {
				for i := range 2000 {
					c := r.newClient(fmt.Sprintf("churn%d", i), false)
					start := r.Now() + int64(i)*int64(time.Second)/2000
					r.At(start, func() { c.Connect(true) })
					r.At(start+int64(time.Second), func() { c.Disconnect() })
				}
			},
		},
		{
			Name:         "stall",
			What:         "the node goroutine stops for 2 s (a long collection, a slow function)",
			NoLatencyBar: true,
			Start: func(r *Run) {
				r.Stall(2 * time.Second)
			},
		},
	}
}

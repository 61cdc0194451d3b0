package hostile

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/wire"
)

// Abuser is what a frame attack needs of its session, on virtual time (a
// Client of a Run) or over a real transport (a LoopbackAbuser).
type Abuser interface {
	// Frame encodes messages into one frame of the session's direction.
	Frame(ms ...*wire.Message) []byte
	// CallMsg returns the session's next call message.
	CallMsg(name string, args []byte, w int64) *wire.Message
	// Creator is the session's creator id, Now the authority's time.
	Creator() uint32
	Now() int64
}

// FrameClass is an attack one session makes with its frames: Setup (may
// be nil) once welcomed, then Make's frame every 16 ms, like a game loop,
// until the node cuts it off.
type FrameClass struct {
	Name  string
	What  string
	Setup func(a Abuser) []byte
	Make  func(a Abuser) []byte
}

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

func pings(n int) []*wire.Message {
	ms := make([]*wire.Message, n)
	for i := range ms {
		ms[i] = &wire.Message{Kind: wire.KindPing, Ping: wire.Ping{Seq: uint64(i)}}
	}
	return ms
}

func write(a Abuser, v wire.Value) *wire.Message {
	v.Time = wire.Time{Nanos: a.Now(), Creator: a.Creator()}
	if v.Value == nil {
		v.Value = []byte{1}
	}
	return &wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: []wire.Value{v}}}
}

// FrameClasses are the attacks one session makes with what it sends.
func FrameClasses() []FrameClass {
	dup := slices.Repeat([]string{counter.Prefix}, 256)
	bigArgs := append(counter.AddArgs("big", 1), bytes.Repeat([]byte{'x'}, 60<<10)...)
	watched := 0
	return []FrameClass{
		{
			Name: "snapshot-amplification",
			What: "watches counters/, then each frame repeats it 1,024 times (4 Watches × 256 prefixes)",
			Setup: func(a Abuser) []byte {
				return a.Frame(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{counter.Prefix}}})
			},
			Make: func(a Abuser) []byte {
				w := &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: dup}}
				return a.Frame(w, w, w, w)
			},
		},
		{
			Name: "message-flood",
			What: "1,024 Pings a frame (and replies over a frame's message limit)",
			Make: func(a Abuser) []byte { return a.Frame(pings(1024)...) },
		},
		{
			Name: "call-flood",
			What: "100 calls a frame",
			Make: func(a Abuser) []byte {
				ms := make([]*wire.Message, 100)
				for i := range ms {
					ms[i] = a.CallMsg(counter.Add, counter.AddArgs("flood", 1), a.Now()+int64(i))
				}
				return a.Frame(ms...)
			},
		},
		{
			Name: "byte-flood",
			What: "a call with 60 KiB of arguments each frame (3.7 MB/s)",
			Make: func(a Abuser) []byte { return a.Frame(a.CallMsg(counter.Add, bigArgs, a.Now())) },
		},
		{
			Name: "watch-flood",
			What: "256 new prefixes a frame, past the watch limit",
			Make: func(a Abuser) []byte {
				ps := make([]string, 256)
				for i := range ps {
					watched++
					ps[i] = fmt.Sprintf("w%d/", watched)
				}
				return a.Frame(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: ps}})
			},
		},
		{
			Name: "forbidden-writes",
			What: "a write outside its clients/<creator>/ each frame",
			Make: func(a Abuser) []byte { return a.Frame(write(a, wire.Value{Path: counter.Prefix + "total"})) },
		},
		{
			Name: "path-rule",
			What: "a write to a path with an empty segment each frame",
			Make: func(a Abuser) []byte {
				return a.Frame(write(a, wire.Value{Path: fmt.Sprintf("clients/%d/a//b", a.Creator())}))
			},
		},
		{
			Name: "future-locks",
			What: "a write whose read lock ends after it, each frame",
			Make: func(a Abuser) []byte {
				m := write(a, wire.Value{Path: fmt.Sprintf("clients/%d/x", a.Creator())})
				it := &m.Write.Items[0]
				it.Locks = []wire.Lock{{Path: counter.Prefix + "total", Start: wire.Time{Nanos: 1}, End: wire.Time{Nanos: it.Time.Nanos + int64(time.Second)}}}
				return a.Frame(m)
			},
		},
		{
			Name: "stale-calls",
			What: "10 calls a frame written 5 s in the past",
			Make: func(a Abuser) []byte {
				ms := make([]*wire.Message, 10)
				for i := range ms {
					ms[i] = a.CallMsg(counter.Add, counter.AddArgs("stale", 1), a.Now()-int64(5*time.Second))
				}
				return a.Frame(ms...)
			},
		},
		{
			Name: "unknown-function",
			What: "a call to a function nobody registered each frame",
			Make: func(a Abuser) []byte { return a.Frame(a.CallMsg("nosuchfunction", nil, a.Now())) },
		},
		{
			Name: "bad-utf8",
			What: "a write whose path is not UTF-8",
			Make: func(a Abuser) []byte {
				f := a.Frame(write(a, wire.Value{Path: fmt.Sprintf("clients/%d/bin%d", a.Creator(), a.Now())}))
				if i := bytes.Index(f, []byte("/bin")); i >= 0 {
					copy(f[i+1:], "\xff\xfe")
				}
				return f
			},
		},
	}
}

// Attacks is every class the suite runs on virtual time: each frame
// class with one abuser, and the classes of many sessions or none.
func Attacks() []*Attack {
	var out []*Attack
	for _, fc := range FrameClasses() {
		out = append(out, &Attack{
			Name:   fc.Name,
			What:   fc.What,
			CutOff: time.Second,
			Start: func(r *Run) {
				c := r.NewAbuser(fc.Name)
				c.OnWelcome(func(c *Client) {
					if fc.Setup != nil {
						c.SendFrame(fc.Setup(c))
					}
					r.Every(frame, func() {
						if c.Open() {
							c.Abuse(fc.Make(c))
						}
					})
				})
				c.Connect(true)
			},
		})
	}
	return append(out,
		&Attack{
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
		&Attack{
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
		&Attack{
			Name:         "stall",
			What:         "the node goroutine stops for 2 s (a long collection, a slow function)",
			NoLatencyBar: true,
			Start:        func(r *Run) { r.Stall(2 * time.Second) },
		},
	)
}

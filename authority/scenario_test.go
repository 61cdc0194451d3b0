package authority

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt scenarios")

// TestScenarios runs the node scripts in testdata: each block is a command,
// a line "----", and the expected transcript of what every client received
// (and what the node did), then a blank line. Run with -rewrite to update
// the expectations after a deliberate change, and review the diff.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type block struct {
	comments string // comment lines before the command, kept by -rewrite
	cmd      string
	expected string
}

func parseScript(t *testing.T, file string) []block {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []block
	sc := bufio.NewScanner(f)
	var cur *block
	inOut := false
	comments := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil:
			if strings.HasPrefix(line, "#") {
				comments += line + "\n"
				continue
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			blocks = append(blocks, block{comments: comments, cmd: line})
			comments = ""
			cur = &blocks[len(blocks)-1]
		case !inOut:
			if line != "----" {
				t.Fatalf("%s: want ---- after %q, got %q", file, cur.cmd, line)
			}
			inOut = true
		case line == "":
			cur, inOut = nil, false
		default:
			cur.expected += line + "\n"
		}
	}
	return blocks
}

func runScript(t *testing.T, file string) {
	blocks := parseScript(t, file)
	h := newHarness(t)
	var out strings.Builder
	failed := false
	for _, b := range blocks {
		got := h.exec(b.cmd)
		if *rewrite {
			out.WriteString(b.comments + b.cmd + "\n----\n" + got + "\n")
			continue
		}
		if got != b.expected {
			t.Errorf("%s: %s\n--- want\n%s--- got\n%s", file, b.cmd, b.expected, got)
			failed = true
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = failed
}

// harness drives a node with scripted clients on a virtual clock.
type harness struct {
	t       testing.TB
	n       *Node
	now     int64
	clients map[string]*tclient
	names   []string
	seqs    map[string]uint64
}

type tclient struct {
	name    string
	id      SessionID
	enc     *wire.Encoder
	dec     *wire.Decoder
	creator uint32
	resume  []byte // the resume token of its Welcome
	closed  bool
}

const ms = int64(time.Millisecond)

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func getU64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// testRegistry holds the functions the scripts call.
//   - add N: total += N (reads total).
//   - move X: players/<caller>/x = X.
//   - shoot T: reads players/T/x at the caller's view time; writes
//     hits/<caller> = "hit" if x == 5 there, else "miss".
//   - fail: returns an error.
//   - stamp: writes log/<caller> at the server's receive time.
//   - peek N: reads clients/N/x, writes peeks/<caller> = what it read.
//   - junk: fails with an error text that is not UTF-8 and longer than a
//     wire text may be.
func testRegistry() *netcode.Registry {
	r := netcode.NewRegistry()
	r.Register("add", func(tx *netcode.Tx, args []byte) error {
		total, _ := tx.Read("total")
		tx.Write("total", u64(getU64(total)+getU64(args)))
		return nil
	}, netcode.FuncOptions{})
	r.Register("move", func(tx *netcode.Tx, args []byte) error {
		tx.Write(fmt.Sprintf("players/%d/x", tx.Caller()), args)
		return nil
	}, netcode.FuncOptions{})
	r.Register("shoot", func(tx *netcode.Tx, args []byte) error {
		x, _ := tx.ReadView(fmt.Sprintf("players/%d/x", getU64(args)))
		res := "miss"
		if getU64(x) == 5 {
			res = "hit"
		}
		tx.Write(fmt.Sprintf("hits/%d", tx.Caller()), []byte(res))
		return nil
	}, netcode.FuncOptions{})
	r.Register("fail", func(tx *netcode.Tx, args []byte) error {
		return errors.New("not allowed")
	}, netcode.FuncOptions{})
	r.Register("peek", func(tx *netcode.Tx, args []byte) error {
		v, _ := tx.Read(fmt.Sprintf("clients/%d/x", getU64(args)))
		tx.Write(fmt.Sprintf("peeks/%d", tx.Caller()), v)
		return nil
	}, netcode.FuncOptions{})
	r.Register("junk", func(tx *netcode.Tx, args []byte) error {
		return errors.New("bin\xff\xfe " + strings.Repeat("é", 5000))
	}, netcode.FuncOptions{})
	r.Register("stamp", func(tx *netcode.Tx, args []byte) error {
		tx.Write(fmt.Sprintf("log/%d", tx.Caller()), args)
		return nil
	}, netcode.FuncOptions{Policy: netcode.ReceiveTime})
	// players/<id>/x places player <id> at (x, 0) for spatial watches.
	if err := r.Spatial(netcode.Layer{Prefix: "players/", Field: "x", Pos: func(v []byte) (float64, float64, bool) {
		if len(v) != 8 {
			return 0, 0, false
		}
		return float64(getU64(v)), 0, true
	}}); err != nil {
		panic(err)
	}
	return r
}

func newHarness(t testing.TB) *harness { return newHarnessWith(t, nil) }

// newHarnessWith is newHarness with its config changed by tweak first.
func newHarnessWith(t testing.TB, tweak func(*Config)) *harness {
	cfg := DefaultConfig(testRegistry())
	cfg.Limits.WatchesPerSession = 4
	cfg.Limits.CallsPerSecond = 5
	cfg.Limits.MaxSessions = 8
	cfg.Limits.MaxPendingSessions = 4
	cfg.Limits.Strikes = 3
	cfg.Wire.MaxValueBytes = 1024
	cfg.ResumeKey = []byte("scenario resume key, 32 bytes ok")
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, n: n, now: 10_000 * ms, clients: map[string]*tclient{}, seqs: map[string]uint64{}}
}

// exec runs one script command and returns the transcript.
func (h *harness) exec(line string) string {
	f := strings.Fields(line)
	cmd, args := f[0], f[1:]
	kv := map[string]string{}
	var pos []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			kv[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	at := func(def int64) int64 {
		if v, ok := kv["at"]; ok {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				h.t.Fatalf("%s: bad at=%s", line, v)
			}
			return x * ms
		}
		return def
	}
	var pre string
	switch cmd {
	case "repeat":
		// repeat N COMMAND...: run COMMAND N times; the transcript shows
		// each distinct output once, with how often it came in a row.
		n, err := strconv.Atoi(pos[0])
		if err != nil || len(f) < 3 {
			h.t.Fatalf("%s: want repeat N COMMAND", line)
		}
		var b strings.Builder
		last, runs := "", 0
		emit := func() {
			switch {
			case last == "":
				fmt.Fprintf(&b, "(%d times nothing)\n", runs)
			case runs > 1:
				fmt.Fprintf(&b, "(%d times:)\n", runs)
			}
			b.WriteString(last)
		}
		for range n {
			got := h.exec(strings.Join(f[2:], " "))
			if got == last {
				runs++
				continue
			}
			if runs > 0 {
				emit()
			}
			last, runs = got, 1
		}
		emit()
		return b.String()
	case "now":
		x, _ := strconv.ParseInt(pos[0], 10, 64)
		h.now = x * ms
	case "connect":
		id, err := h.n.Connect(h.now, pos[0])
		if err != nil {
			pre = fmt.Sprintf("connect %s: %v\n", pos[0], err)
			break
		}
		// The clients' encoders allow more than the node accepts, so
		// scripts can play a hostile client; MaxPaths must match.
		enc, _ := wire.NewEncoder(wire.Limits{MaxPaths: h.n.cfg.Wire.MaxPaths})
		dec, _ := wire.NewDecoder(h.n.cfg.Wire)
		h.clients[pos[0]] = &tclient{name: pos[0], id: id, enc: enc, dec: dec}
		h.names = append(h.names, pos[0])
	case "hello":
		v := uint16(wire.ProtocolVersion)
		if x, ok := kv["version"]; ok {
			n, _ := strconv.Atoi(x)
			v = uint16(n)
		}
		// hello NAME [version=N] [resume=FROM [tamper=1]] [resume=junk]:
		// resume with the token client FROM got in its Welcome (tamper
		// flips a bit of its MAC), or with junk bytes.
		m := &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: v}}
		if from, ok := kv["resume"]; ok {
			if from == "junk" {
				m.Hello.Resume = []byte("not a token")
			} else {
				m.Hello.Resume = slices.Clone(h.clients[from].resume)
				if len(m.Hello.Resume) == 0 {
					h.t.Fatalf("%s: %s has no resume token", line, from)
				}
				if kv["tamper"] == "1" {
					m.Hello.Resume[len(m.Hello.Resume)-1] ^= 1
				}
			}
		}
		h.send(pos[0], m)
	case "timesync":
		h.send(pos[0], &wire.Message{Kind: wire.KindTimeSyncRequest, TimeSyncRequest: wire.TimeSyncRequest{ClientSend: 42}})
	case "ping":
		h.send(pos[0], &wire.Message{Kind: wire.KindPing, Ping: wire.Ping{Seq: 7}})
	case "watch", "history":
		// watch|history CLIENT PREFIX... [at=WINDOW_MS] [done=1]: done asks
		// for a WatchDone after each prefix's snapshot.
		m := &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: pos[1:], Done: kv["done"] == "1"}}
		if cmd == "history" {
			m.Watch.Mode = wire.WatchHistory
			m.Watch.Window = time.Duration(at(0))
		}
		h.send(pos[0], m)
	case "near":
		// near CLIENT PREFIX ENTITY RADIUS: a spatial watch following ENTITY.
		r, _ := strconv.ParseFloat(pos[3], 64)
		h.send(pos[0], &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: pos[1:2], Done: true,
			Area: wire.Area{Kind: wire.AreaNear, Entity: pos[2], Radius: r}}})
	case "region":
		// region CLIENT PREFIX X0 X1: a spatial watch of the box (X0, -1)-(X1, 1).
		x0, _ := strconv.ParseFloat(pos[2], 64)
		x1, _ := strconv.ParseFloat(pos[3], 64)
		h.send(pos[0], &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: pos[1:2], Done: true,
			Area: wire.Area{Kind: wire.AreaRegion, X0: x0, Y0: -1, X1: x1, Y1: 1}}})
	case "unwatch":
		h.send(pos[0], &wire.Message{Kind: wire.KindUnwatch, Unwatch: wire.Unwatch{Prefixes: pos[1:]}})
	case "call":
		// call CLIENT FUNC [ARG] [at=MS] [view=MS] [seq=N] [size=N]
		c := h.clients[pos[0]]
		h.seqs[pos[0]]++
		seq := h.seqs[pos[0]]
		if s, ok := kv["seq"]; ok {
			seq, _ = strconv.ParseUint(s, 10, 64)
		}
		var a []byte
		if len(pos) > 2 {
			x, _ := strconv.ParseUint(pos[2], 10, 64)
			a = u64(x)
		}
		if s, ok := kv["size"]; ok {
			n, _ := strconv.Atoi(s)
			a = make([]byte, n)
		}
		call := wire.Call{ID: wire.CallID{Creator: c.creator, Seq: seq}, Name: pos[1], Args: a,
			Time: wire.Time{Nanos: at(h.now), Creator: c.creator}}
		if v, ok := kv["view"]; ok {
			x, _ := strconv.ParseInt(v, 10, 64)
			call.ViewDelay = time.Duration(x * ms)
		}
		if v, ok := kv["creator"]; ok {
			x, _ := strconv.ParseUint(v, 10, 32)
			call.ID.Creator = uint32(x)
		}
		if v, ok := kv["digest"]; ok {
			// digest=predict: the digest of the outcome the node would
			// have now, as a client whose view is the node's predicts
			// it; digest=N: N.
			if v == "predict" {
				nc := netcode.Call{ID: netcode.CallID{Creator: call.ID.Creator, Seq: seq}, Name: call.Name, Args: a, Time: call.Time.Nanos, ViewDelay: call.ViewDelay}
				out := h.n.reg.Run(h.n.store, &h.n.cfg.Store, nc, 0)
				call.Digest = out.Digest()
			} else {
				call.Digest, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		h.send(pos[0], &wire.Message{Kind: wire.KindCall, Call: call})
	case "write":
		// write CLIENT PATH VALUE [at=MS] [lockpath=P lockstart=MS lockend=MS]
		c := h.clients[pos[0]]
		v := wire.Value{Path: pos[1], Time: wire.Time{Nanos: at(h.now), Creator: c.creator}, Value: []byte(pos[2])}
		if lp, ok := kv["lockpath"]; ok {
			s, _ := strconv.ParseInt(kv["lockstart"], 10, 64)
			e, _ := strconv.ParseInt(kv["lockend"], 10, 64)
			v.Locks = []wire.Lock{{Path: lp, Start: wire.Time{Nanos: s * ms}, End: wire.Time{Nanos: e * ms}}}
		}
		h.send(pos[0], &wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: []wire.Value{v}}})
	case "raw":
		b, err := hex.DecodeString(pos[1])
		if err != nil {
			h.t.Fatal(err)
		}
		h.n.Step(h.now, h.clients[pos[0]].id, b)
	case "disconnect":
		h.n.Disconnect(h.now, h.clients[pos[0]].id)
		h.clients[pos[0]].closed = true
	case "tick":
		if len(pos) > 0 {
			x, _ := strconv.ParseInt(pos[0], 10, 64)
			h.now = x * ms
		}
		h.n.Tick(h.now)
	case "read":
		// read PATH: the store's latest readable value and state.
		v, ok := h.n.Store().Latest(pos[0], netcode.Time{Nanos: h.now + 1})
		if !ok {
			return "(none)\n"
		}
		return fmt.Sprintf("%s@%s = %s %v\n", v.Path, fmtTime(wire.Time(v.Time)), fmtVal(v.Value), v.State)
	case "stats":
		st := h.n.Stats()
		return fmt.Sprintf("calls=%d errors=%d rejected=%d reruns=%d writes=%d refused=%d strikes=%d kicked=%d sessions=%d\n",
			st.Calls, st.CallErrors, st.CallsRejected, st.Reruns, st.Writes, st.WritesRefused, st.Strikes, st.Kicked, st.Sessions)
	case "resumes":
		st := h.n.Stats()
		return fmt.Sprintf("resumes=%d superseded=%d creators=%d\n", st.Resumes, st.Superseded, len(h.n.creators))
	default:
		h.t.Fatalf("unknown command %q", line)
	}
	return pre + h.drain()
}

func (h *harness) send(name string, m *wire.Message) {
	c := h.clients[name]
	if c == nil {
		h.t.Fatalf("no client %s", name)
	}
	buf := c.enc.BeginFrame(nil)
	buf, err := c.enc.Append(buf, m)
	if err != nil {
		h.t.Fatalf("encode %v: %v", m.Kind, err)
	}
	h.n.Step(h.now, c.id, buf)
}

// drain takes the node's outputs and decodes them per client into lines.
func (h *harness) drain() string {
	var b strings.Builder
	for _, o := range h.n.Ready() {
		var c *tclient
		for _, x := range h.clients {
			if x.id == o.Session {
				c = x
			}
		}
		for _, f := range o.Frames {
			if err := c.dec.Start(f); err != nil {
				h.t.Fatalf("%s: bad frame from node: %v", c.name, err)
			}
			var m wire.Message
			for {
				err := c.dec.Next(&m)
				if err == io.EOF {
					break
				}
				if err != nil {
					h.t.Fatalf("%s: bad message from node: %v", c.name, err)
				}
				if m.Kind == wire.KindWelcome {
					c.creator = m.Welcome.Creator
					c.resume = slices.Clone(m.Welcome.Resume)
				}
				fmt.Fprintf(&b, "%s <- %s\n", c.name, describe(&m))
			}
		}
		if o.Close {
			fmt.Fprintf(&b, "%s closed: %s\n", c.name, o.Reason)
			c.closed = true
		}
	}
	return b.String()
}

func fmtTime(t wire.Time) string {
	s := strconv.FormatInt(t.Nanos/ms, 10)
	if r := t.Nanos % ms; r != 0 {
		s += fmt.Sprintf(".%06d", r)
	}
	if t.Version != 0 {
		s += fmt.Sprintf("v%d", t.Version)
	}
	if t.Creator != 0 {
		s += fmt.Sprintf("c%d", t.Creator)
	}
	return s
}

func fmtVal(v []byte) string {
	if v == nil {
		return "<deleted>"
	}
	if len(v) == 8 {
		return strconv.FormatUint(getU64(v), 10)
	}
	return strconv.Quote(string(v))
}

func describe(m *wire.Message) string {
	switch m.Kind {
	case wire.KindWelcome:
		w := m.Welcome
		return fmt.Sprintf("Welcome creator=%d time=%s change=%v rewind=%v skew=%v", w.Creator, fmtTime(wire.Time{Nanos: w.ServerTime}), w.MaxChangeAge, w.MaxRewind, w.MaxFutureSkew)
	case wire.KindTimeSyncReply:
		r := m.TimeSyncReply
		return fmt.Sprintf("TimeSyncReply client=%d recv=%s send=%s", r.ClientSend, fmtTime(wire.Time{Nanos: r.ServerRecv}), fmtTime(wire.Time{Nanos: r.ServerSend}))
	case wire.KindPing:
		return fmt.Sprintf("Ping %d", m.Ping.Seq)
	case wire.KindValues:
		var parts []string
		for _, v := range m.Values.Items {
			s := fmt.Sprintf("%s@%s=%s", v.Path, fmtTime(v.Time), fmtVal(v.Value))
			if v.State != wire.StateValid {
				s += fmt.Sprintf("(state %d)", v.State)
			}
			if len(v.Locks) > 0 {
				s += "(LOCKS!)"
			}
			parts = append(parts, s)
		}
		return "Values " + strings.Join(parts, " ")
	case wire.KindValidStates:
		var parts []string
		for _, v := range m.ValidStates.Items {
			parts = append(parts, fmt.Sprintf("%s@%s→%s", v.Path, fmtTime(v.Time), []string{"valid", "invalid", "pending"}[v.State]))
		}
		return "ValidStates " + strings.Join(parts, " ")
	case wire.KindCallResult:
		r := m.CallResult
		s := fmt.Sprintf("CallResult seq=%d %s", r.ID.Seq, []string{"ok", "failed", "rejected"}[r.Status])
		if r.Error != "" {
			s += fmt.Sprintf(" %q", r.Error)
		}
		var outs []string
		for _, o := range r.Outputs {
			outs = append(outs, o.Path+"@"+fmtTime(o.Time))
		}
		slices.Sort(outs)
		if len(outs) > 0 {
			s += " outputs=" + strings.Join(outs, ",")
		}
		if r.Matched {
			s += " matched"
		}
		return s
	case wire.KindError:
		return fmt.Sprintf("Error code=%d %q", m.Error.Code, m.Error.Text)
	case wire.KindWatchDone:
		return "WatchDone " + m.WatchDone.Prefix
	case wire.KindLeave:
		return "Leave " + m.Leave.Prefix
	}
	return m.Kind.String()
}

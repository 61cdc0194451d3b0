package netcode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// Client errors.
var (
	ErrNotConnected = errors.New("netcode: not connected (no Welcome yet)")
	ErrNotSynced    = errors.New("netcode: clock not synced yet")
	ErrTooManyCalls = errors.New("netcode: too many calls awaiting their result")
	ErrCallTimeout  = errors.New("netcode: call not answered in time")
	ErrCallTooOld   = errors.New("netcode: call too old to re-send after reconnecting")
)

// Budget limits client resimulation so a burst of corrections cannot lock
// up a frame: each correction earns Credits, each re-run costs one, and at
// most Max credits are held. A pending call whose re-run the budget skips
// keeps its stale prediction until the authority's answer corrects it.
type Budget struct {
	PerCorrection float64 // credits earned per correction (misprediction or pushed change)
	Max           float64 // credits held at most (and at start)
}

// ClientOptions configure a ClientCore.
type ClientOptions struct {
	// Registry holds the game's functions: the same as the authority's.
	Registry *Registry
	// Clock is the synced clock the core drives with time-sync exchanges.
	// Its source is the client's local time.
	Clock *timesync.Clock
	// Token authenticates the client (see authority.IssueToken); empty when
	// the authority needs none.
	Token []byte
	// Wire bounds frames; must match the authority's MaxPaths.
	Wire wire.Limits
	// ViewDelay is how far behind now remote entities are shown
	// (interpolation buffer) and how far back the authority's past-time
	// reads of this client's calls go. Zero: automatic, from the measured
	// round trip and jitter and SendInterval (see ClientCore.ViewDelay).
	ViewDelay time.Duration
	// SendInterval is the authority's flush period (its tick), for the
	// automatic view delay. Zero: 16 ms.
	SendInterval time.Duration
	// Budget limits resimulation. Zero fields: 4 per correction, 32 held.
	Budget Budget
	// MaxPending bounds calls awaiting their result. Zero: 256.
	MaxPending int
	// History is how much confirmed history is kept per path beyond the
	// latest value, for ReadAt and interpolation. Zero: MaxRewind.
	History time.Duration
	// CallTimeout fails a call with no result after this long. Zero:
	// 2 × MaxChangeAge + 1 s.
	CallTimeout time.Duration
}

func (o *ClientOptions) withDefaults() {
	if o.SendInterval <= 0 {
		o.SendInterval = 16 * time.Millisecond
	}
	if o.Budget.PerCorrection <= 0 {
		o.Budget.PerCorrection = 4
	}
	if o.Budget.Max <= 0 {
		o.Budget.Max = 32
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 256
	}
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventConnected: the authority welcomed this client (again).
	EventConnected EventKind = iota + 1
	// EventDisconnected: the session ended (Err says why).
	EventDisconnected
	// EventValue: the confirmed value of Path changed (a value arrived, or
	// a state change made another value the latest).
	EventValue
	// EventEmitted: a function emitted an event value (Path, Value). Each
	// emitted event reaches the game exactly once, predicted or confirmed.
	EventEmitted
	// EventResult: the authority answered Call: Err is nil when it ran and
	// its writes were stored.
	EventResult
	// EventCorrection: the authority's outputs differed from the
	// prediction; Correction explains it.
	EventCorrection
	// EventError: the authority sent an Error message (Err).
	EventError
	// EventWatchReady: the snapshot of the watch of Path (a prefix or an
	// exact path, as given to Watch) has arrived whole: the view of Path
	// is now what the authority holds, so a call predicted from here on
	// reads the same values the authority will. It comes once per watch
	// and again after each reconnect, when the watch is renewed;
	// WatchReady reports the same at any time. An authority that predates
	// snapshot ends never sends it.
	EventWatchReady
	// EventEnter: the entity Path ("players/42/") entered the area of a
	// spatial watch (WatchArea); its values arrived with it.
	EventEnter
	// EventLeave: the entity Path left the area of a spatial watch: its
	// confirmed values were dropped (each reported as an EventValue
	// before this), and nothing of it comes until it enters again.
	EventLeave
)

func (k EventKind) String() string {
	return [...]string{"?", "connected", "disconnected", "value", "emitted", "result", "correction", "error", "watch ready"}[min(int(k), 8)]
}

// Event is something the game should know, returned by Update.
type Event struct {
	Kind       EventKind
	Path       string
	Value      []byte
	Time       Time
	Call       CallID
	Err        error
	Correction *Correction
}

// Correction explains a misprediction: on Path, the prediction was
// Predicted and the authority stored Authoritative (nil: deleted or not
// written). Cause names the value that made the difference when known: the
// value of CausePath the authority read (written by Cause.Creator at Cause)
// where the prediction had read another.
type Correction struct {
	Call          CallID
	Path          string
	Predicted     []byte
	Authoritative []byte
	CausePath     string
	Cause         Time
	CauseKnown    bool
}

func (c *Correction) String() string {
	s := fmt.Sprintf("%s: predicted %x, authority %x", c.Path, c.Predicted, c.Authoritative)
	if c.CauseKnown {
		s += fmt.Sprintf(" (because of %s written by %d at %d)", c.CausePath, c.Cause.Creator, c.Cause.Nanos)
	}
	return s
}

// ClientStats are the client's counters.
type ClientStats struct {
	Connected  bool
	Creator    uint32
	Synced     bool
	RTT        time.Duration // mean round trip of time-sync exchanges
	RTTMin     time.Duration
	Jitter     time.Duration
	Offset     time.Duration // authority time minus local time
	ErrorBound time.Duration // clock error bound
	ViewDelay  time.Duration

	Calls          uint64 // calls made
	Confirmed      uint64 // calls the authority ran and stored
	Failed         uint64 // calls that failed or were rejected
	Mispredictions uint64 // confirmed calls whose outputs differed from the prediction
	Reruns         uint64 // predictions re-run
	BudgetSkips    uint64 // re-runs the budget skipped
	Corrections    uint64 // correction events
	Pending        int    // calls awaiting their result

	FramesIn, FramesOut uint64
	BytesIn, BytesOut   uint64
	// BytesInPerSec and BytesOutPerSec average over the last second or so.
	BytesInPerSec, BytesOutPerSec float64
}

// cval is a confirmed value.
type cval struct {
	t     Time
	value []byte
	state State
	flags Flags
	// arrived is ClientCore.arrivals when the value last arrived in a
	// Values message, so a snapshot's end can tell what arrived since its
	// Watch was sent.
	arrived uint64
}

// snapshotWait follows the snapshots of one prefix that this session asked
// for and whose WatchDone has not arrived yet. The authority answers the
// Watches of a prefix in the order they were sent, each with its snapshot
// and then its WatchDone, so the due snapshots end in that order too.
type snapshotWait struct {
	due int // WatchDones still to come
	// start is the arrivals count when the oldest due snapshot began:
	// every value that arrived since is part of it or newer.
	start uint64
}

// maxSnapshotWaits bounds the prefixes whose snapshot end is awaited at
// once. An authority that predates WatchDone never ends one, so without it
// a session there would keep an entry per prefix ever watched; beyond it a
// Watch is sent as usual and its snapshot is not followed.
const maxSnapshotWaits = 1024

// pcall is a call awaiting its result, with its prediction. call.ID is
// the id on the current session; id is the one Call returned, which events
// keep using when the call is re-sent under a new session's Creator.
type pcall struct {
	id    CallID
	call  Call
	out   Outcome
	stale bool // a re-run was skipped by the budget
	sent  bool
	// digest is the digest of the prediction the call was first sent
	// with (0: none, it predicted an error), and sentOut that prediction:
	// a matched result says the authority's outcome is sentOut, whatever
	// p.out has become since. Both are fixed at the first send, so a
	// resent call names the same outcome as the record the authority
	// may already hold.
	digest  uint64
	sentOut Outcome
}

// confirmedCall remembers a confirmed call until finality, so that a
// re-run of it by the authority can be explained as a correction.
type confirmedCall struct {
	id      CallID // as returned by Call
	call    Call
	outputs map[string][]byte // path → authoritative value (nil: deleted)
	reads   []wire.Lock
}

// pathHist is the confirmed history of one path, with what the game was
// last told of it, so a value's arrival costs one map lookup (and the
// store back), held in the map itself rather than behind a pointer.
type pathHist struct {
	vals []cval // by time, never empty in ClientCore.confirmed
	// reported is the time of the latest valid value last reported
	// (EventValue), when hasReported.
	reported    Time
	hasReported bool
}

// recentRef orders ClientCore.recent by call time for the sweep.
type recentRef struct {
	t  int64 // cc.call.Time
	id CallID
	cc *confirmedCall
}

type eventKey struct {
	path    string
	nanos   int64
	creator uint32
}

// ClientCore is the client's logic as a pure state machine: the shell (or
// the simulator) feeds it frames and ticks and sends the frames it
// produces; the game calls, reads and drains events. It owns no goroutine
// or socket; its only time source is the Clock it was given, which the
// shell backs with the system's monotonic clock and the simulator with a
// virtual one. A ClientCore is not safe for concurrent use.
type ClientCore struct {
	// immutable after construction
	opts  ClientOptions
	reg   *Registry
	clock *timesync.Clock

	cfg       Config // timing rules, from the Welcome
	enc       *wire.Encoder
	dec       *wire.Decoder
	in        wire.Message
	cur       []byte
	out       [][]byte
	connected bool
	creator   uint32
	resume    []byte // the latest Welcome's resume token, sent in the next Hello
	seq       uint64
	lastW     int64
	heard     int64 // the authority's time on the latest Welcome or time-sync reply applied
	watches   map[string]wire.Watch

	confirmed map[string]pathHist
	sorted    []string // confirmed's paths in order, for prefix ranges
	pending   []*pcall // by write time
	byID      map[CallID]*pcall
	freeCalls []*pcall                  // answered calls, for reuse
	recent    map[CallID]*confirmedCall // confirmed calls that the authority may still re-run
	recentQ   []recentRef               // recent's entries (and overwritten ones) by call time
	noLagComp bool                      // calls carry no view delay
	dirty     map[string]int64          // path → earliest changed time, for resimulation
	credits   float64
	delivered map[eventKey]int64 // emitted events already given to the game → expiry
	// evBuf holds the events: those from evStart on are the current
	// batch, those before it were handed out by Events.
	evBuf   []Event
	evStart int

	// arrivals counts the confirmed values that arrived (in Values), and
	// snaps follows, by prefix, the Watches of this session whose
	// snapshot has not ended yet: an entry is two words whatever the
	// snapshot's size, at most maxSnapshotWaits of them, dropped at the
	// last due WatchDone; a new session forgets them all.
	arrivals uint64
	snaps    map[string]*snapshotWait
	// ready holds the watched prefixes whose snapshot has ended on this
	// session (EventWatchReady); a Watch, an Unwatch or a new session
	// takes a prefix out.
	ready map[string]bool

	stats             ClientStats
	rateAt            int64
	sweptAt           int64 // the clock's now at the last history sweep
	lastIn, lastOut   uint64
	lastSyncRequested int64
}

// NewClientCore returns a core that has not connected yet; call Connect.
func NewClientCore(opts ClientOptions) (*ClientCore, error) {
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	if opts.Clock == nil {
		return nil, fmt.Errorf("%w: ClientOptions.Clock is nil", ErrBadConfig)
	}
	if err := opts.Wire.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	opts.withDefaults()
	c := &ClientCore{
		opts:      opts,
		reg:       opts.Registry,
		clock:     opts.Clock,
		cfg:       DefaultConfig(),
		watches:   make(map[string]wire.Watch),
		confirmed: make(map[string]pathHist),
		byID:      make(map[CallID]*pcall),
		recent:    make(map[CallID]*confirmedCall),
		dirty:     make(map[string]int64),
		delivered: make(map[eventKey]int64),
		snaps:     make(map[string]*snapshotWait),
		ready:     make(map[string]bool),
		credits:   opts.Budget.Max,
	}
	return c, nil
}

// Connect starts a session: it resets the codecs and queues a Hello. Call
// it for the first connection and again after a lost session, on a new
// transport session; watches are renewed and pending calls are re-sent once
// the authority welcomes the client. The Hello carries the resume token of
// the last Welcome, if the authority gave one: when it resumes the session
// (same Creator), pending calls are re-sent with their ids, so one the
// authority already ran is answered from its record, never run twice.
func (c *ClientCore) Connect() error {
	enc, err := wire.NewEncoder(c.opts.Wire)
	if err != nil {
		return err
	}
	dec, err := wire.NewDecoder(c.opts.Wire)
	if err != nil {
		return err
	}
	c.enc, c.dec = enc, dec
	c.cur, c.out = nil, nil
	c.connected = false
	clear(c.snaps) // the old session's WatchDones will never come
	clear(c.ready) // the view is stale until the renewed watches' snapshots end
	// Replies to requests sent on the old session will never come.
	c.clock.ForgetRequests()
	c.send(&wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion, Token: c.opts.Token, Resume: c.resume}})
	c.syncNow()
	return nil
}

// Disconnected tells the core its session is gone (err says why). Calls
// stay pending until Connect succeeds again or they time out.
func (c *ClientCore) Disconnected(err error) {
	if c.connected {
		c.event(Event{Kind: EventDisconnected, Err: err})
	}
	c.connected = false
	c.cur, c.out = nil, nil
	clear(c.snaps)
}

// Connected reports whether the authority has welcomed the current session.
func (c *ClientCore) Connected() bool { return c.connected }

// Creator returns the id the authority assigned this session (0 before).
func (c *ClientCore) Creator() uint32 { return c.creator }

// Now returns the synced time in nanoseconds.
func (c *ClientCore) Now() int64 { return c.clock.Now() }

// Clock returns the core's synced clock.
func (c *ClientCore) Clock() *timesync.Clock { return c.clock }

// Config returns the timing rules the authority sent.
func (c *ClientCore) Config() Config { return c.cfg }

// ViewDelay returns the interpolation delay in use: the configured one, or
// the automatic one: the measured mean round trip, plus the authority's
// send interval, plus twice the measured jitter, plus 5 ms.
//
// The round trip is in it because values are stamped with their writers'
// time: another player's input at t reaches the authority after its own
// one-way delay and this client after the flush and this client's one-way
// delay, about a round trip later (assuming similar links). Shown (and
// read in the past, by the authority's past-time reads) any less than that
// behind, remote state would still be missing inputs already made, and
// what the player saw would differ from what the authority checks.
func (c *ClientCore) ViewDelay() time.Duration {
	if c.opts.ViewDelay > 0 {
		return c.opts.ViewDelay
	}
	st := c.clock.Status()
	return time.Duration(st.RTT.Mean) + c.opts.SendInterval + 2*time.Duration(st.RTT.Jitter) + 5*time.Millisecond
}

// SetLagCompensation turns lag compensation on (the default) or off for
// the calls made from now on: when off, a call carries no view delay, so
// the authority's past-time reads (tx.ReadView) see the present instead of
// what the player saw. A demo toggles it so the difference can be felt.
func (c *ClientCore) SetLagCompensation(on bool) { c.noLagComp = !on }

// LagCompensation reports whether calls carry the view delay.
func (c *ClientCore) LagCompensation() bool { return !c.noLagComp }

// --- outgoing ---

func (c *ClientCore) send(m *wire.Message) {
	if c.enc == nil {
		return
	}
	if c.cur == nil {
		c.cur = c.enc.BeginFrame(make([]byte, 0, 256))
	}
	buf, err := c.enc.Append(c.cur, m)
	if err == nil {
		c.cur = buf
		return
	}
	c.flush()
	c.cur = c.enc.BeginFrame(make([]byte, 0, 256))
	if buf, err = c.enc.Append(c.cur, m); err == nil {
		c.cur = buf
		return
	}
	// A single message larger than a frame: our own bug or limits; report.
	c.event(Event{Kind: EventError, Err: fmt.Errorf("netcode: cannot send %v: %w", m.Kind, err)})
	c.cur = nil
}

func (c *ClientCore) flush() {
	if len(c.cur) > 1 {
		c.out = append(c.out, c.cur)
		c.stats.FramesOut++
		c.stats.BytesOut += uint64(len(c.cur))
	}
	c.cur = nil
}

// Outgoing returns the frames to send, in order, and forgets them.
func (c *ClientCore) Outgoing() [][]byte {
	c.flush()
	out := c.out
	c.out = nil
	return out
}

func (c *ClientCore) syncNow() {
	req := c.clock.Request()
	c.lastSyncRequested = c.clock.Local()
	c.send(&wire.Message{Kind: wire.KindTimeSyncRequest, TimeSyncRequest: wire.TimeSyncRequest{ClientSend: req.ClientSend}})
}

// --- the game's side ---

// Watch asks for the values under prefix (ending in '/') or of one path:
// the latest values at once, then every change. Mode WatchHistory with a
// window also sends the recent history (for interpolation).
//
// The authority marks the end of that first answer (the snapshot), and
// there the confirmed values under prefix that it no longer has are
// dropped: a path deleted, or a value invalidated, while this client was
// not watching (disconnected, say). Each drop is reported as an
// EventValue like any other change.
func (c *ClientCore) Watch(prefix string, mode wire.WatchMode, window time.Duration) error {
	if err := checkWatch(prefix); err != nil {
		return err
	}
	w := wire.Watch{Prefixes: []string{prefix}, Mode: mode, Window: window, Done: true}
	c.watches[prefix] = w
	delete(c.ready, prefix) // ready again once this Watch's snapshot ends
	if c.connected {
		c.sendWatch(w)
	}
	return nil
}

// WatchArea is a spatial Watch of a prefix the authority's registry
// declares as a spatial layer (netcode.Layer): only the entities under
// prefix inside the area are sent, each whole when it enters
// (EventEnter) and dropped when it leaves (EventLeave); WatchNear and
// WatchRegion build the area. Watching the prefix again replaces the
// area (the client moves its region, say); a plain Watch of the prefix
// replaces the spatial one. Lag compensation is unaffected: the
// authority judges calls on its own store, whatever a client watches.
func (c *ClientCore) WatchArea(prefix string, area wire.Area, mode wire.WatchMode, window time.Duration) error {
	if err := checkWatch(prefix); err != nil {
		return err
	}
	if prefix == "" || prefix[len(prefix)-1] != '/' {
		return fmt.Errorf("netcode: a spatial watch needs a prefix, got %q", prefix)
	}
	w := wire.Watch{Prefixes: []string{prefix}, Mode: mode, Window: window, Done: true, Area: area}
	enc, err := wire.NewEncoder(c.opts.Wire)
	if err != nil {
		return err
	}
	if _, err := enc.AppendWatch(nil, &w); err != nil {
		return err // a bad area, caught here rather than by the session
	}
	c.watches[prefix] = w
	delete(c.ready, prefix)
	if c.connected {
		c.sendWatch(w)
	}
	return nil
}

// WatchNear watches the entities under prefix within radius of entity
// (an entity prefix under it, "players/42/": typically the player's own),
// following it as it moves. See WatchArea.
func (c *ClientCore) WatchNear(prefix, entity string, radius float64) error {
	return c.WatchArea(prefix, wire.Area{Kind: wire.AreaNear, Entity: entity, Radius: radius}, wire.WatchLatest, 0)
}

// WatchRegion watches the entities under prefix inside the box (x0, y0)
// to (x1, y1). See WatchArea.
func (c *ClientCore) WatchRegion(prefix string, x0, y0, x1, y1 float64) error {
	return c.WatchArea(prefix, wire.Area{Kind: wire.AreaRegion, X0: x0, Y0: y0, X1: x1, Y1: y1}, wire.WatchLatest, 0)
}

// spatialParent returns the spatial watch prefix that entity lies under
// (an entity prefix one level below it), if any.
func (c *ClientCore) spatialParent(entity string) (string, bool) {
	for p, w := range c.watches {
		if w.Area.Kind != wire.AreaNone && len(entity) > len(p) && HasPrefix(entity, p) {
			return p, true
		}
	}
	return "", false
}

// leave drops what the client holds of an entity that left a spatial
// watch's area.
func (c *ClientCore) leave(entity string) {
	if _, ok := c.spatialParent(entity); !ok || entity[len(entity)-1] != '/' {
		return // not ours to drop: a stray or hostile Leave
	}
	c.dropStale(entity, c.arrivals)
	c.event(Event{Kind: EventLeave, Path: entity})
}

// sendWatch sends w (one prefix, Done set) and awaits its snapshot's end.
func (c *ClientCore) sendWatch(w wire.Watch) {
	c.send(&wire.Message{Kind: wire.KindWatch, Watch: w})
	p := w.Prefixes[0]
	sw := c.snaps[p]
	if sw == nil {
		if len(c.snaps) >= maxSnapshotWaits {
			return
		}
		sw = &snapshotWait{start: c.arrivals}
		c.snaps[p] = sw
	}
	sw.due++
}

// Unwatch stops a watch.
func (c *ClientCore) Unwatch(prefix string) {
	// A snapshot still due for prefix keeps its entry: its WatchDone comes
	// before the authority reads the Unwatch, and what it ends is still a
	// true picture of the prefix at that point (the view of an unwatched
	// prefix is frozen there anyway). Dropping the entry instead would take
	// that WatchDone for the end of a Watch sent later.
	delete(c.watches, prefix)
	delete(c.ready, prefix)
	if c.connected {
		c.send(&wire.Message{Kind: wire.KindUnwatch, Unwatch: wire.Unwatch{Prefixes: []string{prefix}}})
	}
}

func checkWatch(prefix string) error {
	if prefix == "" || prefix[len(prefix)-1] == '/' {
		return ValidatePrefix(prefix)
	}
	return ValidatePath(prefix)
}

// Call predicts the function locally at the synced now and sends the call.
// The prediction is visible to reads at once; the authority's answer
// arrives as an EventResult (and EventCorrection when it differs).
func (c *ClientCore) Call(name string, args []byte) (CallID, error) {
	if !c.connected {
		return CallID{}, ErrNotConnected
	}
	if !c.clock.Synced() {
		return CallID{}, ErrNotSynced
	}
	if len(c.pending) >= c.opts.MaxPending {
		return CallID{}, fmt.Errorf("%w (limit %d)", ErrTooManyCalls, c.opts.MaxPending)
	}
	if _, ok := c.reg.Lookup(name); !ok {
		return CallID{}, fmt.Errorf("%w: %q", ErrUnknownFunction, name)
	}
	W := max(c.clock.Now(), c.lastW+1)
	c.lastW = W
	c.seq++
	view := c.ViewDelay()
	if c.noLagComp {
		view = 0
	}
	call := Call{ID: CallID{Creator: c.creator, Seq: c.seq}, Name: name, Args: slices.Clone(args), Time: W, ViewDelay: view}
	p := c.newCall()
	p.id, p.call = call.ID, call
	c.predict(p)
	c.pending = append(c.pending, p)
	c.byID[call.ID] = p
	c.stats.Calls++
	c.sendCall(p)
	return call.ID, nil
}

func (c *ClientCore) sendCall(p *pcall) {
	if !p.sent && p.out.Err == nil {
		p.digest, p.sentOut = p.out.Digest(), p.out
	}
	p.sent = true
	c.send(&wire.Message{Kind: wire.KindCall, Call: wire.Call{
		ID:   wire.CallID{Creator: p.call.ID.Creator, Seq: p.call.ID.Seq},
		Name: p.call.Name, Args: p.call.Args,
		Time:      wire.Time{Nanos: p.call.Time, Creator: p.call.ID.Creator},
		ViewDelay: p.call.ViewDelay,
		Digest:    p.digest,
	}})
}

// predict runs p's call on the current view and delivers the events it
// emits (once).
func (c *ClientCore) predict(p *pcall) {
	p.out = c.reg.Run(c, &c.cfg, p.call, 0)
	for i := range p.out.Writes {
		w := &p.out.Writes[i]
		w.Flags |= FlagPredicted
		if w.Flags&FlagEvent != 0 {
			c.emit(w.Path, w.Value, w.Time)
		}
	}
}

// emit gives an emitted event to the game unless it already had it. Events
// are remembered for eventMemory after their time; an event older than that
// (a result arriving after its call timed out, say) is not given again.
func (c *ClientCore) emit(path string, value []byte, t Time) {
	k := eventKey{path, t.Nanos, t.Creator}
	if _, seen := c.delivered[k]; seen {
		return
	}
	if c.clock.Synced() && t.Nanos < c.clock.Now()-c.eventMemory() {
		return
	}
	c.delivered[k] = t.Nanos + c.eventMemory()
	c.event(Event{Kind: EventEmitted, Path: path, Value: value, Time: t})
}

// eventMemory is how long delivered events are remembered: longer than a
// call can take to be answered or time out, plus the change window.
func (c *ClientCore) eventMemory() int64 {
	return int64(c.callTimeout()) + 2*int64(c.cfg.MaxChangeAge) + int64(time.Second)
}

func (c *ClientCore) callTimeout() time.Duration {
	if c.opts.CallTimeout > 0 {
		return c.opts.CallTimeout
	}
	return 2*c.cfg.MaxChangeAge + time.Second
}

// Latest implements View over confirmed values and pending predictions:
// the latest of the valid confirmed values and the predicted writes of
// pending calls strictly before t.
func (c *ClientCore) Latest(path string, before Time) (PathValue, bool) {
	var best PathValue
	found := false
	var vals []cval
	if h, ok := c.confirmed[path]; ok {
		vals = h.vals
	}
	for i := len(vals) - 1; i >= 0; i-- {
		v := &vals[i]
		if !v.t.Before(before) || v.state != Valid {
			continue
		}
		best = PathValue{Path: path, Time: v.t, Value: v.value, State: Valid, Flags: v.flags}
		found = true
		break
	}
	for i := len(c.pending) - 1; i >= 0; i-- {
		p := c.pending[i]
		if !p.out.Time.Before(before) {
			continue
		}
		for j := range p.out.Writes {
			w := &p.out.Writes[j]
			if w.Path != path || w.Flags&FlagEvent != 0 {
				continue
			}
			// The latest pending write of path; confirmed wins a tie
			// (its own confirmed output at the same time).
			if !found || best.Time.Before(w.Time) {
				return *w, true
			}
			return best, true
		}
	}
	return best, found
}

// Children implements View: the next segments of the confirmed and
// predicted paths under prefix.
func (c *ClientCore) Children(prefix string) []string {
	set := map[string]bool{}
	add := func(p string) {
		if !strings.HasPrefix(p, prefix) || len(p) == len(prefix) {
			return
		}
		rest := p[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		set[rest] = true
	}
	for p := range c.confirmed {
		add(p)
	}
	for _, pc := range c.pending {
		for _, w := range pc.out.Writes {
			add(w.Path)
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Read returns the latest value of path in the local view: confirmed or
// predicted, whichever is later.
func (c *ClientCore) Read(path string) ([]byte, bool) {
	v, ok := c.Latest(path, Time{Nanos: 1<<63 - 1})
	if !ok || v.Value == nil {
		return nil, false
	}
	return v.Value, true
}

// ReadAt returns the latest value of path strictly before the synced time
// t in the local view.
func (c *ClientCore) ReadAt(path string, t int64) ([]byte, bool) {
	v, ok := c.Latest(path, Time{Nanos: t})
	if !ok || v.Value == nil {
		return nil, false
	}
	return v.Value, true
}

// History returns the confirmed valid values of path, oldest first, for
// interpolation. The slices alias the core: do not modify them.
func (c *ClientCore) History(path string) []PathValue {
	var vals []cval
	if h, ok := c.confirmed[path]; ok {
		vals = h.vals
	}
	out := make([]PathValue, 0, len(vals))
	for _, v := range vals {
		if v.state == Valid {
			out = append(out, PathValue{Path: path, Time: v.t, Value: v.value, Flags: v.flags})
		}
	}
	return out
}

// Events returns the events since the last call and forgets them. The
// core never touches the returned slice again.
func (c *ClientCore) Events() []Event {
	n := len(c.evBuf)
	if n == c.evStart {
		return nil
	}
	ev := c.evBuf[c.evStart:n:n] // capped: appending to it cannot reach the core's next events
	c.evStart = n
	return ev
}

// AppendEvents appends the events since the last call to dst, forgets
// them and returns the extended slice. Unlike Events, it lets the core
// reuse their room: a caller that drains events every frame into a slice
// of its own allocates nothing for them.
func (c *ClientCore) AppendEvents(dst []Event) []Event {
	batch := c.evBuf[c.evStart:]
	dst = append(dst, batch...)
	clear(batch) // drop the references the events held
	c.evBuf = c.evBuf[:c.evStart]
	return dst
}

// eventChunk is how many events a buffer of them holds at least.
const eventChunk = 64

// event queues e for Events. Events accumulate in a buffer of eventChunk
// or more, and Events hands out the part holding the current batch, so a
// steady stream of small batches allocates once per chunk rather than once
// (and more, growing) per batch.
func (c *ClientCore) event(e Event) {
	if len(c.evBuf) == cap(c.evBuf) {
		batch := c.evBuf[c.evStart:]
		buf := append(make([]Event, 0, max(eventChunk, 2*len(batch))), batch...)
		clear(batch) // the old buffer lives on only in batches handed out
		c.evBuf, c.evStart = buf, 0
	}
	c.evBuf = append(c.evBuf, e)
}

// Stats returns the counters.
func (c *ClientCore) Stats() ClientStats {
	st := c.stats
	cs := c.clock.Status()
	st.Connected, st.Creator, st.Synced = c.connected, c.creator, cs.Synced
	st.RTT = time.Duration(cs.RTT.Mean)
	st.RTTMin = time.Duration(cs.RTT.Min)
	st.Jitter = time.Duration(cs.RTT.Jitter)
	st.Offset = time.Duration(cs.Offset)
	st.ErrorBound = time.Duration(cs.Bound)
	st.ViewDelay = c.ViewDelay()
	st.Pending = len(c.pending)
	return st
}

// --- incoming ---

// Receive applies one frame from the authority, received when the local
// clock (the Clock's source) read recvLocal: time-sync replies are stamped
// with it, so a frame applied later than it arrived does not skew the
// clock. A frame that fails to decode means a broken session: the error is
// returned and the shell should drop the session and Connect again.
func (c *ClientCore) Receive(frame []byte, recvLocal int64) error {
	if c.dec == nil {
		return ErrNotConnected
	}
	c.stats.FramesIn++
	c.stats.BytesIn += uint64(len(frame))
	if err := c.dec.Start(frame); err != nil {
		return err
	}
	for {
		err := c.dec.Next(&c.in)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		c.handle(&c.in, recvLocal)
	}
	c.resimulate()
	return nil
}

func (c *ClientCore) handle(m *wire.Message, recvLocal int64) {
	switch m.Kind {
	case wire.KindWelcome:
		c.welcome(&m.Welcome)
	case wire.KindTimeSyncReply:
		r := m.TimeSyncReply
		// A reply the clock does not expect (duplicate, after reconnect)
		// is refused by it; nothing else to do.
		_ = c.clock.Observe(timesync.Reply{ClientSend: r.ClientSend, ServerRecv: r.ServerRecv, ServerSend: r.ServerSend}, recvLocal)
		c.heard = max(c.heard, r.ServerSend)
	case wire.KindValues:
		for i := range m.Values.Items {
			c.applyValue(&m.Values.Items[i])
		}
	case wire.KindValidStates:
		for _, sc := range m.ValidStates.Items {
			c.applyState(sc)
		}
	case wire.KindCallResult:
		c.result(&m.CallResult)
	case wire.KindError:
		c.event(Event{Kind: EventError, Err: fmt.Errorf("netcode: authority error %d: %s", m.Error.Code, m.Error.Text)})
	case wire.KindWatchDone:
		if _, ok := c.spatialParent(m.WatchDone.Prefix); ok && c.snaps[m.WatchDone.Prefix] == nil {
			c.event(Event{Kind: EventEnter, Path: m.WatchDone.Prefix})
			break
		}
		c.snapshotDone(m.WatchDone.Prefix)
	case wire.KindLeave:
		c.leave(m.Leave.Prefix)
	case wire.KindPing:
	}
}

func (c *ClientCore) welcome(w *wire.Welcome) {
	old := c.creator
	c.creator = w.Creator
	c.heard = max(c.heard, w.ServerTime)
	c.resume = slices.Clone(w.Resume)
	c.connected = true
	c.cfg.MaxChangeAge = w.MaxChangeAge
	c.cfg.MaxRewind = w.MaxRewind
	c.cfg.MaxFutureSkew = w.MaxFutureSkew
	c.event(Event{Kind: EventConnected})
	prefixes := make([]string, 0, len(c.watches))
	for p := range c.watches {
		prefixes = append(prefixes, p)
	}
	slices.Sort(prefixes)
	for _, p := range prefixes {
		c.sendWatch(c.watches[p])
	}
	if old == 0 {
		return
	}
	if old == w.Creator {
		// The session was resumed: every pending call is sent again as it
		// was (id, time, view delay). The authority answers one it ran
		// from its record, runs one it never received, and rejects one
		// too old to run; the prediction stands meanwhile.
		for _, p := range c.pending {
			c.sendCall(p)
		}
		return
	}
	// A new session: calls still young enough are sent again under the new
	// identity (same write time, new id); older ones have failed. One the
	// old session's authority ran before its result was lost runs again:
	// only resuming (above) avoids that.
	now := c.clock.Now()
	oldest := now - int64(c.cfg.MaxChangeAge) + int64(c.cfg.MaxChangeAge)/4
	keep := c.pending[:0]
	for _, p := range c.pending {
		delete(c.byID, p.call.ID)
		if p.call.Time < oldest {
			c.stats.Failed++
			c.event(Event{Kind: EventResult, Call: p.id, Err: ErrCallTooOld})
			c.markWrites(p)
			continue
		}
		c.seq++
		p.call.ID = CallID{Creator: c.creator, Seq: c.seq}
		c.byID[p.call.ID] = p
		// The re-prediction emits its events under the new Creator: they
		// were given to the game already under the old one.
		for _, w := range p.out.Writes {
			if w.Flags&FlagEvent == 0 {
				continue
			}
			if exp, ok := c.delivered[eventKey{w.Path, w.Time.Nanos, w.Time.Creator}]; ok {
				c.delivered[eventKey{w.Path, w.Time.Nanos, c.creator}] = exp
			}
		}
		c.predict(p)
		c.sendCall(p)
		keep = append(keep, p)
	}
	clear(c.pending[len(keep):])
	c.pending = keep
	if len(keep) > 0 {
		c.lastW = max(c.lastW, keep[len(keep)-1].call.Time)
	}
}

// applyValue stores a confirmed value (or re-validates one) and notes the
// change for resimulation.
func (c *ClientCore) applyValue(v *wire.Value) {
	t := Time(v.Time)
	if Flags(v.Flags)&FlagEvent != 0 {
		if v.State == wire.StateValid {
			c.emit(v.Path, slices.Clone(v.Value), t)
		}
		return
	}
	h, had := c.confirmed[v.Path]
	vals := h.vals
	i, found := searchTime(vals, t)
	c.arrivals++
	if found && vals[i].state == State(v.State) && bytes.Equal(vals[i].value, v.Value) && (vals[i].value == nil) == (v.Value == nil) {
		vals[i].arrived = c.arrivals // a duplicate delivery, as a snapshot re-sends what it holds
		return
	}
	cv := cval{t: t, value: cloneValue(v.Value), state: State(v.State), flags: Flags(v.Flags) &^ FlagPredicted, arrived: c.arrivals}
	switch {
	case found:
		vals[i] = cv
	case i == len(vals):
		vals = append(vals, cv) // the usual case: a newer value
	default:
		vals = slices.Insert(vals, i, cv)
	}
	if !had {
		j, _ := c.sortedIndex(v.Path)
		c.sorted = slices.Insert(c.sorted, j, v.Path)
	}
	h.vals = vals
	c.changed(&h, v.Path, t)
	c.confirmed[v.Path] = h
}

// snapshotDone ends the oldest due snapshot of prefix: every confirmed
// value under prefix that the authority still has arrived since its Watch
// was sent (in the snapshot, or later as a change), so a value that did
// not is one the authority no longer has. For each confirmed path covered
// by prefix, let m be the earliest time that arrived since: values at or
// after m that did not arrive are dropped, older ones are history the
// snapshot does not resend and stay; when nothing arrived, the path has no
// valid value left and all its values are dropped. Predictions are apart
// and untouched; pending calls that read a dropped value are re-run.
func (c *ClientCore) snapshotDone(prefix string) {
	sw := c.snaps[prefix]
	if sw == nil {
		return // not awaited: unasked, or beyond maxSnapshotWaits
	}
	start := sw.start
	sw.due--
	// What arrives from here on belongs to the next due snapshot, if any.
	sw.start = c.arrivals
	if sw.due <= 0 {
		delete(c.snaps, prefix)
	}
	c.dropStale(prefix, start)
	if _, watched := c.watches[prefix]; watched && sw.due <= 0 && !c.ready[prefix] {
		c.ready[prefix] = true
		c.event(Event{Kind: EventWatchReady, Path: prefix})
	}
}

// WatchReady reports whether the snapshot of the watch of prefix has
// arrived whole on the current session (see EventWatchReady): until then
// the view of prefix may lack values the authority holds, and a call
// predicted from it may be corrected.
func (c *ClientCore) WatchReady(prefix string) bool { return c.ready[prefix] }

// dropStale drops what the snapshot of prefix that began at arrivals count
// start did not confirm (see snapshotDone). Only paths with something to
// drop are collected and sorted, so a snapshot that confirms everything (a
// first watch) costs one pass over the confirmed paths.
func (c *ClientCore) dropStale(prefix string, start uint64) {
	var paths []string
	if prefix != "" && prefix[len(prefix)-1] != '/' {
		if h, ok := c.confirmed[prefix]; ok && staleIn(h.vals, start) {
			paths = append(paths, prefix)
		}
	} else {
		// The paths under prefix, in order (events in a deterministic one).
		i, _ := c.sortedIndex(prefix)
		for ; i < len(c.sorted) && strings.HasPrefix(c.sorted[i], prefix); i++ {
			if staleIn(c.confirmed[c.sorted[i]].vals, start) {
				paths = append(paths, c.sorted[i])
			}
		}
	}
	for _, p := range paths {
		h := c.confirmed[p]
		vals := h.vals
		// m: the earliest value that arrived since start. Values before
		// it stay; from it on, those that did not arrive go, and when
		// none arrived, all go.
		m := max(0, slices.IndexFunc(vals, func(v cval) bool { return v.arrived > start }))
		var first Time // of the earliest value dropped
		k := m
		for i := m; i < len(vals); i++ {
			switch {
			case vals[i].arrived > start:
				vals[k] = vals[i]
				k++
			case k == i:
				first = vals[i].t
			}
		}
		clear(vals[k:])
		h.vals = vals[:k]
		c.changed(&h, p, first)
		if k == 0 {
			delete(c.confirmed, p)
			if j, ok := c.sortedIndex(p); ok {
				c.sorted = slices.Delete(c.sorted, j, j+1)
			}
		} else {
			c.confirmed[p] = h
		}
	}
}

// staleIn reports whether a path's values hold one to drop at the end of a
// snapshot that began at arrivals count start: one that did not arrive
// since, at or after the earliest that did (or any, if none did).
func staleIn(vals []cval, start uint64) bool {
	arrived := false
	for i := range vals {
		if vals[i].arrived > start {
			arrived = true
		} else if arrived || i == len(vals)-1 {
			return true
		}
	}
	return false
}

func cloneValue(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func (c *ClientCore) applyState(sc wire.StateChange) {
	t := Time(sc.Time)
	h, ok := c.confirmed[sc.Path]
	if !ok {
		return
	}
	i, found := searchTime(h.vals, t)
	if !found || h.vals[i].state == State(sc.State) {
		return
	}
	h.vals[i].state = State(sc.State)
	c.changed(&h, sc.Path, t)
	c.confirmed[sc.Path] = h
}

// changed records a confirmed change of path (whose history is h) at t:
// the game learns of it, and pending calls that read path after t are
// re-predicted.
func (c *ClientCore) changed(h *pathHist, path string, t Time) {
	if d, ok := c.dirty[path]; !ok || t.Nanos < d {
		c.dirty[path] = t.Nanos
	}
	if len(c.pending) > 0 && c.pending[len(c.pending)-1].call.Time > t.Nanos {
		c.earn() // a pushed change that pending predictions may have read
	}
	v, ok := latestValid(h.vals)
	switch {
	case ok && (!h.hasReported || h.reported != v.t):
		h.reported, h.hasReported = v.t, true
		c.event(Event{Kind: EventValue, Path: path, Value: v.value, Time: v.t})
	case !ok && h.hasReported:
		h.reported, h.hasReported = Time{}, false
		c.event(Event{Kind: EventValue, Path: path})
	}
}

// sortedIndex finds path in c.sorted: its index, or where it would go.
func (c *ClientCore) sortedIndex(path string) (int, bool) {
	return slices.BinarySearch(c.sorted, path)
}

// latestValid returns the latest valid value of vals.
func latestValid(vals []cval) (*cval, bool) {
	for i := len(vals) - 1; i >= 0; i-- {
		if vals[i].state == Valid {
			return &vals[i], true
		}
	}
	return nil, false
}

// searchTime finds t in vals (by time): its index, or where it would go.
func searchTime(vals []cval, t Time) (int, bool) {
	// Values mostly arrive newest last: check the end before searching.
	if n := len(vals); n == 0 || vals[n-1].t.Compare(t) < 0 {
		return n, false
	}
	return slices.BinarySearchFunc(vals, t, func(x cval, t Time) int { return x.t.Compare(t) })
}

// result handles the authority's answer to one of this client's calls.
func (c *ClientCore) result(r *wire.CallResult) {
	id := CallID{Creator: r.ID.Creator, Seq: r.ID.Seq}
	p := c.byID[id]
	if p == nil {
		c.rerunResult(id, r)
		return
	}
	delete(c.byID, id)
	if i := slices.Index(c.pending, p); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
	}
	if r.Matched && p.digest != 0 {
		c.expandMatched(p, r)
	}
	wireID := id
	id = p.id // events name the call as the game knows it
	if r.Status != wire.CallOK {
		c.stats.Failed++
		err := fmt.Errorf("netcode: call %q failed: %s", p.call.Name, r.Error)
		if r.Status == wire.CallRejected {
			err = fmt.Errorf("netcode: call %q rejected: %s", p.call.Name, r.Error)
		}
		c.event(Event{Kind: EventResult, Call: id, Err: err})
		if p.out.Err == nil && len(p.out.Writes) > 0 {
			c.stats.Mispredictions++
			c.earn()
			for _, w := range p.out.Writes {
				if w.Flags&FlagEvent == 0 {
					c.correct(p, w.Path, w.Value, nil, false, r)
				}
			}
		}
		c.markWrites(p)
		c.release(p)
		return
	}
	c.stats.Confirmed++
	c.event(Event{Kind: EventResult, Call: id})
	// Compare the prediction with the authoritative outputs, which arrived
	// just before the result.
	auth := map[string][]byte{}
	for _, o := range r.Outputs {
		if h, ok := c.confirmed[o.Path]; ok {
			if i, ok := searchTime(h.vals, Time(o.Time)); ok {
				auth[o.Path] = h.vals[i].value
				continue
			}
		}
		auth[o.Path] = nil // an event output, or not delivered
	}
	mis := p.out.Err != nil
	predicted := map[string]bool{}
	for _, w := range p.out.Writes {
		if w.Flags&FlagEvent != 0 {
			continue
		}
		predicted[w.Path] = true
		a, ok := auth[w.Path]
		if !ok || !bytes.Equal(a, w.Value) || (a == nil) != (w.Value == nil) {
			mis = true
			c.correct(p, w.Path, w.Value, a, ok, r)
		}
	}
	for path, a := range auth {
		if !predicted[path] && a != nil {
			mis = true
			c.correct(p, path, nil, a, true, r)
		}
	}
	if mis {
		c.stats.Mispredictions++
		c.earn()
		c.markWrites(p)
	}
	cc := &confirmedCall{id: p.id, call: p.call, outputs: auth, reads: slices.Clone(r.Reads)}
	c.recent[wireID] = cc
	// Calls are confirmed mostly in their time order: insert from the end.
	i := len(c.recentQ)
	for i > 0 && c.recentQ[i-1].t > cc.call.Time {
		i--
	}
	c.recentQ = slices.Insert(c.recentQ, i, recentRef{t: cc.call.Time, id: wireID, cc: cc})
	c.release(p)
}

// maxFreeCalls bounds the answered calls kept for reuse.
const maxFreeCalls = 16

// newCall returns a zero pcall, reusing one whose result arrived.
func (c *ClientCore) newCall() *pcall {
	n := len(c.freeCalls)
	if n == 0 {
		return &pcall{}
	}
	p := c.freeCalls[n-1]
	c.freeCalls[n-1] = nil
	c.freeCalls = c.freeCalls[:n-1]
	return p
}

// release keeps p, answered and referenced nowhere any more, for reuse.
func (c *ClientCore) release(p *pcall) {
	if len(c.freeCalls) < maxFreeCalls {
		*p = pcall{}
		c.freeCalls = append(c.freeCalls, p)
	}
}

// expandMatched turns a matched result into the full result it stands
// for: the outcome is the prediction p was sent with, so its output values
// are applied as the authority's Values message would have applied them
// (valid, without FlagPredicted; events were emitted when predicted), and
// its outputs and reads fill r, which result then compares with p's
// current prediction as it would a full result.
func (c *ClientCore) expandMatched(p *pcall, r *wire.CallResult) {
	out := &p.sentOut
	outs := make([]wire.ValueRef, 0, len(out.Writes))
	for i := range out.Writes {
		w := &out.Writes[i]
		outs = append(outs, wire.ValueRef{Path: w.Path, Time: wire.Time(w.Time)})
		if w.Flags&FlagEvent == 0 {
			c.applyValue(&wire.Value{Path: w.Path, Time: wire.Time(w.Time), Value: w.Value, State: wire.StateValid, Flags: wire.Flags(w.Flags &^ FlagPredicted)})
		}
	}
	reads := make([]wire.Lock, 0, len(out.Locks))
	for _, l := range out.Locks {
		reads = append(reads, wire.Lock{Path: l.Path, Start: wire.Time(l.Start), End: wire.Time(l.End)})
	}
	r.Outputs, r.Reads = outs, reads
}

// rerunResult handles a new answer to a call already confirmed: the
// authority re-ran it because a late input changed what it read. Each
// output that changed is a correction, explained by the first read that
// now starts at another value.
func (c *ClientCore) rerunResult(id CallID, r *wire.CallResult) {
	cc := c.recent[id]
	if cc == nil || r.Matched {
		// Unknown or already final; or the first outcome again (an
		// authority matches only a call's first and only version).
		return
	}
	var cause *wire.Lock
	for i := range r.Reads {
		nr := &r.Reads[i]
		found := false
		for _, or := range cc.reads {
			if or.Path == nr.Path && or.End.Nanos == nr.End.Nanos {
				found = true
				if or.Start != nr.Start {
					cause = nr
				}
				break
			}
		}
		if cause != nil {
			break
		}
		if !found {
			cause = nr
			break
		}
	}
	outputs := map[string][]byte{}
	if r.Status == wire.CallOK {
		for _, o := range r.Outputs {
			if h, ok := c.confirmed[o.Path]; ok {
				if i, ok := searchTime(h.vals, Time(o.Time)); ok {
					outputs[o.Path] = h.vals[i].value
					continue
				}
			}
			outputs[o.Path] = nil
		}
	}
	paths := make([]string, 0, len(outputs)+len(cc.outputs))
	for p := range cc.outputs {
		paths = append(paths, p)
	}
	for p := range outputs {
		if _, ok := cc.outputs[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, path := range paths {
		old, nw := cc.outputs[path], outputs[path]
		if bytes.Equal(old, nw) && (old == nil) == (nw == nil) {
			continue
		}
		c.stats.Corrections++
		corr := &Correction{Call: cc.id, Path: path, Predicted: old, Authoritative: nw}
		if cause != nil {
			corr.CausePath, corr.Cause, corr.CauseKnown = cause.Path, Time(cause.Start), true
		}
		c.event(Event{Kind: EventCorrection, Path: path, Value: nw, Call: cc.id, Correction: corr})
	}
	cc.outputs, cc.reads = outputs, slices.Clone(r.Reads)
	if r.Status != wire.CallOK {
		c.event(Event{Kind: EventResult, Call: cc.id, Err: fmt.Errorf("netcode: call %q failed when re-run: %s", cc.call.Name, r.Error)})
	}
}

func (c *ClientCore) earn() {
	c.credits = min(c.credits+c.opts.Budget.PerCorrection, c.opts.Budget.Max)
}

// markWrites notes that p's predicted writes are gone from the view.
func (c *ClientCore) markWrites(p *pcall) {
	for _, w := range p.out.Writes {
		if d, ok := c.dirty[w.Path]; !ok || p.call.Time < d {
			c.dirty[w.Path] = p.call.Time
		}
	}
}

// correct emits a correction event for path, explaining it with the first
// read where the authority saw another value than the prediction.
func (c *ClientCore) correct(p *pcall, path string, predicted, auth []byte, _ bool, r *wire.CallResult) {
	c.stats.Corrections++
	corr := &Correction{Call: p.id, Path: path, Predicted: predicted, Authoritative: auth}
	for _, ar := range r.Reads {
		for _, pl := range p.out.Locks {
			if pl.Path == ar.Path && pl.End.Nanos == ar.End.Nanos && pl.Start != Time(ar.Start) {
				corr.CausePath, corr.Cause, corr.CauseKnown = ar.Path, Time(ar.Start), true
				break
			}
		}
		if corr.CauseKnown {
			break
		}
	}
	c.event(Event{Kind: EventCorrection, Path: path, Value: auth, Call: p.id, Correction: corr})
}

// resimulate re-runs, in time order, every pending call that read a path
// changed at or before its read, within the budget; a re-run whose writes
// change marks those paths in turn, cascading to later calls.
func (c *ClientCore) resimulate() {
	if len(c.dirty) == 0 {
		return
	}
	for _, p := range c.pending {
		if !c.readsDirty(p) {
			continue
		}
		if c.credits < 1 {
			p.stale = true
			c.stats.BudgetSkips++
			continue
		}
		c.credits--
		old := p.out
		c.predict(p)
		p.stale = false
		c.stats.Reruns++
		if !sameWrites(old.Writes, p.out.Writes) || (old.Err == nil) != (p.out.Err == nil) {
			for _, ws := range [][]PathValue{old.Writes, p.out.Writes} {
				for _, w := range ws {
					if d, ok := c.dirty[w.Path]; !ok || p.call.Time < d {
						c.dirty[w.Path] = p.call.Time
					}
				}
			}
		}
	}
	clear(c.dirty)
}

func (c *ClientCore) readsDirty(p *pcall) bool {
	for _, l := range p.out.Locks {
		if d, ok := c.dirty[l.Path]; ok && d < l.End.Nanos {
			return true
		}
	}
	return false
}

func sameWrites(a, b []PathValue) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || !bytes.Equal(a[i].Value, b[i].Value) || (a[i].Value == nil) != (b[i].Value == nil) {
			return false
		}
	}
	return true
}

// Tick does the periodic work at the clock's now: time-sync requests on
// the clock's schedule, call timeouts, trimming history and event memory,
// and the byte-rate averages. Call it once per frame (Update does).
func (c *ClientCore) Tick() {
	local := c.clock.Local()
	// A request rides in the frame about to leave when the game queued
	// messages this frame (NextSync: every timesync MaxInterval once
	// stable); when nothing else would be sent it goes alone, and only at
	// IdleSync (every IdleInterval once stable), so a quiet client costs
	// the authority few packets. Never more requests in flight than the
	// clock remembers: on a link whose round trip spans many frames, every
	// reply would otherwise answer a forgotten request and the clock would
	// never sync.
	due := c.clock.IdleSync()
	if len(c.cur) > 1 {
		due = c.clock.NextSync()
	}
	if c.enc != nil && local >= due && local-c.lastSyncRequested >= int64(5*time.Millisecond) &&
		c.clock.CanRequest() {
		c.syncNow()
	}
	now := c.clock.Now()
	if !c.clock.Synced() {
		return
	}
	timeout := c.callTimeout()
	for len(c.pending) > 0 && c.pending[0].call.Time < now-int64(timeout) {
		p := c.pending[0]
		c.pending = c.pending[1:]
		delete(c.byID, p.call.ID)
		c.stats.Failed++
		c.event(Event{Kind: EventResult, Call: p.id, Err: ErrCallTimeout})
		c.markWrites(p)
	}
	c.resimulate()
	// The history, the recent calls and the delivered events are swept
	// at most every sweepEvery: each sweep walks them all, and a frame's
	// worth of growth is not worth a walk per frame.
	if now-c.sweptAt >= int64(sweepEvery) || now < c.sweptAt {
		c.sweptAt = now
		c.sweep(now)
	}
	if now-c.rateAt >= int64(time.Second) {
		if c.rateAt != 0 {
			secs := float64(now-c.rateAt) / float64(time.Second)
			c.stats.BytesInPerSec = float64(c.stats.BytesIn-c.lastIn) / secs
			c.stats.BytesOutPerSec = float64(c.stats.BytesOut-c.lastOut) / secs
		}
		c.rateAt, c.lastIn, c.lastOut = now, c.stats.BytesIn, c.stats.BytesOut
	}
}

// sweepEvery is how often Tick trims the history and forgets old calls
// and delivered events.
const sweepEvery = 100 * time.Millisecond

// sweep trims the confirmed history and forgets the calls and delivered
// events too old to matter, as of now.
func (c *ClientCore) sweep(now int64) {
	keep := c.opts.History
	if keep <= 0 {
		keep = c.cfg.MaxRewind
	}
	// A value's state can change until the authority makes it final
	// (MaxChangeAge + FinalitySkew after its time), and the change reaches
	// this client as late as the link holds it back, without bound. The
	// stream is ordered, so every delivery the authority sent before the
	// latest time it stamped on a message applied here (heard) has been
	// applied; it batches deliveries for a send interval or so, hence the
	// slack. Only values older than that horizon are final for this client,
	// so only there may the latest valid value hide older ones.
	final := min(now, c.heard-4*int64(c.opts.SendInterval)) - int64(c.cfg.MaxChangeAge) - int64(c.cfg.FinalitySkew)
	cut := final - int64(keep)
	for path, h := range c.confirmed {
		vals := h.vals
		if len(vals) < 2 || vals[1].t.Nanos >= cut {
			continue // nothing to trim: the first value is the one kept
		}
		k := 0
		// Keep the latest valid value before cut and everything after.
		for i := 0; i < len(vals) && vals[i].t.Nanos < cut; i++ {
			if vals[i].state == Valid {
				k = i
			}
		}
		if k > 0 {
			h.vals = slices.Delete(vals, 0, k)
			c.confirmed[path] = h
		}
	}
	// recentQ holds every entry of recent by call time (and entries since
	// replaced in it, skipped here).
	old := now - 2*int64(c.cfg.MaxChangeAge) - int64(time.Second)
	n := 0
	for n < len(c.recentQ) && c.recentQ[n].t < old {
		if r := c.recentQ[n]; c.recent[r.id] == r.cc {
			delete(c.recent, r.id)
		}
		n++
	}
	c.recentQ = slices.Delete(c.recentQ, 0, n)
	for k, exp := range c.delivered {
		if exp < now {
			delete(c.delivered, k)
		}
	}
}

// Predicted reports whether path currently shows a prediction (a pending
// call's write newer than every confirmed value).
func (c *ClientCore) Predicted(path string) bool {
	v, ok := c.Latest(path, Time{Nanos: 1<<63 - 1})
	return ok && v.Flags&FlagPredicted != 0
}

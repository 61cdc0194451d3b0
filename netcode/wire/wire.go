package wire

import (
	"errors"
	"time"
)

// ProtocolVersion is the version of the frame format and of the message
// set. It is the first byte of every frame and is carried in Hello. It
// changes only when an old peer could misread a new frame; appending a
// message kind or a table field does not change it.
const ProtocolVersion = 1

// Kind identifies a message within a frame. Kinds are append-only: a value,
// once assigned, is never reused or renumbered.
type Kind uint8

// Message kinds. Zero is never a valid kind.
const (
	KindHello           Kind = 1
	KindWelcome         Kind = 2
	KindTimeSyncRequest Kind = 3
	KindTimeSyncReply   Kind = 4
	KindWatch           Kind = 5
	KindUnwatch         Kind = 6
	KindValues          Kind = 7
	KindValidStates     Kind = 8
	KindCall            Kind = 9
	KindCallResult      Kind = 10
	KindWrite           Kind = 11
	KindPathDefs        Kind = 12
	KindError           Kind = 13
	KindPing            Kind = 14
	KindWatchDone       Kind = 15
	KindSync            Kind = 16
	KindLeave           Kind = 17

	maxKind = KindLeave
)

var kindNames = [...]string{
	KindHello:           "Hello",
	KindWelcome:         "Welcome",
	KindTimeSyncRequest: "TimeSyncRequest",
	KindTimeSyncReply:   "TimeSyncReply",
	KindWatch:           "Watch",
	KindUnwatch:         "Unwatch",
	KindValues:          "Values",
	KindValidStates:     "ValidStates",
	KindCall:            "Call",
	KindCallResult:      "CallResult",
	KindWrite:           "Write",
	KindPathDefs:        "PathDefs",
	KindError:           "Error",
	KindPing:            "Ping",
	KindWatchDone:       "WatchDone",
	KindSync:            "Sync",
	KindLeave:           "Leave",
}

func (k Kind) String() string {
	if k >= 1 && k <= maxKind {
		return kindNames[k]
	}
	return "Kind(" + itoa(uint64(k)) + ")"
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// Errors. Every error returned by this package wraps one of these, so callers
// match them with errors.Is; the wrapping text names the field at fault.
var (
	// ErrTruncated: the input ends inside a header, varint, table or vector.
	ErrTruncated = errors.New("wire: truncated input")
	// ErrTooLarge: a frame, message, field, batch or dictionary exceeds its
	// limit (see Limits).
	ErrTooLarge = errors.New("wire: too large")
	// ErrUnknownKind: a message kind this version does not know.
	ErrUnknownKind = errors.New("wire: unknown message kind")
	// ErrBadOffset: a FlatBuffers offset, vtable or vector points outside its
	// message or is otherwise inconsistent.
	ErrBadOffset = errors.New("wire: bad offset")
	// ErrUnknownPathID: a path id that the peer never defined.
	ErrUnknownPathID = errors.New("wire: unknown path id")
	// ErrVersion: a frame of another protocol version.
	ErrVersion = errors.New("wire: protocol version mismatch")
	// ErrMalformed: a structurally sound message whose content breaks a rule
	// (a reserved bit set, an out-of-range enum, a count that does not match,
	// trailing bytes).
	ErrMalformed = errors.New("wire: malformed message")
	// ErrInvalid: the encoder was handed a message it cannot encode (an empty
	// path, an out-of-range state, ...).
	ErrInvalid = errors.New("wire: invalid message")
)

// Time is a value's time stamp, ordered by Nanos, then Version, then
// Creator. Nanos is on the synced clock. The zero Time means "before
// everything".
type Time struct {
	Nanos   int64
	Version uint32
	Creator uint32
}

// timeBefore reports whether t orders strictly before u.
func timeBefore(t, u Time) bool {
	if t.Nanos != u.Nanos {
		return t.Nanos < u.Nanos
	}
	if t.Version != u.Version {
		return t.Version < u.Version
	}
	return t.Creator < u.Creator
}

// State is the validity state of a value.
type State uint8

// States. The numbering is part of the protocol and append-only.
const (
	StateValid   State = 0
	StateInvalid State = 1
	StatePending State = 2

	maxState = StatePending
)

// Flags qualify a value. Bits are append-only; unknown bits are carried
// through unchanged.
type Flags uint8

// Flag bits.
const (
	// FlagEvent: the value is delivered but not kept in history.
	FlagEvent Flags = 1 << 0
	// FlagPredicted: a client-local prediction not yet confirmed.
	FlagPredicted Flags = 1 << 1
)

// Lock is a read lock: when its value was written, the value of Path
// written at Start was the latest over the open interval (Start, End). A
// zero Start means no value of Path existed before End.
type Lock struct {
	Path       string
	Start, End Time
}

// Value is one path value. A nil Value.Value is a deletion; an empty non-nil
// one is an empty value, and the two round-trip distinctly.
type Value struct {
	Path  string
	Time  Time
	Value []byte
	State State
	Flags Flags
	// Locks are sent only between authorities; clients never validate.
	Locks []Lock
}

// StateChange reports that the value of Path at Time changed state.
type StateChange struct {
	Path  string
	Time  Time
	State State
}

// CallID names a call: the caller's creator id and its sequence number.
type CallID struct {
	Creator uint32
	Seq     uint64
}

// ValueRef names one stored value.
type ValueRef struct {
	Path string
	Time Time
}

// WatchMode says what a watch delivers.
type WatchMode uint8

// Watch modes, append-only.
const (
	// WatchLatest delivers the latest value of each path.
	WatchLatest WatchMode = 0
	// WatchHistory delivers every value within Window before now.
	WatchHistory WatchMode = 1

	maxWatchMode = WatchHistory
)

// CallStatus is the outcome of a call.
type CallStatus uint8

// Call statuses, append-only.
const (
	// CallOK: the function ran and its writes were stored.
	CallOK CallStatus = 0
	// CallFailed: the function returned an error; nothing was stored.
	CallFailed CallStatus = 1
	// CallRejected: the call was refused before running (unknown function,
	// time outside the accepted window, limits).
	CallRejected CallStatus = 2
)

// ErrorCode classifies an Error message. Codes are append-only.
type ErrorCode uint16

// Hello opens a connection (client or authority to authority).
type Hello struct {
	Version uint16 // ProtocolVersion of the sender
	Token   []byte // authentication token
	Nonce   []byte // client nonce
	// Resume is the Welcome.Resume token of an earlier session that this
	// one continues, so the authority gives it the same creator id and
	// answers calls it already ran from their records. Empty for a new
	// session, and in a Hello from a peer that predates the field.
	Resume []byte
}

// Welcome answers Hello.
type Welcome struct {
	Creator       uint32        // id assigned to this connection
	ServerTime    int64         // authority clock, ns
	MaxChangeAge  time.Duration // writes older than this are refused
	MaxRewind     time.Duration // past-time reads are clamped to this
	MaxFutureSkew time.Duration // writes further ahead are refused
	// Resume is an opaque token the peer keeps and sends back in the
	// Hello of its next session to resume this one. Empty when the
	// authority does not resume sessions, or predates the field.
	Resume []byte
}

// TimeSyncRequest starts one clock sample; times are ns on the sender's clock.
type TimeSyncRequest struct {
	ClientSend int64
}

// TimeSyncReply answers a TimeSyncRequest with the authority's receive and
// send times (ns on its clock) and the request's ClientSend echoed.
type TimeSyncReply struct {
	ClientSend, ServerRecv, ServerSend int64
}

// Watch subscribes to every path under the given prefixes. The authority
// answers each prefix at once with a snapshot of its current valid values,
// then sends every change.
type Watch struct {
	Prefixes []string
	Mode     WatchMode
	Window   time.Duration // history depth for WatchHistory
	// Done asks for a WatchDone after each prefix's snapshot, so the
	// watcher knows where the snapshot ends and can drop what it holds
	// that the snapshot no longer has (deleted paths, values invalidated
	// while it was away). An authority that predates the field ignores
	// it and sends no WatchDone.
	Done bool
	// Area, when its Kind is set, makes the watch spatial: of the
	// entities under the (one) prefix, only those inside the area are
	// sent, each with a snapshot of its paths and a WatchDone for it when
	// it enters and a Leave when it leaves. An authority that predates
	// the field watches the whole prefix.
	Area Area
}

// AreaKind says what a spatial watch covers.
type AreaKind uint8

// Area kinds, append-only.
const (
	AreaNone   AreaKind = 0 // not spatial
	AreaNear   AreaKind = 1 // within Radius of Entity's position, following it
	AreaRegion AreaKind = 2 // inside the box (X0, Y0) to (X1, Y1)
	maxArea             = AreaRegion
)

// Area is the part of space a spatial watch covers, in the units of the
// positions the authority indexes (see netcode.Registry.Spatial).
type Area struct {
	Kind AreaKind
	// Entity is the entity whose position is the centre of an AreaNear
	// watch ("players/42/": a prefix one segment below the watched one).
	Entity         string
	Radius         float64
	X0, Y0, X1, Y1 float64
}

// Leave tells a spatial watcher that the entity Prefix ("players/42/")
// left its area: nothing more of it comes until it enters again.
type Leave struct {
	Prefix string
}

// Unwatch ends watches on the given prefixes.
type Unwatch struct {
	Prefixes []string
}

// Values is a batch of values, authority to watcher.
type Values struct {
	Items []Value
}

// ValidStates is a batch of state changes of values already sent.
type ValidStates struct {
	Items []StateChange
}

// Call asks the authority to run a registered function.
type Call struct {
	ID        CallID
	Name      string
	Args      []byte
	Time      Time          // write time W
	ViewDelay time.Duration // past-time reads happen at W - ViewDelay
	// Runner, between authorities (a call record replicated, caught up or
	// handed over), is the node id of the authority that runs the call
	// and its re-runs; 0 means the sender. Clients leave it 0.
	Runner uint8
	// Relay, between authorities, marks a call the node with that id
	// relays for its client, for the receiver to run (or forward to an
	// owner of its shard key): the outcome goes back to the relay once
	// confirmed. 0: a record (or a client's call). Hops counts how often
	// a relayed call was forwarded, so maps that disagree for a moment
	// cannot bounce it for ever.
	Relay, Hops uint8
	// Digest, from a client that predicted the call, is the digest of its
	// prediction (netcode.Outcome.Digest); 0 means none. An authority
	// whose run has the same digest, with every output valid, may answer
	// with a matched result (CallResult.Matched) instead of the outputs
	// and reads. Absent (0) from peers that predate the field.
	Digest uint64
}

// CallResult answers a Call.
type CallResult struct {
	ID      CallID
	Status  CallStatus
	Error   string     // error text when Status != CallOK
	Outputs []ValueRef // values the call wrote
	// Reads are the read locks of the authority's run that produced
	// Outputs: for each path it read, the Start time of the value it saw
	// and the End time it read at (Start < End). A client whose prediction
	// read another value names from them the writer and time of the value
	// that caused a misprediction. Empty for failed and rejected calls, and
	// in results from peers that predate the field.
	Reads []Lock
	// Matched says the outcome is the one the call's Digest named, its
	// outputs valid: the caller holds the outputs and reads already (its
	// prediction), so they do not travel and no Values message of the
	// outputs precedes the result. Only with Status CallOK, and with no
	// Outputs and no Reads. Sent only to a caller that gave a Digest.
	Matched bool
}

// Write carries raw values with their locks (authority to authority).
type Write struct {
	Items []Value
}

// Error is a protocol error report, sent before a peer closes the session.
// It is a message, not a Go error.
type Error struct {
	Code ErrorCode
	Text string
}

// WatchDone marks the end of the snapshot that a Watch with Done set asked
// for on Prefix (one of the Watch's prefixes, as sent): every value of the
// snapshot came before it, and every later value of Prefix is a change.
// Refused prefixes get an Error instead.
type WatchDone struct {
	Prefix string
}

// Ping keeps a session alive and can be echoed to measure round trips.
type Ping struct {
	Seq uint64
}

// Sync flows between authorities on a replication session (never to or
// from a game client). The authority that opened the session sends its
// Closed time (no value it sends later is stamped before it, so a value
// pending on one of its values resolves once Closed passes) and a Seq the
// other acknowledges; the other answers with Ack, the highest Seq it has
// processed: everything sent before that Sync has been applied there.
type Sync struct {
	Closed int64 // ns on the synced clock
	Seq    uint64
	Ack    uint64
	// HandedOver lists the node ids of failed authorities whose values
	// and call records the sender has forwarded on this session before
	// this message, so the receiver may take over their calls (at most
	// 256 ids; the decoded slice aliases the frame).
	HandedOver []byte
	// TakenOver lists the node ids whose takeover the sender completed
	// while it last held them failed (the calls they ran went to a new
	// runner): a receiver that still counts such a node as its calls'
	// runner completes the takeover too, and a receiver that finds its
	// own id there, having been without a quorum, holds stale state (at
	// most 256 ids; the decoded slice aliases the frame).
	TakenOver []byte
}

// Message is any one message. Kind selects which field is meaningful; the
// others are ignored by the encoder and left as they were by the decoder, so
// one Message can be reused for every decode, keeping its slices' capacity.
// PathDefs never appear here: the codec sends and applies them itself.
type Message struct {
	Kind Kind

	Hello           Hello
	Welcome         Welcome
	TimeSyncRequest TimeSyncRequest
	TimeSyncReply   TimeSyncReply
	Watch           Watch
	Unwatch         Unwatch
	Values          Values
	ValidStates     ValidStates
	Call            Call
	CallResult      CallResult
	Write           Write
	Error           Error
	Ping            Ping
	WatchDone       WatchDone
	Sync            Sync
	Leave           Leave

	// locks is the decoder's reusable backing store for Value.Locks.
	locks []Lock
}

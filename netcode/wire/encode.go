package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/rewindnet/rewind/netcode/wire/fb"
)

// Encoder builds the frames of one direction of a connection. It owns that
// direction's path dictionary, so the frames it returns must all reach the
// peer's Decoder, in order; after a lost frame both sides must be replaced
// (a new connection starts a new Encoder/Decoder pair). An Encoder is not
// safe for concurrent use.
type Encoder struct {
	lim  Limits
	dict encDict
	b    *flatbuffers.Builder

	// Scratch reused across calls.
	rec        []byte
	offs       []flatbuffers.UOffsetT
	frameStart int
	frameMsgs  int // messages in the open frame, path definitions included
}

// NewEncoder returns an Encoder enforcing lim (zero fields take defaults).
func NewEncoder(lim Limits) (*Encoder, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	lim = lim.withDefaults()
	return &Encoder{lim: lim, dict: newEncDict(lim.MaxPaths), b: flatbuffers.NewBuilder(1024)}, nil
}

// BeginFrame appends a frame header to dst and starts a frame there: the
// Append methods that follow add messages to it and keep it within
// Limits.MaxFrameBytes and Limits.MaxMessages (the PathDefs messages the
// encoder adds count, as the decoder counts them). Pass dst[:0] (or any
// buffer whose tail is the frame) and send the result after the last
// Append. An Append that fails with ErrTooLarge on a frame holding other
// messages may fit in a new one.
//
// Between frames the encoder keeps at most keepScratch bytes of scratch
// buffers, so one that once encoded a large batch does not hold buffers
// of that size for as long as it lives (a server holds one per session).
func (e *Encoder) BeginFrame(dst []byte) []byte {
	e.frameStart = len(dst)
	e.frameMsgs = 0
	if cap(e.rec) > keepScratch {
		e.rec = nil
	}
	if len(e.b.Bytes) > keepScratch { // Bytes is kept at its capacity
		e.b = flatbuffers.NewBuilder(1024)
	}
	return append(dst, ProtocolVersion)
}

// keepScratch is the most scratch an Encoder keeps between frames, bytes.
const keepScratch = 64 << 10

// Append appends the message m.Kind to the frame in dst. On error dst is
// returned unchanged and the dictionary is as before the call, so the frame
// built so far is still valid.
func (e *Encoder) Append(dst []byte, m *Message) ([]byte, error) {
	switch m.Kind {
	case KindHello:
		return e.AppendHello(dst, &m.Hello)
	case KindWelcome:
		return e.AppendWelcome(dst, &m.Welcome)
	case KindTimeSyncRequest:
		return e.AppendTimeSyncRequest(dst, &m.TimeSyncRequest)
	case KindTimeSyncReply:
		return e.AppendTimeSyncReply(dst, &m.TimeSyncReply)
	case KindWatch:
		return e.AppendWatch(dst, &m.Watch)
	case KindUnwatch:
		return e.AppendUnwatch(dst, &m.Unwatch)
	case KindValues:
		return e.AppendValues(dst, &m.Values)
	case KindValidStates:
		return e.AppendValidStates(dst, &m.ValidStates)
	case KindCall:
		return e.AppendCall(dst, &m.Call)
	case KindCallResult:
		return e.AppendCallResult(dst, &m.CallResult)
	case KindWrite:
		return e.AppendWrite(dst, &m.Write)
	case KindError:
		return e.AppendError(dst, &m.Error)
	case KindPing:
		return e.AppendPing(dst, &m.Ping)
	case KindWatchDone:
		return e.AppendWatchDone(dst, &m.WatchDone)
	case KindSync:
		return e.AppendSync(dst, &m.Sync)
	case KindLeave:
		return e.AppendLeave(dst, &m.Leave)
	}
	return dst, fmt.Errorf("%w: cannot encode %v", ErrUnknownKind, m.Kind)
}

// finish appends the finished builder contents as a message of kind k.
func (e *Encoder) finish(dst []byte, k Kind, root flatbuffers.UOffsetT) ([]byte, error) {
	if e.frameMsgs >= e.lim.MaxMessages {
		return dst, fmt.Errorf("%w: a frame holds at most %d messages", ErrTooLarge, e.lim.MaxMessages)
	}
	e.b.Finish(root)
	body := e.b.FinishedBytes()
	n := len(dst)
	dst = append(dst, byte(k))
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	dst = append(dst, body...)
	if len(dst)-e.frameStart > e.lim.MaxFrameBytes {
		return dst[:n], fmt.Errorf("%w: %v message of %d bytes would make the frame exceed %d bytes", ErrTooLarge, k, len(body), e.lim.MaxFrameBytes)
	}
	e.frameMsgs++
	return dst, nil
}

func (e *Encoder) checkBytes(what string, b []byte, max int) error {
	if len(b) > max {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, what, len(b), max)
	}
	return nil
}

// checkPath checks a path or prefix: non-empty, at most MaxPathBytes,
// valid UTF-8 (FlatBuffers strings are UTF-8, and so are paths).
func (e *Encoder) checkPath(what, p string) error {
	if p == "" || len(p) > e.lim.MaxPathBytes {
		return e.pathError(what, p)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalid, what, p)
	}
	return nil
}

// pathError is checkPath's cold half, apart so that checkPath inlines.
func (e *Encoder) pathError(what, p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(p) > e.lim.MaxPathBytes {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, what, len(p), e.lim.MaxPathBytes)
	}
	return nil
}

// checkText checks a text field (a name or an error text): at most max
// bytes of valid UTF-8.
func (e *Encoder) checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalid, what, s)
	}
	return nil
}

// byteVector adds b as a [ubyte], or returns 0 for nil so the field is
// left out (a nil slice round-trips as nil, an empty one as empty).
func (e *Encoder) byteVector(b []byte) flatbuffers.UOffsetT {
	if b == nil {
		return 0
	}
	return e.b.CreateByteVector(b)
}

// AppendHello appends a Hello.
func (e *Encoder) AppendHello(dst []byte, m *Hello) ([]byte, error) {
	if err := e.checkBytes("Hello token", m.Token, e.lim.MaxTextBytes); err != nil {
		return dst, err
	}
	if err := e.checkBytes("Hello nonce", m.Nonce, e.lim.MaxTextBytes); err != nil {
		return dst, err
	}
	if err := e.checkBytes("Hello resume token", m.Resume, e.lim.MaxTextBytes); err != nil {
		return dst, err
	}
	b := e.b
	b.Reset()
	tok, non, res := e.byteVector(m.Token), e.byteVector(m.Nonce), e.byteVector(m.Resume)
	fb.HelloStart(b)
	fb.HelloAddVersion(b, m.Version)
	if tok != 0 {
		fb.HelloAddToken(b, tok)
	}
	if non != 0 {
		fb.HelloAddNonce(b, non)
	}
	if res != 0 {
		fb.HelloAddResume(b, res)
	}
	return e.finish(dst, KindHello, fb.HelloEnd(b))
}

// AppendWelcome appends a Welcome.
func (e *Encoder) AppendWelcome(dst []byte, m *Welcome) ([]byte, error) {
	if err := e.checkBytes("Welcome resume token", m.Resume, e.lim.MaxTextBytes); err != nil {
		return dst, err
	}
	b := e.b
	b.Reset()
	res := e.byteVector(m.Resume)
	fb.WelcomeStart(b)
	fb.WelcomeAddCreator(b, m.Creator)
	fb.WelcomeAddServerTimeNs(b, m.ServerTime)
	fb.WelcomeAddMaxChangeAgeNs(b, int64(m.MaxChangeAge))
	fb.WelcomeAddMaxRewindNs(b, int64(m.MaxRewind))
	fb.WelcomeAddMaxFutureSkewNs(b, int64(m.MaxFutureSkew))
	if res != 0 {
		fb.WelcomeAddResume(b, res)
	}
	return e.finish(dst, KindWelcome, fb.WelcomeEnd(b))
}

// AppendTimeSyncRequest appends a TimeSyncRequest.
func (e *Encoder) AppendTimeSyncRequest(dst []byte, m *TimeSyncRequest) ([]byte, error) {
	b := e.b
	b.Reset()
	fb.TimeSyncRequestStart(b)
	fb.TimeSyncRequestAddClientSendNs(b, m.ClientSend)
	return e.finish(dst, KindTimeSyncRequest, fb.TimeSyncRequestEnd(b))
}

// AppendTimeSyncReply appends a TimeSyncReply.
func (e *Encoder) AppendTimeSyncReply(dst []byte, m *TimeSyncReply) ([]byte, error) {
	b := e.b
	b.Reset()
	fb.TimeSyncReplyStart(b)
	fb.TimeSyncReplyAddClientSendNs(b, m.ClientSend)
	fb.TimeSyncReplyAddServerRecvNs(b, m.ServerRecv)
	fb.TimeSyncReplyAddServerSendNs(b, m.ServerSend)
	return e.finish(dst, KindTimeSyncReply, fb.TimeSyncReplyEnd(b))
}

// prefixes adds a vector of prefixes after checking them.
func (e *Encoder) prefixes(what string, ps []string) (flatbuffers.UOffsetT, error) {
	if len(ps) > e.lim.MaxPrefixes {
		return 0, fmt.Errorf("%w: %s of %d prefixes, limit %d", ErrTooLarge, what, len(ps), e.lim.MaxPrefixes)
	}
	if ps == nil {
		return 0, nil
	}
	e.offs = e.offs[:0]
	for _, p := range ps {
		if err := e.checkPath(what+" prefix", p); err != nil {
			return 0, err
		}
		e.offs = append(e.offs, e.b.CreateString(p))
	}
	return e.vectorOfOffsets(), nil
}

func (e *Encoder) vectorOfOffsets() flatbuffers.UOffsetT {
	e.b.StartVector(4, len(e.offs), 4)
	for i := len(e.offs) - 1; i >= 0; i-- {
		e.b.PrependUOffsetT(e.offs[i])
	}
	return e.b.EndVector(len(e.offs))
}

// AppendWatch appends a Watch.
func (e *Encoder) AppendWatch(dst []byte, m *Watch) ([]byte, error) {
	if m.Mode > maxWatchMode {
		return dst, fmt.Errorf("%w: watch mode %d", ErrInvalid, m.Mode)
	}
	if err := checkArea(&m.Area, len(m.Prefixes)); err != nil {
		return dst, err
	}
	e.b.Reset()
	ps, err := e.prefixes("Watch", m.Prefixes)
	if err != nil {
		return dst, err
	}
	b := e.b
	var ent flatbuffers.UOffsetT
	if m.Area.Kind == AreaNear {
		if err := e.checkPath("Watch area entity", m.Area.Entity); err != nil {
			return dst, err
		}
		ent = b.CreateString(m.Area.Entity)
	}
	fb.WatchStart(b)
	if ps != 0 {
		fb.WatchAddPrefixes(b, ps)
	}
	fb.WatchAddMode(b, byte(m.Mode))
	fb.WatchAddWindowNs(b, int64(m.Window))
	if m.Done {
		fb.WatchAddDone(b, true)
	}
	switch m.Area.Kind {
	case AreaNear:
		fb.WatchAddArea(b, byte(AreaNear))
		fb.WatchAddEntity(b, ent)
		fb.WatchAddRadius(b, m.Area.Radius)
	case AreaRegion:
		fb.WatchAddArea(b, byte(AreaRegion))
		fb.WatchAddX0(b, m.Area.X0)
		fb.WatchAddY0(b, m.Area.Y0)
		fb.WatchAddX1(b, m.Area.X1)
		fb.WatchAddY1(b, m.Area.Y1)
	}
	return e.finish(dst, KindWatch, fb.WatchEnd(b))
}

// AppendUnwatch appends an Unwatch.
func (e *Encoder) AppendUnwatch(dst []byte, m *Unwatch) ([]byte, error) {
	e.b.Reset()
	ps, err := e.prefixes("Unwatch", m.Prefixes)
	if err != nil {
		return dst, err
	}
	fb.UnwatchStart(e.b)
	if ps != 0 {
		fb.UnwatchAddPrefixes(e.b, ps)
	}
	return e.finish(dst, KindUnwatch, fb.UnwatchEnd(e.b))
}

// AppendCall appends a Call.
func (e *Encoder) AppendCall(dst []byte, m *Call) ([]byte, error) {
	if err := e.checkText("call name", m.Name, e.lim.MaxTextBytes); err != nil {
		return dst, err
	}
	if err := e.checkBytes("call args", m.Args, e.lim.MaxValueBytes); err != nil {
		return dst, err
	}
	b := e.b
	b.Reset()
	name := b.CreateString(m.Name)
	args := e.byteVector(m.Args)
	fb.CallStart(b)
	fb.CallAddId(b, fb.CreateCallID(b, m.ID.Creator, m.ID.Seq))
	fb.CallAddName(b, name)
	if args != 0 {
		fb.CallAddArgs(b, args)
	}
	fb.CallAddTime(b, fb.CreateTime(b, m.Time.Nanos, m.Time.Version, m.Time.Creator))
	fb.CallAddViewDelayNs(b, int64(m.ViewDelay))
	if m.Runner != 0 {
		fb.CallAddRunner(b, m.Runner)
	}
	if m.Relay != 0 {
		fb.CallAddRelay(b, m.Relay)
		fb.CallAddHops(b, m.Hops)
	}
	if m.Digest != 0 {
		fb.CallAddDigest(b, m.Digest)
	}
	return e.finish(dst, KindCall, fb.CallEnd(b))
}

// AppendCallResult appends a CallResult. Output and read paths travel in
// full: a result names few values, and keeping them out of the dictionary
// keeps it for the paths that repeat (and keeps a CallResult independent of
// the dictionary's state). At most Limits.MaxLocks reads, each with
// Start < End.
func (e *Encoder) AppendCallResult(dst []byte, m *CallResult) ([]byte, error) {
	if err := e.checkText("call error text", m.Error, e.lim.MaxTextBytes); err != nil {
		return dst, err
	}
	if len(m.Outputs) > e.lim.MaxBatch {
		return dst, fmt.Errorf("%w: %d call outputs, limit %d", ErrTooLarge, len(m.Outputs), e.lim.MaxBatch)
	}
	if len(m.Reads) > e.lim.MaxLocks {
		return dst, fmt.Errorf("%w: %d call reads, limit %d", ErrTooLarge, len(m.Reads), e.lim.MaxLocks)
	}
	if m.Matched {
		if m.Status != CallOK || len(m.Outputs) > 0 || len(m.Reads) > 0 || m.Error != "" {
			return dst, fmt.Errorf("%w: a matched call result has status ok and no error, outputs or reads", ErrInvalid)
		}
		return e.appendMatchedResult(dst, m.ID)
	}
	for i := range m.Reads {
		r := &m.Reads[i]
		if err := e.checkPath("call read path", r.Path); err != nil {
			return dst, err
		}
		if !timeBefore(r.Start, r.End) {
			return dst, fmt.Errorf("%w: call read of %q from %v to %v: want Start < End", ErrInvalid, r.Path, r.Start, r.End)
		}
	}
	b := e.b
	b.Reset()
	var outs flatbuffers.UOffsetT
	if m.Outputs != nil {
		e.offs = e.offs[:0]
		for _, r := range m.Outputs {
			if err := e.checkPath("call output path", r.Path); err != nil {
				return dst, err
			}
			p := b.CreateString(r.Path)
			fb.ValueRefStart(b)
			fb.ValueRefAddPath(b, p)
			fb.ValueRefAddTime(b, fb.CreateTime(b, r.Time.Nanos, r.Time.Version, r.Time.Creator))
			e.offs = append(e.offs, fb.ValueRefEnd(b))
		}
		outs = e.vectorOfOffsets()
	}
	var reads flatbuffers.UOffsetT
	if len(m.Reads) > 0 {
		e.offs = e.offs[:0]
		for i := range m.Reads {
			r := &m.Reads[i]
			p := b.CreateString(r.Path)
			fb.ReadRefStart(b)
			fb.ReadRefAddPath(b, p)
			fb.ReadRefAddStart(b, fb.CreateTime(b, r.Start.Nanos, r.Start.Version, r.Start.Creator))
			fb.ReadRefAddEnd(b, fb.CreateTime(b, r.End.Nanos, r.End.Version, r.End.Creator))
			e.offs = append(e.offs, fb.ReadRefEnd(b))
		}
		reads = e.vectorOfOffsets()
	}
	var text flatbuffers.UOffsetT
	if m.Error != "" {
		text = b.CreateString(m.Error)
	}
	fb.CallResultStart(b)
	fb.CallResultAddId(b, fb.CreateCallID(b, m.ID.Creator, m.ID.Seq))
	fb.CallResultAddStatus(b, byte(m.Status))
	if text != 0 {
		fb.CallResultAddError(b, text)
	}
	if outs != 0 {
		fb.CallResultAddOutputs(b, outs)
	}
	if reads != 0 {
		fb.CallResultAddReads(b, reads)
	}
	if m.Matched {
		fb.CallResultAddMatched(b, true)
	}
	return e.finish(dst, KindCallResult, fb.CallResultEnd(b))
}

// AppendError appends an Error message.
func (e *Encoder) AppendError(dst []byte, m *Error) ([]byte, error) {
	if err := e.checkText("error text", m.Text, e.lim.MaxTextBytes); err != nil {
		return dst, err
	}
	b := e.b
	b.Reset()
	var text flatbuffers.UOffsetT
	if m.Text != "" {
		text = b.CreateString(m.Text)
	}
	fb.ErrorStart(b)
	fb.ErrorAddCode(b, uint16(m.Code))
	if text != 0 {
		fb.ErrorAddText(b, text)
	}
	return e.finish(dst, KindError, fb.ErrorEnd(b))
}

// AppendPing appends a Ping.
func (e *Encoder) AppendPing(dst []byte, m *Ping) ([]byte, error) {
	e.b.Reset()
	fb.PingStart(e.b)
	fb.PingAddSeq(e.b, m.Seq)
	return e.finish(dst, KindPing, fb.PingEnd(e.b))
}

// AppendSync appends a Sync (between authorities).
func (e *Encoder) AppendSync(dst []byte, m *Sync) ([]byte, error) {
	if err := e.checkBytes("Sync handed-over list", m.HandedOver, 256); err != nil {
		return dst, err
	}
	if err := e.checkBytes("Sync taken-over list", m.TakenOver, 256); err != nil {
		return dst, err
	}
	e.b.Reset()
	ho := e.byteVector(m.HandedOver)
	to := e.byteVector(m.TakenOver)
	fb.SyncStart(e.b)
	fb.SyncAddClosedNs(e.b, m.Closed)
	fb.SyncAddSeq(e.b, m.Seq)
	fb.SyncAddAck(e.b, m.Ack)
	if ho != 0 {
		fb.SyncAddHandedOver(e.b, ho)
	}
	if to != 0 {
		fb.SyncAddTakenOver(e.b, to)
	}
	return e.finish(dst, KindSync, fb.SyncEnd(e.b))
}

// checkArea validates a watch's area: a known kind, one prefix for a
// spatial watch, finite coordinates, a positive radius, a box whose
// corners are in order.
func checkArea(a *Area, prefixes int) error {
	fin := func(v ...float64) bool {
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
		}
		return true
	}
	switch {
	case a.Kind == AreaNone:
		return nil
	case a.Kind > maxArea:
		return fmt.Errorf("%w: watch area kind %d", ErrInvalid, a.Kind)
	case prefixes != 1:
		return fmt.Errorf("%w: a spatial watch has one prefix, not %d", ErrInvalid, prefixes)
	case a.Kind == AreaNear && (!fin(a.Radius) || a.Radius <= 0 || a.Entity == ""):
		return fmt.Errorf("%w: near area needs an entity and a positive finite radius (%q, %v)", ErrInvalid, a.Entity, a.Radius)
	case a.Kind == AreaRegion && (!fin(a.X0, a.Y0, a.X1, a.Y1) || a.X1 < a.X0 || a.Y1 < a.Y0):
		return fmt.Errorf("%w: region (%v, %v)-(%v, %v) is not an ordered finite box", ErrInvalid, a.X0, a.Y0, a.X1, a.Y1)
	}
	return nil
}

// AppendLeave appends a Leave. Its prefix obeys the limits of a Watch
// prefix.
func (e *Encoder) AppendLeave(dst []byte, m *Leave) ([]byte, error) {
	if err := e.checkPath("Leave prefix", m.Prefix); err != nil {
		return dst, err
	}
	b := e.b
	b.Reset()
	p := b.CreateString(m.Prefix)
	fb.LeaveStart(b)
	fb.LeaveAddPrefix(b, p)
	return e.finish(dst, KindLeave, fb.LeaveEnd(b))
}

// AppendWatchDone appends a WatchDone. Its prefix obeys the limits of a
// Watch prefix: non-empty, at most Limits.MaxPathBytes.
func (e *Encoder) AppendWatchDone(dst []byte, m *WatchDone) ([]byte, error) {
	if err := e.checkPath("WatchDone prefix", m.Prefix); err != nil {
		return dst, err
	}
	b := e.b
	b.Reset()
	p := b.CreateString(m.Prefix)
	fb.WatchDoneStart(b)
	fb.WatchDoneAddPrefix(b, p)
	return e.finish(dst, KindWatchDone, fb.WatchDoneEnd(b))
}

// AppendValues appends a Values message, preceded by a PathDefs message if
// any of its paths (or lock paths) is new to the peer.
func (e *Encoder) AppendValues(dst []byte, m *Values) ([]byte, error) {
	return e.appendValueBatch(dst, KindValues, m.Items)
}

// AppendWrite appends a Write message, preceded by a PathDefs message if
// any of its paths (or lock paths) is new to the peer.
func (e *Encoder) AppendWrite(dst []byte, m *Write) ([]byte, error) {
	return e.appendValueBatch(dst, KindWrite, m.Items)
}

// AppendValidStates appends a ValidStates message, preceded by a PathDefs
// message if any of its paths is new to the peer.
func (e *Encoder) AppendValidStates(dst []byte, m *ValidStates) ([]byte, error) {
	if len(m.Items) > e.lim.MaxBatch {
		return dst, fmt.Errorf("%w: ValidStates of %d items, limit %d", ErrTooLarge, len(m.Items), e.lim.MaxBatch)
	}
	var base Time
	if len(m.Items) > 0 {
		base = m.Items[0].Time
	}
	e.dict.begin()
	rec := e.rec[:0]
	for i := range m.Items {
		c := &m.Items[i]
		if c.State > maxState {
			e.dict.rollback()
			return dst, fmt.Errorf("%w: state %d", ErrInvalid, c.State)
		}
		id, err := e.pathID(c.Path)
		if err != nil {
			e.dict.rollback()
			return dst, err
		}
		rec = appendRecordHead(rec, byte(c.State), id, c.Time, base)
	}
	e.rec = rec
	return e.finishBatch(dst, KindValidStates, base, len(m.Items))
}

// pathID returns p's dictionary id. A path already in the dictionary was
// checked when it entered, so only a new one is checked (the hot path
// does one map lookup).
func (e *Encoder) pathID(p string) (uint32, error) {
	if id, ok := e.dict.known(p); ok {
		return id, nil
	}
	if err := e.checkPath("path", p); err != nil {
		return 0, err
	}
	return e.dict.assign(p)
}

func (e *Encoder) appendValueBatch(dst []byte, k Kind, items []Value) ([]byte, error) {
	if len(items) > e.lim.MaxBatch {
		return dst, fmt.Errorf("%w: %v of %d items, limit %d", ErrTooLarge, k, len(items), e.lim.MaxBatch)
	}
	var base Time
	if len(items) > 0 {
		base = items[0].Time
	}
	e.dict.begin()
	rec := e.rec[:0]
	for i := range items {
		v := &items[i]
		var err error
		if rec, err = e.appendValueRecord(rec, v, base); err != nil {
			e.rec = rec
			e.dict.rollback()
			return dst, err
		}
	}
	e.rec = rec
	if len(rec) > e.lim.MaxFrameBytes { // fail before copying it into the builder
		e.dict.rollback()
		return dst, fmt.Errorf("%w: %v batch of %d bytes, frame limit %d", ErrTooLarge, k, len(rec), e.lim.MaxFrameBytes)
	}
	return e.finishBatch(dst, k, base, len(items))
}

// appendValueRecord appends one value record (layout in doc.go).
func (e *Encoder) appendValueRecord(rec []byte, v *Value, base Time) ([]byte, error) {
	if v.State > maxState {
		return rec, fmt.Errorf("%w: state %d of %q", ErrInvalid, v.State, v.Path)
	}
	if len(v.Value) > e.lim.MaxValueBytes {
		return rec, fmt.Errorf("%w: value of %q has %d bytes, limit %d", ErrTooLarge, v.Path, len(v.Value), e.lim.MaxValueBytes)
	}
	if len(v.Locks) > e.lim.MaxLocks {
		return rec, fmt.Errorf("%w: value of %q has %d locks, limit %d", ErrTooLarge, v.Path, len(v.Locks), e.lim.MaxLocks)
	}
	id, err := e.pathID(v.Path)
	if err != nil {
		return rec, err
	}
	h := byte(v.State)
	if v.Flags != 0 {
		h |= hdrFlags
	}
	if v.Value == nil {
		h |= hdrNil
	}
	if len(v.Locks) > 0 {
		h |= hdrLocks
	}
	rec = appendRecordHead(rec, h, id, v.Time, base)
	if v.Flags != 0 {
		rec = append(rec, byte(v.Flags))
	}
	if v.Value != nil {
		rec = binary.AppendUvarint(rec, uint64(len(v.Value)))
		rec = append(rec, v.Value...)
	}
	if len(v.Locks) > 0 {
		rec = binary.AppendUvarint(rec, uint64(len(v.Locks)))
		for i := range v.Locks {
			l := &v.Locks[i]
			lid, err := e.pathID(l.Path)
			if err != nil {
				return rec, err
			}
			rec = binary.AppendUvarint(rec, uint64(lid))
			rec = appendFullTime(rec, l.Start, base)
			rec = appendFullTime(rec, l.End, base)
		}
	}
	return rec, nil
}

// finishBatch appends the pending PathDefs, then the batch in e.rec as a
// message of kind k, rolling the dictionary back if either does not fit.
func (e *Encoder) finishBatch(dst []byte, k Kind, base Time, count int) ([]byte, error) {
	n, msgs := len(dst), e.frameMsgs
	var err error
	if len(e.dict.defs) > 0 {
		if e.frameMsgs+2 > e.lim.MaxMessages {
			e.dict.rollback()
			return dst, fmt.Errorf("%w: a frame holds at most %d messages (a batch with new paths takes two)", ErrTooLarge, e.lim.MaxMessages)
		}
		if dst, err = e.appendPathDefs(dst, e.dict.defs); err != nil {
			e.dict.rollback()
			return dst[:n], err
		}
	}
	if dst, err = e.appendBatchTable(dst, k, base, count); err != nil {
		e.dict.rollback()
		e.frameMsgs = msgs
		return dst[:n], err
	}
	return dst, nil
}

// The batch tables (Values, Write, ValidStates: base Time, count, records)
// and the matched CallResult have a fixed shape, so they are laid out by
// hand, straight into the frame, rather than through the FlatBuffers
// builder and a copy. The layouts are valid FlatBuffers of the schema's
// tables (root offset, vtable, table with its fields aligned within the
// body), read by the same checks and generated accessors as any other;
// TestHandLaidTables holds them to what the builder's tables decode to.
const (
	// batch table: root uoffset, vtable (3 fields) and padding, then the
	// table at batchTable: soffset, count, base, records uoffset; then
	// the records vector (length, bytes).
	batchTable  = 16
	batchHeader = batchTable + 28 + 4 // through the vector's length

	// matched CallResult: root uoffset, vtable (6 fields), then the table
	// at matchedTable: soffset, id (8-aligned), status, matched, padding.
	matchedTable = 20
	matchedBody  = matchedTable + 24
)

// appendBatchTable appends a batch message of kind k holding e.rec.
func (e *Encoder) appendBatchTable(dst []byte, k Kind, base Time, count int) ([]byte, error) {
	if e.frameMsgs >= e.lim.MaxMessages {
		return dst, fmt.Errorf("%w: a frame holds at most %d messages", ErrTooLarge, e.lim.MaxMessages)
	}
	n := len(dst)
	size := batchHeader + len(e.rec)
	dst = append(dst, byte(k))
	dst = binary.AppendUvarint(dst, uint64(size))
	b := len(dst)
	dst = append(dst, make([]byte, batchHeader)...)
	h := dst[b:]
	le := binary.LittleEndian
	le.PutUint32(h[0:], batchTable) // root
	le.PutUint16(h[4:], 10)         // vtable: its size, the table's
	le.PutUint16(h[6:], 28)
	le.PutUint16(h[8:], 8)                     // base
	le.PutUint16(h[10:], 4)                    // count
	le.PutUint16(h[12:], 24)                   // records
	le.PutUint32(h[batchTable:], batchTable-4) // soffset to the vtable at 4
	le.PutUint32(h[batchTable+4:], uint32(count))
	le.PutUint64(h[batchTable+8:], uint64(base.Nanos))
	le.PutUint32(h[batchTable+16:], base.Version)
	le.PutUint32(h[batchTable+20:], base.Creator)
	le.PutUint32(h[batchTable+24:], 4) // records: the vector right after
	le.PutUint32(h[batchTable+28:], uint32(len(e.rec)))
	dst = append(dst, e.rec...)
	if len(dst)-e.frameStart > e.lim.MaxFrameBytes {
		return dst[:n], fmt.Errorf("%w: %v message of %d bytes would make the frame exceed %d bytes", ErrTooLarge, k, size, e.lim.MaxFrameBytes)
	}
	e.frameMsgs++
	return dst, nil
}

// appendMatchedResult appends a matched CallResult (status ok, no error,
// outputs or reads).
func (e *Encoder) appendMatchedResult(dst []byte, id CallID) ([]byte, error) {
	if e.frameMsgs >= e.lim.MaxMessages {
		return dst, fmt.Errorf("%w: a frame holds at most %d messages", ErrTooLarge, e.lim.MaxMessages)
	}
	n := len(dst)
	dst = append(dst, byte(KindCallResult), matchedBody)
	b := len(dst)
	dst = append(dst, make([]byte, matchedBody)...)
	h := dst[b:]
	le := binary.LittleEndian
	le.PutUint32(h[0:], matchedTable) // root
	le.PutUint16(h[4:], 16)           // vtable: its size, the table's
	le.PutUint16(h[6:], 24)
	le.PutUint16(h[8:], 4)   // id
	le.PutUint16(h[10:], 20) // status (CallOK)
	// error, outputs, reads: absent (0)
	le.PutUint16(h[18:], 21)                       // matched
	le.PutUint32(h[matchedTable:], matchedTable-4) // soffset to the vtable at 4
	le.PutUint32(h[matchedTable+4:], id.Creator)
	le.PutUint64(h[matchedTable+12:], id.Seq)
	h[matchedTable+20] = byte(CallOK)
	h[matchedTable+21] = 1
	if len(dst)-e.frameStart > e.lim.MaxFrameBytes {
		return dst[:n], fmt.Errorf("%w: %v message of %d bytes would make the frame exceed %d bytes", ErrTooLarge, KindCallResult, matchedBody, e.lim.MaxFrameBytes)
	}
	e.frameMsgs++
	return dst, nil
}

// appendPathDefs appends a PathDefs message defining defs.
func (e *Encoder) appendPathDefs(dst []byte, defs []pathDef) ([]byte, error) {
	if len(defs) > e.lim.MaxBatch {
		return dst, fmt.Errorf("%w: %d new paths in one message, limit %d", ErrTooLarge, len(defs), e.lim.MaxBatch)
	}
	b := e.b
	b.Reset()
	e.offs = e.offs[:0]
	for _, d := range defs {
		p := b.CreateString(d.path)
		fb.PathDefStart(b)
		fb.PathDefAddId(b, d.id)
		fb.PathDefAddPath(b, p)
		e.offs = append(e.offs, fb.PathDefEnd(b))
	}
	v := e.vectorOfOffsets()
	fb.PathDefsStart(b)
	fb.PathDefsAddDefs(b, v)
	return e.finish(dst, KindPathDefs, fb.PathDefsEnd(b))
}

// Record layout helpers, shared with the decoder.

// Record header bits.
const (
	hdrState   = 0x03 // bits 0-1: State
	hdrFlags   = 0x04 // a Flags byte follows the time
	hdrVersion = 0x08 // Time.Version differs from the base: uvarint follows
	hdrCreator = 0x10 // Time.Creator differs from the base: uvarint follows
	hdrNil     = 0x20 // nil value (deletion): no length, no bytes
	hdrLocks   = 0x40 // a lock count and locks follow the value
	hdrUnknown = 0x80 // reserved; must be zero

	// ValidStates records use only the state, version and creator bits.
	hdrStateMask = hdrState | hdrVersion | hdrCreator
)

// appendRecordHead appends the header byte h (with the version and creator
// bits added as needed), the path id and t relative to base.
func appendRecordHead(rec []byte, h byte, id uint32, t, base Time) []byte {
	if t.Version != base.Version {
		h |= hdrVersion
	}
	if t.Creator != base.Creator {
		h |= hdrCreator
	}
	rec = append(rec, h)
	rec = binary.AppendUvarint(rec, uint64(id))
	rec = binary.AppendVarint(rec, t.Nanos-base.Nanos) // wraps; the decoder wraps back
	if h&hdrVersion != 0 {
		rec = binary.AppendUvarint(rec, uint64(t.Version))
	}
	if h&hdrCreator != 0 {
		rec = binary.AppendUvarint(rec, uint64(t.Creator))
	}
	return rec
}

// appendFullTime appends a lock time: nanos relative to base, version and
// creator in full.
func appendFullTime(rec []byte, t, base Time) []byte {
	rec = binary.AppendVarint(rec, t.Nanos-base.Nanos)
	rec = binary.AppendUvarint(rec, uint64(t.Version))
	return binary.AppendUvarint(rec, uint64(t.Creator))
}

package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/rewindnet/rewind/netcode/wire/fb"
)

// Decoder reads the frames of one direction of a connection. It owns that
// direction's path dictionary, filled by the PathDefs the peer's Encoder
// sends, so it must see every frame of the direction, in order. A Decoder is
// not safe for concurrent use.
//
// Every message is checked in full (offsets, lengths, limits, enums, path
// ids) before Next returns it, so a message is either returned whole or not
// at all. Any error means the peer is broken or hostile: close the session.
type Decoder struct {
	lim       Limits
	paths     []string // by id; "" = never defined
	pathBytes int      // sum of len(paths[i])

	frame []byte
	pos   int
	count int   // messages read from the frame
	err   error // sticky error of the current frame

	// lastName is the function name of the last Call decoded: a peer
	// calls a few functions over and over, so a Call's name is this
	// string again rather than a new one each time.
	lastName string
}

// NewDecoder returns a Decoder enforcing lim (zero fields take defaults).
// lim.MaxPaths must equal the peer Encoder's.
func NewDecoder(lim Limits) (*Decoder, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{lim: lim.withDefaults()}, nil
}

// Start begins reading frame, checking its header. The frame must stay
// unchanged until the caller is done with the messages read from it: byte
// fields of decoded messages (Value.Value, Hello.Token, Hello.Resume,
// Call.Args, ...) alias it.
func (d *Decoder) Start(frame []byte) error {
	d.frame, d.pos, d.count, d.err = nil, 0, 0, nil
	switch {
	case len(frame) == 0:
		d.err = fmt.Errorf("%w: empty frame", ErrTruncated)
	case len(frame) > d.lim.MaxFrameBytes:
		d.err = fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, len(frame), d.lim.MaxFrameBytes)
	case frame[0] != ProtocolVersion:
		d.err = fmt.Errorf("%w: frame version %d, want %d", ErrVersion, frame[0], ProtocolVersion)
	default:
		d.frame, d.pos = frame, 1
	}
	return d.err
}

// Next decodes the next message of the frame into m and returns nil, or
// io.EOF after the last message, or the error that makes the frame unusable
// (and again on every later call). PathDefs messages are applied to the
// dictionary and not returned.
//
// m is reused: slices in it keep their capacity across calls, so decoding a
// batch allocates nothing per value once they have grown. What Next stores
// in m is valid until the next call with the same m; byte slices alias the
// frame (see Start).
func (d *Decoder) Next(m *Message) error {
	for d.err == nil {
		if d.pos == len(d.frame) {
			return io.EOF
		}
		if d.count == d.lim.MaxMessages {
			d.err = fmt.Errorf("%w: more than %d messages in a frame", ErrTooLarge, d.lim.MaxMessages)
			break
		}
		d.count++
		k := Kind(d.frame[d.pos])
		n, w := binary.Uvarint(d.frame[d.pos+1:])
		if w == 0 {
			d.err = fmt.Errorf("%w: message length of message %d", ErrTruncated, d.count)
			break
		}
		start := d.pos + 1 + w
		if w < 0 || n > uint64(len(d.frame)-start) {
			d.err = fmt.Errorf("%w: message %d of %d bytes overruns the frame", ErrTruncated, d.count, n)
			break
		}
		body := d.frame[start : start+int(n)]
		d.pos = start + int(n)
		if k == KindPathDefs {
			if err := d.applyPathDefs(body); err != nil {
				d.err = err
			}
			continue
		}
		if err := d.decodeBody(k, body, m); err != nil {
			d.err = err
			break
		}
		m.Kind = k
		return nil
	}
	return d.err
}

// decodeBody checks and decodes one message body of kind k into m.
func (d *Decoder) decodeBody(k Kind, body []byte, m *Message) error {
	t, err := rootTable(body)
	if err != nil {
		return fmt.Errorf("%v: %w", k, err)
	}
	switch k {
	case KindHello:
		err = d.decodeHello(t, &m.Hello)
	case KindWelcome:
		err = d.decodeWelcome(t, &m.Welcome)
	case KindTimeSyncRequest:
		err = d.decodeTimeSyncRequest(t, &m.TimeSyncRequest)
	case KindTimeSyncReply:
		err = d.decodeTimeSyncReply(t, &m.TimeSyncReply)
	case KindWatch:
		err = d.decodeWatch(t, &m.Watch)
	case KindUnwatch:
		err = d.decodeUnwatch(t, &m.Unwatch)
	case KindValues:
		m.Values.Items, err = d.decodeValueBatch(t, k, m.Values.Items[:0], m)
	case KindWrite:
		m.Write.Items, err = d.decodeValueBatch(t, k, m.Write.Items[:0], m)
	case KindValidStates:
		err = d.decodeValidStates(t, &m.ValidStates)
	case KindCall:
		err = d.decodeCall(t, &m.Call)
	case KindCallResult:
		err = d.decodeCallResult(t, &m.CallResult)
	case KindError:
		err = d.decodeError(t, &m.Error)
	case KindPing:
		err = d.decodePing(t, &m.Ping)
	case KindWatchDone:
		err = d.decodeWatchDone(t, &m.WatchDone)
	case KindSync:
		err = d.decodeSync(t, &m.Sync)
	case KindLeave:
		err = d.decodeLeave(t, &m.Leave)
	default:
		return fmt.Errorf("%w: %d", ErrUnknownKind, uint8(k))
	}
	if err != nil {
		return fmt.Errorf("%v: %w", k, err)
	}
	return nil
}

// Each decodeX first checks every field the schema gives table X (slot and
// size must match schema/rewind.fbs), then reads them with the generated
// accessors. Slots are 4, 6, 8, ... in field order.

const (
	sizeTime   = 16 // struct Time
	sizeCallID = 16 // struct CallID
)

func (d *Decoder) decodeHello(t fbTable, m *Hello) error {
	if err := t.scalars(4, 2); err != nil {
		return err
	}
	if _, _, err := t.vector(6, 1, d.lim.MaxTextBytes); err != nil {
		return err
	}
	if _, _, err := t.vector(8, 1, d.lim.MaxTextBytes); err != nil {
		return err
	}
	if _, _, err := t.vector(10, 1, d.lim.MaxTextBytes); err != nil {
		return err
	}
	var x fb.Hello
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	m.Version = x.Version()
	m.Token = slices.Clip(x.TokenBytes()) // clipped: an append must not write into the frame
	m.Nonce = slices.Clip(x.NonceBytes())
	m.Resume = slices.Clip(x.ResumeBytes())
	return nil
}

func (d *Decoder) decodeWelcome(t fbTable, m *Welcome) error {
	if err := t.scalars(4, 4, 6, 8, 8, 8, 10, 8, 12, 8); err != nil {
		return err
	}
	if _, _, err := t.vector(14, 1, d.lim.MaxTextBytes); err != nil {
		return err
	}
	var x fb.Welcome
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	*m = Welcome{
		Creator:       x.Creator(),
		ServerTime:    x.ServerTimeNs(),
		MaxChangeAge:  time.Duration(x.MaxChangeAgeNs()),
		MaxRewind:     time.Duration(x.MaxRewindNs()),
		MaxFutureSkew: time.Duration(x.MaxFutureSkewNs()),
		Resume:        slices.Clip(x.ResumeBytes()),
	}
	return nil
}

func (d *Decoder) decodeTimeSyncRequest(t fbTable, m *TimeSyncRequest) error {
	if err := t.scalars(4, 8); err != nil {
		return err
	}
	var x fb.TimeSyncRequest
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	m.ClientSend = x.ClientSendNs()
	return nil
}

func (d *Decoder) decodeTimeSyncReply(t fbTable, m *TimeSyncReply) error {
	if err := t.scalars(4, 8, 6, 8, 8, 8); err != nil {
		return err
	}
	var x fb.TimeSyncReply
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	*m = TimeSyncReply{ClientSend: x.ClientSendNs(), ServerRecv: x.ServerRecvNs(), ServerSend: x.ServerSendNs()}
	return nil
}

// prefixes checks the prefix strings of a Watch or Unwatch (slot 4) and
// copies them into dst.
func (d *Decoder) prefixes(t fbTable, dst []string, at func(j int) []byte) ([]string, error) {
	n, err := t.strings(4, d.lim.MaxPrefixes, d.lim.MaxPathBytes)
	if err != nil {
		return dst, err
	}
	dst = dst[:0]
	for j := range int(n) {
		p := at(j)
		if len(p) == 0 {
			return dst, fmt.Errorf("%w: empty prefix", ErrMalformed)
		}
		dst = append(dst, string(p))
	}
	return dst, nil
}

func (d *Decoder) decodeWatch(t fbTable, m *Watch) error {
	if err := t.scalars(6, 1, 8, 8, 10, 1, 12, 1, 16, 8, 18, 8, 20, 8, 22, 8, 24, 8); err != nil {
		return err
	}
	if err := t.str(14, d.lim.MaxPathBytes); err != nil {
		return err
	}
	var x fb.Watch
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	ps, err := d.prefixes(t, m.Prefixes, x.Prefixes)
	m.Prefixes = ps
	if err != nil {
		return err
	}
	m.Mode = WatchMode(x.Mode())
	if m.Mode > maxWatchMode {
		return fmt.Errorf("%w: watch mode %d", ErrMalformed, m.Mode)
	}
	m.Window = time.Duration(x.WindowNs())
	m.Done = x.Done() // absent (false) in a Watch from a client that predates it
	m.Area = Area{Kind: AreaKind(x.Area())}
	switch m.Area.Kind {
	case AreaNear:
		m.Area.Entity, m.Area.Radius = string(x.Entity()), x.Radius()
	case AreaRegion:
		m.Area.X0, m.Area.Y0, m.Area.X1, m.Area.Y1 = x.X0(), x.Y0(), x.X1(), x.Y1()
	}
	if err := checkArea(&m.Area, len(m.Prefixes)); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.Area.Kind == AreaNear && !utf8.ValidString(m.Area.Entity) {
		return fmt.Errorf("%w: area entity is not UTF-8", ErrMalformed)
	}
	return nil
}

func (d *Decoder) decodeLeave(t fbTable, m *Leave) error {
	if err := t.str(4, d.lim.MaxPathBytes); err != nil {
		return err
	}
	var x fb.Leave
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	p := x.Prefix()
	if len(p) == 0 || !utf8.Valid(p) {
		return fmt.Errorf("%w: empty or non-UTF-8 prefix", ErrMalformed)
	}
	m.Prefix = string(p)
	return nil
}

func (d *Decoder) decodeUnwatch(t fbTable, m *Unwatch) error {
	var x fb.Unwatch
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	ps, err := d.prefixes(t, m.Prefixes, x.Prefixes)
	m.Prefixes = ps
	return err
}

func (d *Decoder) decodeCall(t fbTable, m *Call) error {
	if err := t.scalars(4, sizeCallID, 10, sizeTime, 12, 8, 14, 1, 16, 1, 18, 1, 20, 8); err != nil {
		return err
	}
	if err := t.str(6, d.lim.MaxTextBytes); err != nil {
		return err
	}
	if _, _, err := t.vector(8, 1, d.lim.MaxValueBytes); err != nil {
		return err
	}
	var x fb.Call
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	var id fb.CallID
	var tm fb.Time
	if name := x.Name(); string(name) != d.lastName {
		d.lastName = string(name)
	}
	*m = Call{
		Name:      d.lastName,
		Args:      slices.Clip(x.ArgsBytes()),
		ViewDelay: time.Duration(x.ViewDelayNs()),
		Runner:    x.Runner(), // absent (0) from a peer that predates it
		Relay:     x.Relay(),
		Hops:      x.Hops(),
		Digest:    x.Digest(), // absent (0) from a client that predates it
	}
	if x.Id(&id) != nil {
		m.ID = CallID{Creator: id.Creator(), Seq: id.Seq()}
	}
	if x.Time(&tm) != nil {
		m.Time = Time{Nanos: tm.Nanos(), Version: tm.Version(), Creator: tm.Creator()}
	}
	return nil
}

func (d *Decoder) decodeCallResult(t fbTable, m *CallResult) error {
	if err := t.scalars(4, sizeCallID, 6, 1, 14, 1); err != nil {
		return err
	}
	if err := t.str(8, d.lim.MaxTextBytes); err != nil {
		return err
	}
	n, err := t.tables(10, d.lim.MaxBatch, func(e fbTable) error {
		if err := e.str(4, d.lim.MaxPathBytes); err != nil {
			return err
		}
		return e.scalars(6, sizeTime)
	})
	if err != nil {
		return err
	}
	nr, err := t.tables(12, d.lim.MaxLocks, func(e fbTable) error {
		if err := e.str(4, d.lim.MaxPathBytes); err != nil {
			return err
		}
		return e.scalars(6, sizeTime, 8, sizeTime)
	})
	if err != nil {
		return err
	}
	var x fb.CallResult
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	var id fb.CallID
	outs, reads := m.Outputs[:0], m.Reads[:0]
	*m = CallResult{Status: CallStatus(x.Status()), Error: string(x.Error()), Matched: x.Matched()}
	if m.Matched && (m.Status != CallOK || n > 0 || nr > 0) {
		m.Outputs, m.Reads = outs, reads
		return fmt.Errorf("%w: a matched call result has status ok and no outputs or reads", ErrMalformed)
	}
	if x.Id(&id) != nil {
		m.ID = CallID{Creator: id.Creator(), Seq: id.Seq()}
	}
	var r fb.ValueRef
	var tm fb.Time
	for j := range int(n) {
		x.Outputs(&r, j)
		ref := ValueRef{Path: string(r.Path())}
		if ref.Path == "" {
			return fmt.Errorf("%w: empty output path", ErrMalformed)
		}
		if r.Time(&tm) != nil {
			ref.Time = Time{Nanos: tm.Nanos(), Version: tm.Version(), Creator: tm.Creator()}
		}
		outs = append(outs, ref)
	}
	m.Outputs = outs
	var rr fb.ReadRef
	for j := range int(nr) {
		x.Reads(&rr, j)
		p := rr.Path()
		if len(p) == 0 {
			m.Reads = reads
			return fmt.Errorf("%w: empty read path", ErrMalformed)
		}
		var l Lock
		if rr.Start(&tm) != nil {
			l.Start = Time{Nanos: tm.Nanos(), Version: tm.Version(), Creator: tm.Creator()}
		}
		if rr.End(&tm) != nil {
			l.End = Time{Nanos: tm.Nanos(), Version: tm.Version(), Creator: tm.Creator()}
		}
		if !timeBefore(l.Start, l.End) {
			m.Reads = reads
			return fmt.Errorf("%w: read of %q from %v to %v: want Start < End", ErrMalformed, p, l.Start, l.End)
		}
		l.Path = string(p)
		reads = append(reads, l)
	}
	m.Reads = reads
	return nil
}

func (d *Decoder) decodeError(t fbTable, m *Error) error {
	if err := t.scalars(4, 2); err != nil {
		return err
	}
	if err := t.str(6, d.lim.MaxTextBytes); err != nil {
		return err
	}
	var x fb.Error
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	*m = Error{Code: ErrorCode(x.Code()), Text: string(x.Text())}
	return nil
}

func (d *Decoder) decodePing(t fbTable, m *Ping) error {
	if err := t.scalars(4, 8); err != nil {
		return err
	}
	var x fb.Ping
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	m.Seq = x.Seq()
	return nil
}

func (d *Decoder) decodeSync(t fbTable, m *Sync) error {
	if err := t.scalars(4, 8, 6, 8, 8, 8); err != nil {
		return err
	}
	if _, _, err := t.vector(10, 1, 256); err != nil {
		return err
	}
	if _, _, err := t.vector(12, 1, 256); err != nil {
		return err
	}
	var x fb.Sync
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	m.Closed, m.Seq, m.Ack = x.ClosedNs(), x.Seq(), x.Ack()
	m.HandedOver = slices.Clip(x.HandedOverBytes())
	m.TakenOver = slices.Clip(x.TakenOverBytes())
	return nil
}

func (d *Decoder) decodeWatchDone(t fbTable, m *WatchDone) error {
	if err := t.str(4, d.lim.MaxPathBytes); err != nil {
		return err
	}
	var x fb.WatchDone
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	p := x.Prefix()
	if len(p) == 0 {
		return fmt.Errorf("%w: empty prefix", ErrMalformed)
	}
	if m.Prefix != string(p) { // a marker for the prefix decoded last allocates nothing
		m.Prefix = string(p)
	}
	return nil
}

// applyPathDefs checks a whole PathDefs message, then applies it.
func (d *Decoder) applyPathDefs(body []byte) error {
	t, err := rootTable(body)
	if err != nil {
		return fmt.Errorf("PathDefs: %w", err)
	}
	n, err := t.tables(4, d.lim.MaxBatch, func(e fbTable) error {
		if err := e.scalars(4, 4); err != nil {
			return err
		}
		return e.str(6, d.lim.MaxPathBytes)
	})
	if err != nil {
		return fmt.Errorf("PathDefs: %w", err)
	}
	var x fb.PathDefs
	x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
	var def fb.PathDef
	for j := range int(n) {
		x.Defs(&def, j)
		if id := def.Id(); id >= uint32(d.lim.MaxPaths) {
			return fmt.Errorf("PathDefs: %w: path id %d, dictionary holds %d", ErrTooLarge, id, d.lim.MaxPaths)
		}
		if len(def.Path()) == 0 {
			return fmt.Errorf("PathDefs: %w: empty path for id %d", ErrMalformed, def.Id())
		}
	}
	for j := range int(n) {
		x.Defs(&def, j)
		id := int(def.Id())
		if id >= len(d.paths) {
			d.paths = append(d.paths, make([]string, id+1-len(d.paths))...)
		}
		d.pathBytes += len(def.Path()) - len(d.paths[id])
		d.paths[id] = string(def.Path())
	}
	return nil
}

// DictBytes returns the bytes of the paths the peer has defined in this
// direction's dictionary (at most Limits.MaxPaths × Limits.MaxPathBytes):
// what the peer makes this side hold, for a caller that bounds it.
func (d *Decoder) DictBytes() int { return d.pathBytes }

// batch is the common shape of Values, Write and ValidStates.
type batch struct {
	base    Time
	count   int
	records []byte
}

// checkBatch checks a batch table and returns its fields.
func (d *Decoder) checkBatch(t fbTable, k Kind) (batch, error) {
	if err := t.scalars(4, sizeTime, 6, 4); err != nil {
		return batch{}, err
	}
	if _, _, err := t.vector(8, 1, d.lim.MaxFrameBytes); err != nil {
		return batch{}, err
	}
	var b batch
	var tm fb.Time
	var has bool
	var count uint32
	switch k {
	case KindValues:
		var x fb.Values
		x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
		has, count, b.records = x.Base(&tm) != nil, x.Count(), x.RecordsBytes()
	case KindWrite:
		var x fb.Write
		x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
		has, count, b.records = x.Base(&tm) != nil, x.Count(), x.RecordsBytes()
	default:
		var x fb.ValidStates
		x.Init(t.buf, flatbuffers.UOffsetT(t.pos))
		has, count, b.records = x.Base(&tm) != nil, x.Count(), x.RecordsBytes()
	}
	if has {
		b.base = Time{Nanos: tm.Nanos(), Version: tm.Version(), Creator: tm.Creator()}
	}
	// Every record takes at least 3 bytes (header, id, time), which bounds
	// count by the bytes actually present before anything is allocated.
	if count > uint32(d.lim.MaxBatch) {
		return batch{}, fmt.Errorf("%w: batch of %d items, limit %d", ErrTooLarge, count, d.lim.MaxBatch)
	}
	if uint64(count)*3 > uint64(len(b.records)) {
		return batch{}, fmt.Errorf("%w: %d records in %d bytes", ErrTruncated, count, len(b.records))
	}
	b.count = int(count)
	return b, nil
}

// recReader reads packed records; its methods record the first error in err
// and then return zeros, so callers check err once per record.
type recReader struct {
	d   *Decoder
	b   []byte
	p   int
	err error
}

func (r *recReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.p = len(r.b)
}

func (r *recReader) byte() byte {
	if r.p >= len(r.b) {
		r.fail(fmt.Errorf("%w: record cut short", ErrTruncated))
		return 0
	}
	c := r.b[r.p]
	r.p++
	return c
}

func (r *recReader) uvarint() uint64 {
	var x uint64
	var s uint
	b := r.b
	for i := r.p; i < len(b); i++ {
		c := b[i]
		if c < 0x80 {
			if s == 63 && c > 1 {
				break // overflows 64 bits
			}
			r.p = i + 1
			return x | uint64(c)<<s
		}
		if s == 63 {
			break
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	r.varintFailed()
	return 0
}

// varintFailed records why the varint at r.p could not be read; kept out of
// uvarint so that one stays small.
func (r *recReader) varintFailed() {
	if _, n := binary.Uvarint(r.b[r.p:]); n == 0 {
		r.fail(fmt.Errorf("%w: record varint cut short", ErrTruncated))
	} else {
		r.fail(fmt.Errorf("%w: record varint overflows 64 bits", ErrMalformed))
	}
}

func (r *recReader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *recReader) u32() uint32 {
	v := r.uvarint()
	if v > 0xFFFFFFFF {
		r.fail(fmt.Errorf("%w: record field %d exceeds 32 bits", ErrMalformed, v))
		return 0
	}
	return uint32(v)
}

func (r *recReader) path() string {
	id := r.uvarint()
	if id < uint64(len(r.d.paths)) {
		if p := r.d.paths[id]; p != "" {
			return p
		}
	}
	if r.err == nil {
		r.fail(fmt.Errorf("%w: %d", ErrUnknownPathID, id))
	}
	return ""
}

// head reads a record header, path and time, as appendRecordHead wrote them.
func (r *recReader) head(base Time) (h byte, path string, t Time) {
	h = r.byte()
	path = r.path()
	t = base
	t.Nanos = base.Nanos + r.varint()
	if h&hdrVersion != 0 {
		t.Version = r.u32()
	}
	if h&hdrCreator != 0 {
		t.Creator = r.u32()
	}
	if State(h&hdrState) > maxState {
		r.fail(fmt.Errorf("%w: state %d", ErrMalformed, h&hdrState))
	}
	return h, path, t
}

func (r *recReader) fullTime(base Time) Time {
	n := base.Nanos + r.varint()
	v := r.u32()
	return Time{Nanos: n, Version: v, Creator: r.u32()}
}

// decodeValueBatch checks and decodes a Values or Write batch into items.
// Value bytes alias the frame; locks live in m.locks, reused across calls.
// This is the hot path, so the common record (no flags, locks or version)
// is read inline with local positions; the rare parts and every error go
// through recReader.
func (d *Decoder) decodeValueBatch(t fbTable, k Kind, items []Value, m *Message) ([]Value, error) {
	bt, err := d.checkBatch(t, k)
	if err != nil {
		return items, err
	}
	b, base, paths := bt.records, bt.base, d.paths
	maxValue := uint64(d.lim.MaxValueBytes)
	items = slices.Grow(items[:0], bt.count)[:bt.count]
	locks := m.locks[:0]
	r := recReader{d: d, b: b}
	p := 0
	for i := range items {
		if p+3 > len(b) { // header, id and time take at least 3 bytes
			r.fail(fmt.Errorf("%w: record cut short", ErrTruncated))
			break
		}
		h := b[p]
		if h&hdrUnknown != 0 || State(h&hdrState) > maxState {
			r.fail(fmt.Errorf("%w: record header %#x", ErrMalformed, h))
			break
		}
		v := &items[i]
		var id uint64
		if c := b[p+1]; c < 0x80 {
			id, p = uint64(c), p+2
		} else {
			r.p = p + 1
			id = r.uvarint()
			p = r.p
		}
		if id >= uint64(len(paths)) || paths[id] == "" {
			r.fail(fmt.Errorf("%w: %d", ErrUnknownPathID, id))
			break
		}
		r.p = p
		tm := base
		tm.Nanos = base.Nanos + r.varint()
		if h&(hdrVersion|hdrCreator|hdrFlags) != 0 {
			if h&hdrVersion != 0 {
				tm.Version = r.u32()
			}
			if h&hdrCreator != 0 {
				tm.Creator = r.u32()
			}
			v.Flags = 0
			if h&hdrFlags != 0 {
				v.Flags = Flags(r.byte())
			}
		} else {
			v.Flags = 0
		}
		v.Path, v.Time, v.State, v.Value, v.Locks = paths[id], tm, State(h&hdrState), nil, nil
		if h&hdrNil == 0 {
			n := r.uvarint()
			switch {
			case r.err != nil:
			case n > maxValue:
				r.fail(fmt.Errorf("%w: value of %d bytes, limit %d", ErrTooLarge, n, maxValue))
			case n > uint64(len(b)-r.p):
				r.fail(fmt.Errorf("%w: value of %d bytes overruns the batch", ErrTruncated, n))
			default:
				end := r.p + int(n)
				v.Value = b[r.p:end:end]
				r.p = end
			}
		}
		if h&hdrLocks != 0 {
			locks = r.locks(base, locks, v)
		}
		if r.err != nil {
			break
		}
		p = r.p
	}
	m.locks = locks
	if r.err != nil {
		return items[:0], r.err
	}
	if p != len(b) {
		return items[:0], fmt.Errorf("%w: %d bytes after the last record", ErrMalformed, len(b)-p)
	}
	return items, nil
}

// locks reads the lock count and locks of v into the arena locks.
func (r *recReader) locks(base Time, locks []Lock, v *Value) []Lock {
	n := r.uvarint()
	if n == 0 || n > uint64(r.d.lim.MaxLocks) {
		r.fail(fmt.Errorf("%w: %d locks, want 1..%d", ErrMalformed, n, r.d.lim.MaxLocks))
		return locks
	}
	first := len(locks)
	for range n {
		p := r.path()
		locks = append(locks, Lock{Path: p, Start: r.fullTime(base), End: r.fullTime(base)})
		if r.err != nil {
			return locks
		}
	}
	v.Locks = locks[first:len(locks):len(locks)]
	return locks
}

func (d *Decoder) decodeValidStates(t fbTable, m *ValidStates) error {
	b, err := d.checkBatch(t, KindValidStates)
	if err != nil {
		return err
	}
	r := recReader{d: d, b: b.records}
	items := m.Items[:0]
	for range b.count {
		h, path, tm := r.head(b.base)
		if h&^hdrStateMask != 0 {
			r.fail(fmt.Errorf("%w: record bits %#x not allowed in ValidStates", ErrMalformed, h&^hdrStateMask))
		}
		if r.err != nil {
			break
		}
		items = append(items, StateChange{Path: path, Time: tm, State: State(h & hdrState)})
	}
	m.Items = items
	if r.err == nil && r.p != len(r.b) {
		r.err = fmt.Errorf("%w: %d bytes after the last record", ErrMalformed, len(r.b)-r.p)
	}
	return r.err
}

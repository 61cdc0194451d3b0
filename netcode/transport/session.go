package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Session errors. A closed session's Err is a *CloseError, which matches
// ErrClosed and its cause with errors.Is.
var (
	// ErrClosed matches every error of a closed session.
	ErrClosed = errors.New("transport: session closed")
	// ErrPeerClosed: the peer closed the session (CloseError.Reason says why).
	ErrPeerClosed = errors.New("transport: closed by peer")
	// ErrIdleTimeout: nothing arrived for Config.IdleTimeout.
	ErrIdleTimeout = errors.New("transport: idle timeout")
	// ErrRecvOverflow: the owner left Config.RecvQueueFrames frames unread.
	ErrRecvOverflow = errors.New("transport: receive queue overflow")
	// ErrStream: the KCP stream under the session failed.
	ErrStream = errors.New("transport: stream failed")
	// ErrInvalidClass: Send was given an unknown Class.
	ErrInvalidClass = errors.New("transport: invalid class")
)

// CloseError is why a session closed.
type CloseError struct {
	// Reason is the human-readable reason: the one given to Close, the one
	// the peer sent, or a description of the failure.
	Reason string
	// Remote is true when the peer closed the session.
	Remote bool
	// Err is the cause (ErrPeerClosed, ErrIdleTimeout, ErrFrameTooLarge,
	// ErrProtocol, ErrRecvOverflow, ErrStream...) or nil after a clean local
	// Close.
	Err error
}

func (e *CloseError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by peer"
	}
	return fmt.Sprintf("transport: session closed %s: %s", who, e.Reason)
}

// Unwrap lets errors.Is match ErrClosed and the cause.
func (e *CloseError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrClosed}
	}
	return []error{ErrClosed, e.Err}
}

// stream is what a session runs on: a KCP session in production, an
// in-memory pipe in tests.
type stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
}

// Stats are a session's counters. Frames and bytes count the owner's frames
// only (payload bytes, without the 5-byte record header or the transport's
// own records).
type Stats struct {
	FramesSent, FramesReceived uint64
	BytesSent, BytesReceived   uint64
	SendDropped                uint64 // frames evicted from the full send queue
	SendQueued                 int    // frames waiting in the send queue now
	SendQueuedBytes            int    // their bytes

	// From this session's KCP state (zero on a session without KCP).
	SRTT, RTTVar, RTO time.Duration

	// Global holds kcp-go's counters for the whole process (every session
	// of every listener and dialer): kcp-go keeps retransmissions and FEC
	// recoveries only there.
	Global GlobalStats
}

// GlobalStats are kcp-go's process-wide counters (kcp.DefaultSnmp).
type GlobalStats struct {
	Retransmits      uint64 // segments retransmitted (all causes)
	FastRetransmits  uint64 // of which fast retransmits
	LostSegments     uint64 // segments retransmitted after an RTO
	FECRecovered     uint64 // packets repaired by FEC
	FECErrors        uint64 // FEC repairs that failed
	ChecksumErrors   uint64 // packets failing the CRC after decryption (e.g. another secret)
	PacketsIn        uint64 // UDP packets received
	PacketsOut       uint64 // UDP packets sent
	UDPBytesIn       uint64
	UDPBytesOut      uint64
	CurrentlyOpen    uint64 // KCP sessions open now
	ActiveOpens      uint64 // KCP sessions dialled so far
	PassiveOpens     uint64 // KCP sessions accepted so far
	KCPInputErrors   uint64
	ReceiveQueueSegs uint64
}

// globalStats sums kcp-go's counters (dialled sessions) and the
// endpoints' (listeners).
func globalStats() GlobalStats {
	s := kcp.DefaultSnmp.Copy()
	e := &engineCounters
	return GlobalStats{
		Retransmits:      s.RetransSegs + e.retransmits.Load(),
		FastRetransmits:  s.FastRetransSegs + e.fastRetransmits.Load(),
		LostSegments:     s.LostSegs + e.lost.Load(),
		FECRecovered:     s.FECRecovered + e.fecRecovered.Load(),
		FECErrors:        s.FECErrs + e.fecErrors.Load(),
		ChecksumErrors:   s.InCsumErrors + e.checksum.Load(),
		PacketsIn:        s.InPkts + e.pktsIn.Load(),
		PacketsOut:       s.OutPkts + e.pktsOut.Load(),
		UDPBytesIn:       s.InBytes + e.bytesIn.Load(),
		UDPBytesOut:      s.OutBytes + e.bytesOut.Load(),
		CurrentlyOpen:    s.CurrEstab + e.open.Load(),
		ActiveOpens:      s.ActiveOpens,
		PassiveOpens:     s.PassiveOpens + e.passive.Load(),
		KCPInputErrors:   s.KCPInErrors + e.inputErrors.Load(),
		ReceiveQueueSegs: s.RingBufferRcvQueue,
	}
}

// Session is one end of a connection: it sends and receives frames (opaque
// byte slices) in order and reliably, over a KCP stream.
//
// Two goroutines run per session: a reader that parses records and queues
// complete frames for Recv (or Drain), and a writer that drains the send
// queue into KCP and sends keepalives. Every method is safe for concurrent
// use.
type Session struct {
	// immutable after construction
	cfg     Config
	conn    stream          // nil on an endpoint's session
	kcp     *kcp.UDPSession // nil when conn is not KCP (tests, endpoints)
	ec      *econn          // the endpoint's conversation; nil on a stream
	local   net.Addr
	remote  net.Addr
	br      *bufio.Reader // owned by the reader goroutine after start
	onClose func()        // releases what the session owns besides conn
	recvd   chan struct{} // holds a token when frames were queued since Recv last looked
	wake    chan struct{} // tells the writer there is work
	done    chan struct{} // closed by finish
	acked   chan struct{} // closed when the peer acknowledged our close
	idle    *time.Timer   // fires checkIdle; nil on an endpoint's session

	lastRecv atomic.Int64           // UnixNano of the last record received
	notify   atomic.Pointer[func()] // set by Notify
	lastSend atomic.Int64           // UnixNano of the last record written

	// wmu serialises writes to conn (the writer goroutine and Send's direct
	// path) so records never interleave; fastBuf is guarded by it.
	wmu     sync.Mutex
	fastBuf []byte

	// rmu guards the receive queue: complete frames for Recv and Drain,
	// which grows with use (an idle session holds none).
	rmu    sync.Mutex
	rq     []Frame
	rqHead int
	rqSize int // bytes of the frames in rq[rqHead:]

	mu        sync.Mutex // guards the fields below
	queue     sendQueue
	term      *termination // set once the session starts to close
	err       error        // *CloseError, set by finish
	ackedOnce bool
	stats     Stats
}

type termKind uint8

const (
	termLocal termKind = iota // Close: drain the queue, send the reason, wait for the ack
	termFail                  // a local failure: send the reason, do not wait
	termPeer                  // the peer closed: acknowledge
)

type termination struct {
	kind termKind
	err  *CloseError
}

func newSession(cfg Config, conn stream, br *bufio.Reader, ks *kcp.UDPSession, local, remote net.Addr, onClose func()) *Session {
	s := &Session{
		cfg:     cfg,
		conn:    conn,
		kcp:     ks,
		local:   local,
		remote:  remote,
		br:      br,
		onClose: onClose,
		recvd:   make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		acked:   make(chan struct{}),
		queue:   newSendQueue(cfg.SendQueueFrames, cfg.SendQueueBytes),
	}
	s.lastRecv.Store(time.Now().UnixNano())
	s.lastSend.Store(time.Now().UnixNano())
	// The idle check runs on its own timer rather than as a read deadline:
	// it must fire even while the writer is stuck behind a full window, and
	// a deadline re-armed on every read would cost a timer per read.
	s.idle = time.AfterFunc(cfg.IdleTimeout, s.checkIdle)
	go s.readLoop()
	go s.writeLoop()
	return s
}

// newEngineSession returns the session of an endpoint's conversation. The
// endpoint's loop does its reading, writing and timing: it runs no
// goroutine of its own.
func newEngineSession(cfg Config, c *econn, local, remote net.Addr) *Session {
	return &Session{
		cfg:    cfg,
		ec:     c,
		local:  local,
		remote: remote,
		recvd:  make(chan struct{}, 1),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		acked:  make(chan struct{}),
		queue:  newSendQueue(cfg.SendQueueFrames, cfg.SendQueueBytes),
	}
}

// checkIdle closes the session when nothing arrived for IdleTimeout, and
// otherwise re-arms itself for when that would be.
func (s *Session) checkIdle() {
	if s.closed() {
		return
	}
	since := time.Since(time.Unix(0, s.lastRecv.Load()))
	if since < s.cfg.IdleTimeout {
		s.idle.Reset(s.cfg.IdleTimeout - since)
		return
	}
	// The peer is silent, most likely gone: no point telling it.
	s.finish(&CloseError{Reason: fmt.Sprintf("nothing received for %v", s.cfg.IdleTimeout), Err: ErrIdleTimeout})
}

// LocalAddr and RemoteAddr return the addresses of the two ends.
func (s *Session) LocalAddr() net.Addr  { return s.local }
func (s *Session) RemoteAddr() net.Addr { return s.remote }

// Send queues a copy of frame for the peer and returns without waiting for
// the network. Frames of a class arrive in the order sent; Control frames
// overtake queued Data frames. When the queue is full the oldest Data frame
// is dropped (see Config.SendQueueFrames) and counted in Stats.SendDropped.
//
// Send fails with ErrFrameTooLarge beyond Config.MaxFrame, with
// ErrInvalidClass for an unknown class, and with the session's CloseError
// once it is closing.
func (s *Session) Send(frame []byte, class Class) error {
	if len(frame) > s.cfg.MaxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), s.cfg.MaxFrame)
	}
	if class >= numClasses {
		return fmt.Errorf("%w: %d", ErrInvalidClass, class)
	}
	sent, front := s.sendNow(frame)
	if sent {
		return nil
	}
	cp := append([]byte(nil), frame...)
	s.mu.Lock()
	if s.term != nil {
		err := s.closingErrLocked()
		s.mu.Unlock()
		return err
	}
	if front {
		s.queue.pushFront(cp, class)
	} else {
		s.queue.push(cp, class)
	}
	s.mu.Unlock()
	s.kick()
	return nil
}

// writeDeadliner is a stream that can bound a write (KCP can).
type writeDeadliner interface {
	SetWriteDeadline(time.Time) error
}

// longAgo is a write deadline in the past: a KCP write with it sends when
// the window has room and fails at once instead of waiting when it has not.
var longAgo = time.Unix(1, 0)

// sendNow writes frame straight to the stream from the caller's goroutine
// when nothing is queued and no write is under way, saving the hand-off to
// the writer. It never blocks: a full KCP window makes the write fail at
// once, and then the frame is queued (front reports that it must go ahead
// of frames queued meanwhile, which it preceded).
func (s *Session) sendNow(frame []byte) (sent, front bool) {
	wd, ok := s.conn.(writeDeadliner)
	if !ok || !s.wmu.TryLock() {
		return false, false
	}
	defer s.wmu.Unlock()
	s.mu.Lock()
	idle := s.term == nil && s.queue.len() == 0
	s.mu.Unlock()
	if !idle {
		return false, false
	}
	s.fastBuf = appendRecord(s.fastBuf[:0], kindFrame, frame)
	if err := wd.SetWriteDeadline(longAgo); err != nil {
		return false, true
	}
	_, err := s.conn.Write(s.fastBuf)
	wd.SetWriteDeadline(time.Time{})
	if err != nil {
		if isTimeout(err) {
			return false, true
		}
		s.finish(&CloseError{Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrStream, err)})
		return false, true // Send then reports the CloseError
	}
	if cap(s.fastBuf) > maxBatch {
		s.fastBuf = nil // do not pin one huge frame's buffer
	}
	s.lastSend.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.stats.FramesSent++
	s.stats.BytesSent += uint64(len(frame))
	s.mu.Unlock()
	return true, false
}

func (s *Session) closingErrLocked() error {
	if s.err != nil {
		return s.err
	}
	return s.term.err
}

func (s *Session) kick() {
	if s.ec != nil {
		s.ec.ep.markDirty(s.ec)
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Recv returns the next frame from the peer, blocking until one arrives,
// ctx ends or the session closes. Frames that arrived before the session
// closed are still returned; after them Recv returns the CloseError. The
// caller owns the returned slice.
func (s *Session) Recv(ctx context.Context) ([]byte, error) {
	for {
		if f, ok := s.popFrame(); ok {
			return f.Data, nil
		}
		select {
		case <-s.recvd:
		case <-s.done:
			// Frames queued before done closed are all visible now.
			if f, ok := s.popFrame(); ok {
				return f.Data, nil
			}
			return nil, s.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pushFrame queues a received frame, or reports that the receive queue
// is full (Config.RecvQueueFrames frames or Config.RecvQueueBytes bytes).
func (s *Session) pushFrame(f Frame) error {
	s.rmu.Lock()
	n, size := len(s.rq)-s.rqHead, s.rqSize
	if n >= s.cfg.RecvQueueFrames || size+len(f.Data) > s.cfg.RecvQueueBytes {
		s.rmu.Unlock()
		return fmt.Errorf("%w: %d frames of %d bytes unread (limits %d frames, %d bytes)", ErrRecvOverflow, n, size, s.cfg.RecvQueueFrames, s.cfg.RecvQueueBytes)
	}
	s.rq = append(s.rq, f)
	s.rqSize += len(f.Data)
	s.rmu.Unlock()
	select {
	case s.recvd <- struct{}{}:
	default:
	}
	return nil
}

// popFrame takes the oldest queued frame, if any.
func (s *Session) popFrame() (Frame, bool) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.rqHead == len(s.rq) {
		return Frame{}, false
	}
	f := s.rq[s.rqHead]
	s.rq[s.rqHead] = Frame{}
	s.rqHead++
	s.rqSize -= len(f.Data)
	switch {
	case s.rqHead == len(s.rq) && cap(s.rq) > 64:
		s.rq, s.rqHead = nil, 0 // drained after a burst: let the array go
	case s.rqHead == len(s.rq):
		s.rq, s.rqHead = s.rq[:0], 0
	case s.rqHead > 64 && 2*s.rqHead > len(s.rq):
		n := copy(s.rq, s.rq[s.rqHead:])
		clear(s.rq[n:])
		s.rq, s.rqHead = s.rq[:n], 0
	}
	return f, true
}

// Frame is a received frame with the time it arrived: when the session's
// reader took it off the stream, which is earlier than when its owner
// handles it if the owner is busy.
type Frame struct {
	Data []byte
	At   time.Time // wall clock with its monotonic reading (time.Now)
}

// Drain appends to dst, without blocking, up to max of the frames waiting
// for Recv, in order, each with its arrival time, and returns the extended
// slice. Once the session is closed and every frame it received has been
// returned, Drain returns the CloseError (with the last frames, if any). A
// Drain that appends nothing and returns nil error means nothing is
// waiting yet. The caller owns the frames; max < 1 appends nothing.
//
// Drain and Notify let one goroutine serve many sessions without a
// goroutine blocked in Recv for each: it drains the sessions Notify
// reported, so a burst of frames costs it one wake-up. The arrival times
// let it charge each frame to its sender when it came, not when a busy
// owner got to it.
func (s *Session) Drain(dst []Frame, max int) ([]Frame, error) {
	for range max {
		if f, ok := s.popFrame(); ok {
			dst = append(dst, f)
			continue
		}
		if s.closed() {
			// Look again: the frames queued before done closed are all
			// visible now, and Recv gives no more than that either.
			if f, ok := s.popFrame(); ok {
				dst = append(dst, f)
				continue
			}
			return dst, s.Err()
		}
		break
	}
	return dst, nil
}

// Notify makes the session call f when frames are waiting for Recv or
// Drain, and once when it closes. f runs on the session's own goroutines
// (and once on Notify's, so frames that arrived before Notify are not
// missed); it must return quickly and never block, typically by marking
// the session ready and waking the goroutine that drains it. f may be
// called when nothing is waiting (a Recv took the frames first); it is
// not called for each frame of a burst the reader parsed from one read.
// A later Notify replaces f; nil stops the calls.
func (s *Session) Notify(f func()) {
	if f == nil {
		s.notify.Store(nil)
		return
	}
	s.notify.Store(&f)
	f()
}

// signal calls the Notify function, if any.
func (s *Session) signal() {
	if f := s.notify.Load(); f != nil {
		(*f)()
	}
}

// recordBuffered reports whether the reader holds a whole record, so it
// can parse it without waiting for the stream.
func (s *Session) recordBuffered() bool {
	b := s.br.Buffered()
	if b < headerSize {
		return false
	}
	h, err := s.br.Peek(headerSize)
	if err != nil {
		return false
	}
	return uint64(b-headerSize) >= uint64(binary.BigEndian.Uint32(h[1:headerSize]))
}

// Close sends what is queued, then reason, waits for the peer to
// acknowledge it (at most Config.CloseLinger in all) and releases the
// session. The peer's Recv then fails with a CloseError carrying reason
// (truncated to MaxReasonBytes) and Remote set. Closing a closed session
// is a no-op; Close always returns nil.
func (s *Session) Close(reason string) error {
	s.beginClose(termLocal, &CloseError{Reason: truncateReason(reason)})
	t := time.NewTimer(s.cfg.CloseLinger)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.finish(&CloseError{Reason: truncateReason(reason)})
	}
	return nil
}

// Done is closed once the session is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the session is open, then its *CloseError.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	st.SendQueued = s.queue.len()
	st.SendQueuedBytes = s.queue.bytes
	st.SendDropped = s.queue.dropped
	s.mu.Unlock()
	if s.ec != nil {
		st.SRTT = time.Duration(s.ec.srtt.Load()) * time.Millisecond
		st.RTTVar = time.Duration(s.ec.rttvar.Load()) * time.Millisecond
		st.RTO = time.Duration(s.ec.rto.Load()) * time.Millisecond
	}
	if s.kcp != nil {
		st.SRTT = time.Duration(s.kcp.GetSRTT()) * time.Millisecond
		st.RTTVar = time.Duration(s.kcp.GetSRTTVar()) * time.Millisecond
		st.RTO = time.Duration(s.kcp.GetRTO()) * time.Millisecond
	}
	st.Global = globalStats()
	return st
}

// beginClose records the first termination and wakes the writer, which
// carries it out. It reports whether this call set it.
func (s *Session) beginClose(kind termKind, err *CloseError) bool {
	s.mu.Lock()
	if s.term != nil {
		// A close from the peer while ours waits for its ack answers it.
		if kind == termPeer && s.term.kind == termLocal && !s.ackedOnce {
			s.ackedOnce = true
			close(s.acked)
		}
		s.mu.Unlock()
		return false
	}
	s.term = &termination{kind: kind, err: err}
	s.mu.Unlock()
	s.kick()
	return true
}

// fail closes the session after a local failure, telling the peer why. The
// writer may be stuck behind a full KCP window, so a timer bounds the wait.
func (s *Session) fail(cause error) {
	ce := &CloseError{Reason: truncateReason(cause.Error()), Err: cause}
	if s.beginClose(termFail, ce) {
		time.AfterFunc(s.cfg.CloseLinger, func() { s.finish(ce) })
	}
}

// finish closes the session for good; the first error wins.
func (s *Session) finish(err *CloseError) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	if s.term == nil {
		s.term = &termination{kind: termFail, err: err}
	}
	s.mu.Unlock()
	close(s.done)
	s.signal()
	if s.ec != nil {
		s.kick() // the endpoint retires the conversation
		return
	}
	s.idle.Stop()
	s.conn.Close()
	if s.onClose != nil {
		s.onClose()
	}
}

func (s *Session) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// readLoop parses records until the stream ends. It never blocks on the
// owner: a full receive queue closes the session instead. It signals the
// Notify function once per burst: before it would wait for the stream
// with frames queued since the last signal.
func (s *Session) readLoop() {
	var hdr [headerSize]byte
	pending := false // frames queued since the last signal
	defer func() {
		if pending {
			s.signal()
		}
	}()
	if err := s.conn.SetReadDeadline(time.Time{}); err != nil { // clear the handshake's
		s.readFailed(err)
		return
	}
	for {
		if pending && !s.recordBuffered() {
			pending = false
			s.signal()
		}
		if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
			s.readFailed(err)
			return
		}
		kind, n, err := checkHeader(hdr[:], s.cfg.MaxFrame)
		if err != nil {
			s.fail(err)
			return
		}
		var payload []byte
		if n > 0 {
			payload = make([]byte, n)
			if _, err := io.ReadFull(s.br, payload); err != nil {
				s.readFailed(err)
				return
			}
		}
		at := time.Now()
		s.lastRecv.Store(at.UnixNano())
		switch kind {
		case kindFrame:
			// Count first, so a frame Recv returned is always counted.
			s.mu.Lock()
			s.stats.FramesReceived++
			s.stats.BytesReceived += uint64(n)
			s.mu.Unlock()
			if err := s.pushFrame(Frame{Data: payload, At: at}); err != nil {
				s.fail(err)
				return
			}
			pending = true
		case kindKeepAlive:
		case kindClose:
			s.beginClose(termPeer, &CloseError{Reason: strings.ToValidUTF8(string(payload), "?"), Remote: true, Err: ErrPeerClosed})
			return
		case kindCloseAck:
			s.mu.Lock()
			if !s.ackedOnce {
				s.ackedOnce = true
				close(s.acked)
			}
			s.mu.Unlock()
		default: // hello/welcome after the handshake
			s.fail(fmt.Errorf("%w: record kind %d after the handshake", ErrProtocol, kind))
			return
		}
	}
}

func (s *Session) readFailed(err error) {
	if s.closed() {
		return
	}
	s.mu.Lock()
	term := s.term
	s.mu.Unlock()
	if term != nil {
		return // closing already; the writer finishes
	}
	s.finish(&CloseError{Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrStream, err)})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// maxBatch bounds the bytes the writer hands to KCP in one Write; the
// writer keeps a batch buffer of at most idleBatchBuf while it waits.
const (
	maxBatch     = 64 << 10
	idleBatchBuf = 4 << 10
)

// writeLoop owns all writes to the stream.
func (s *Session) writeLoop() {
	keepAlive := time.NewTimer(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	var buf []byte // grows with the batches; let go while idle
	for {
		s.mu.Lock()
		term := s.term
		buf = buf[:0]
		frames, bytes := 0, 0
		if term == nil || term.kind == termLocal {
			for len(buf) < maxBatch {
				f, ok := s.queue.pop()
				if !ok {
					break
				}
				buf = appendRecord(buf, kindFrame, f)
				frames++
				bytes += len(f)
			}
		}
		s.mu.Unlock()

		if frames > 0 {
			if !s.write(buf) {
				return
			}
			s.mu.Lock()
			s.stats.FramesSent += uint64(frames)
			s.stats.BytesSent += uint64(bytes)
			s.mu.Unlock()
			keepAlive.Reset(s.cfg.KeepAlive)
			continue
		}
		if term != nil {
			s.terminate(term, buf)
			return
		}
		if cap(buf) > idleBatchBuf {
			buf = nil // nothing queued: do not pin a burst's buffer
		}
		select {
		case <-s.wake:
		case <-keepAlive.C:
			if since := time.Since(time.Unix(0, s.lastSend.Load())); since < s.cfg.KeepAlive {
				keepAlive.Reset(s.cfg.KeepAlive - since) // Send wrote meanwhile
				continue
			}
			if !s.write(appendRecord(buf, kindKeepAlive, nil)) {
				return
			}
			keepAlive.Reset(s.cfg.KeepAlive)
		case <-s.done:
			return
		}
	}
}

// write writes b to the stream, finishing the session if that fails.
func (s *Session) write(b []byte) bool {
	s.wmu.Lock()
	_, err := s.conn.Write(b)
	s.wmu.Unlock()
	s.lastSend.Store(time.Now().UnixNano())
	if err != nil {
		s.finish(&CloseError{Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrStream, err)})
		return false
	}
	return true
}

// terminate carries out a termination once the queue is drained.
func (s *Session) terminate(t *termination, buf []byte) {
	switch t.kind {
	case termLocal:
		if _, err := s.conn.Write(appendRecord(buf, kindClose, []byte(t.err.Reason))); err != nil {
			s.finish(t.err)
			return
		}
		// Wait for the ack so the reason is known to have arrived; Close's
		// own timer bounds this.
		select {
		case <-s.acked:
		case <-s.done:
		}
		s.finish(t.err)
	case termFail:
		// Best effort: the reason is already decided, whether it arrives or not.
		s.conn.Write(appendRecord(buf, kindClose, []byte(t.err.Reason)))
		s.finish(t.err)
	case termPeer:
		s.conn.Write(appendRecord(buf, kindCloseAck, nil))
		s.finish(t.err)
	}
}

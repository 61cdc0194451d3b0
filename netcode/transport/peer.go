package transport

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	mrand "math/rand/v2"
	"strings"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/rewindnet/rewind/netcode/transport/internal/arq"
	"github.com/rewindnet/rewind/netcode/transport/internal/fec"
)

// Peer is the dialling end of one session with no socket, goroutine or
// timer of its own: its owner carries the packets. It speaks what Dial's
// sessions speak (the hello and welcome records, frames, keepalives, the
// close reason) in the same packet layout (FEC, encryption), so any
// listener serves it. A program that runs many sessions from one
// goroutine — a load generator, a simulator — drives each Peer:
//
//	p, _ := transport.NewPeer(cfg, time.Now()) // the hello is queued
//	// a packet arrived for p:
//	p.Input(now, pkt)
//	for _, f := range p.Frames() { handle(f) }
//	p.Send(frame)
//	// at p.Deadline(now) at the latest, and after Input or Send:
//	p.Flush(now, func(pkt []byte) { sendTo(listener, pkt) })
//
// A Peer is not safe for concurrent use. Its time is what the owner
// passes in; it never reads the clock itself.
type Peer struct {
	cfg     Config
	block   kcp.BlockCrypt
	arq     *arq.Conn
	fenc    *fec.Encoder
	fdec    *fec.Decoder
	epoch   time.Time
	rng     *mrand.ChaCha8
	open    bool // welcomed
	err     *CloseError
	closing bool // Close queued the reason: waiting for its ack
	closeAt int64
	frames  [][]byte // received, not yet taken
	taken   [][]byte // handed out by the last Frames call
	old     [][]byte // handed out by the call before: recycled by the next
	spare   [][]byte // frame buffers to reuse
	queued  int      // bytes in frames
	wbuf    []byte

	born, lastRecv, lastSend int64 // ms since epoch
	stats                    Stats
}

// NewPeer starts a session at now: the hello record is queued, so the
// first Flush sends it. cfg is validated as Dial validates it.
func NewPeer(cfg Config, now time.Time) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	block, err := cfg.blockCrypt()
	if err != nil {
		return nil, err
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("transport: seed: %w", err)
	}
	p := &Peer{cfg: cfg, block: block, epoch: now, rng: mrand.NewChaCha8(seed),
		wbuf: make([]byte, 0, maxPacket)}
	room := 0
	if block != nil {
		room += cryptHeaderSize
	}
	if cfg.DataShards > 0 {
		room += fec.DataHeaderSize
		if p.fenc, err = fec.NewEncoder(cfg.DataShards, cfg.ParityShards); err != nil {
			return nil, err
		}
		if p.fdec, err = fec.NewDecoder(cfg.DataShards, cfg.ParityShards); err != nil {
			return nil, err
		}
	}
	p.arq = arq.New(binary.LittleEndian.Uint32(seed[:4]), arq.Config{
		MTU:          cfg.MTU - room,
		SendWindow:   cfg.SendWindow,
		RecvWindow:   cfg.RecvWindow,
		Interval:     uint32(cfg.Interval / time.Millisecond),
		NoDelay:      cfg.NoDelay,
		FastResend:   cfg.Resend,
		NoCongestion: cfg.NoCongestion,
	})
	p.writeRecord(kindHello, helloPayload())
	return p, nil
}

func (p *Peer) ms(now time.Time) int64 { return int64(now.Sub(p.epoch) / time.Millisecond) }

// Open reports whether the listener welcomed the session and it has not
// closed since.
func (p *Peer) Open() bool { return p.open && p.err == nil }

// Err returns why the session closed (a *CloseError), or nil while it is
// in its handshake or open.
func (p *Peer) Err() error {
	if p.err == nil {
		return nil
	}
	return p.err
}

// Stats returns the session's counters (Global is left zero).
func (p *Peer) Stats() Stats {
	st := p.stats
	srtt, rttvar, rto := p.arq.RTT()
	st.SRTT = time.Duration(srtt) * time.Millisecond
	st.RTTVar = time.Duration(rttvar) * time.Millisecond
	st.RTO = time.Duration(rto) * time.Millisecond
	return st
}

// Send queues one frame. It fails once the session is closing or closed,
// and with ErrFrameTooLarge for a frame over MaxFrame. Frames sent before
// the welcome wait for it in KCP's queue; the window bounds what is in
// flight, and beyond SendQueueFrames frames queued the session closes
// (a Peer has no queue of its own to drop from).
func (p *Peer) Send(frame []byte) error {
	if p.err != nil || p.closing {
		return p.closedErr()
	}
	if len(frame) > p.cfg.MaxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), p.cfg.MaxFrame)
	}
	if p.arq.Pending() >= p.cfg.SendQueueFrames+2*p.cfg.SendWindow {
		p.fail(&CloseError{Reason: "send queue full", Err: fmt.Errorf("%w: %d segments pending", ErrStream, p.arq.Pending())})
		return p.err
	}
	p.writeRecord(kindFrame, frame)
	p.stats.FramesSent++
	p.stats.BytesSent += uint64(len(frame))
	return nil
}

func (p *Peer) closedErr() error {
	if p.err != nil {
		return p.err
	}
	return &CloseError{Reason: "closing"}
}

// Frames returns the frames received since the last call, in order. The
// slices stay valid until the call after next.
func (p *Peer) Frames() [][]byte {
	// The frames handed out two calls ago are no longer valid: their
	// buffers take the next frames.
	for i, b := range p.old {
		if cap(b) <= maxSpareFrame && len(p.spare) < maxSpareFrames {
			p.spare = append(p.spare, b[:0])
		}
		p.old[i] = nil
	}
	p.old, p.taken, p.frames = p.taken, p.frames, p.old[:0]
	p.queued = 0
	return p.taken
}

// A Peer keeps up to maxSpareFrames buffers of at most maxSpareFrame
// bytes of the frames it handed out, for the frames it receives next.
const (
	maxSpareFrames = 16
	maxSpareFrame  = 4096
)

// writeRecord queues one record: its header, then its payload, packed
// into the stream as one write would pack them, without copying them
// together first.
func (p *Peer) writeRecord(kind byte, payload []byte) {
	var h [headerSize]byte
	h[0] = kind
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	p.arq.Write(h[:])
	p.arq.Write(payload)
}

// Close queues the reason for the listener; the next Flushes send it and
// the session counts as closed once it is acknowledged or CloseLinger
// passed.
func (p *Peer) Close(now time.Time, reason string) {
	if p.err != nil || p.closing {
		return
	}
	p.closing, p.closeAt = true, p.ms(now)
	p.writeRecord(kindClose, []byte(truncateReason(reason)))
}

// Input handles one packet from the listener, decrypting it in place.
// Packets that fail the checks are dropped silently (counted nowhere but
// here: they cannot be told from the network's noise).
func (p *Peer) Input(now time.Time, pkt []byte) {
	if p.err != nil {
		return
	}
	t := p.ms(now)
	if p.block != nil {
		if len(pkt) < cryptHeaderSize+arq.Overhead {
			return
		}
		p.block.Decrypt(pkt, pkt)
		if crc32.ChecksumIEEE(pkt[cryptHeaderSize:]) != binary.LittleEndian.Uint32(pkt[nonceSize:]) {
			return
		}
		pkt = pkt[cryptHeaderSize:]
	}
	if p.fdec != nil {
		if !fec.IsFEC(pkt) {
			return
		}
		if d := fec.Payload(pkt); d != nil {
			p.arq.Input(uint32(t), d, true)
		}
		p.fdec.Add(pkt, func(d []byte) { p.arq.Input(uint32(t), d, false) })
	} else {
		p.arq.Input(uint32(t), pkt, true)
	}
	p.parse(t)
}

// parse takes the complete records off the stream.
func (p *Peer) parse(t int64) {
	for p.err == nil {
		st := p.arq.Stream()
		if len(st) < headerSize {
			return
		}
		kind, n, err := checkHeader(st[:headerSize], p.cfg.MaxFrame)
		if err != nil {
			p.fail(&CloseError{Reason: truncateReason(err.Error()), Err: err})
			return
		}
		if len(st) < headerSize+n {
			return
		}
		payload := st[headerSize : headerSize+n]
		p.lastRecv = t
		switch {
		case !p.open:
			if kind != kindWelcome || checkHello(payload) != nil {
				p.fail(&CloseError{Reason: "no welcome", Err: fmt.Errorf("%w: %w: record kind %d first", ErrHandshake, ErrProtocol, kind)})
				return
			}
			p.open = true
		case kind == kindFrame:
			if len(p.frames) >= p.cfg.RecvQueueFrames || p.queued+n > p.cfg.RecvQueueBytes {
				p.fail(&CloseError{Reason: "receive queue overflow", Err: ErrRecvOverflow})
				return
			}
			var b []byte
			if k := len(p.spare); k > 0 && cap(p.spare[k-1]) >= n {
				b = p.spare[k-1]
				p.spare = p.spare[:k-1]
			}
			p.frames = append(p.frames, append(b, payload...))
			p.queued += n
			p.stats.FramesReceived++
			p.stats.BytesReceived += uint64(n)
		case kind == kindKeepAlive:
		case kind == kindClose:
			p.writeRecord(kindCloseAck, nil)
			p.err = &CloseError{Reason: strings.ToValidUTF8(string(payload), "?"), Remote: true, Err: ErrPeerClosed}
		case kind == kindCloseAck:
			if p.closing {
				p.err = &CloseError{Reason: "closed"}
			}
		default:
			p.fail(&CloseError{Reason: "unexpected record", Err: fmt.Errorf("%w: record kind %d after the handshake", ErrProtocol, kind)})
		}
		p.arq.Consume(headerSize + n)
	}
}

// fail closes the session, telling the listener why on the next Flush.
func (p *Peer) fail(ce *CloseError) {
	if p.err != nil {
		return
	}
	p.writeRecord(kindClose, []byte(truncateReason(ce.Reason)))
	p.err = ce
}

// Deadline returns when Flush must run next at the latest, asked at now: the KCP timer
// while anything is owed, the keepalive, the idle or handshake timeout.
func (p *Peer) Deadline(now time.Time) time.Time {
	t := p.lastRecv + ms(p.cfg.IdleTimeout)
	if !p.open {
		t = p.born + ms(p.cfg.HandshakeTimeout)
	}
	t = min(t, p.lastSend+ms(p.cfg.KeepAlive))
	if p.closing {
		t = min(t, p.closeAt+ms(p.cfg.CloseLinger))
	}
	// KCP's clock wraps after 49 days: a Peer is not meant to live that long.
	if d, ok := p.arq.Deadline(uint32(p.ms(now))); ok {
		t = min(t, int64(d))
	}
	return p.epoch.Add(time.Duration(t) * time.Millisecond)
}

// Flush runs the timers due at now and sends, through emit, every packet
// owed (KCP segments and acknowledgements, FEC parity, a keepalive after
// KeepAlive of silence). emit's slice is valid only during the call.
func (p *Peer) Flush(now time.Time, emit func(pkt []byte)) {
	t := p.ms(now)
	switch {
	case p.err != nil:
	case !p.open && t-p.born >= ms(p.cfg.HandshakeTimeout):
		p.err = &CloseError{Reason: "no welcome", Err: fmt.Errorf("%w: no answer within %v", ErrHandshake, p.cfg.HandshakeTimeout)}
	case t-p.lastRecv >= ms(p.cfg.IdleTimeout) && p.open:
		p.err = &CloseError{Reason: fmt.Sprintf("nothing received for %v", p.cfg.IdleTimeout), Err: ErrIdleTimeout}
	case p.closing && t-p.closeAt >= ms(p.cfg.CloseLinger):
		p.err = &CloseError{Reason: "closed"}
	case p.open && t-p.lastSend >= ms(p.cfg.KeepAlive):
		p.writeRecord(kindKeepAlive, nil)
	}
	d, ok := p.arq.Deadline(uint32(t))
	due := ok && int32(d-uint32(t)) <= 0
	if !due && !p.arq.Owed(p.cfg.AckNoDelay) {
		return
	}
	p.lastSend = t
	if err := p.arq.Flush(uint32(t), func(seg []byte) { p.emit(t, seg, emit) }); err != nil && p.err == nil {
		p.err = &CloseError{Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrStream, err)}
	}
}

// emit wraps one KCP packet (FEC header, encryption) and hands it and any
// parity packets it completes to out.
func (p *Peer) emit(t int64, seg []byte, out func([]byte)) {
	off := 0
	if p.block != nil {
		off = cryptHeaderSize
	}
	room := off
	if p.fenc != nil {
		room += fec.DataHeaderSize
	}
	b := append(p.wbuf[:room], seg...)
	var parity [][]byte
	if p.fenc != nil {
		parity = p.fenc.Seal(uint32(t), b[off:])
	}
	out(p.seal(b))
	for _, ps := range parity {
		out(p.seal(append(p.wbuf[:off], ps...)))
	}
	p.wbuf = b[:0]
}

// seal encrypts b in place when a Secret is set.
func (p *Peer) seal(b []byte) []byte {
	if p.block != nil {
		binary.LittleEndian.PutUint64(b, p.rng.Uint64())
		binary.LittleEndian.PutUint64(b[8:], p.rng.Uint64())
		binary.LittleEndian.PutUint32(b[nonceSize:], crc32.ChecksumIEEE(b[cryptHeaderSize:]))
		p.block.Encrypt(b, b)
	}
	return b
}

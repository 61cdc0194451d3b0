// Package transport carries frames — opaque byte slices, typically one
// encoded batch of protocol messages — between a game client and an
// authority over KCP (reliable, ordered, low-latency ARQ on UDP), with
// optional forward error correction and encryption.
//
// # Opening sessions
//
// An authority listens, a client dials. Both take a Config; start from a
// preset and change what you need:
//
//	cfg := transport.Internet()
//	cfg.Secret = sharedSecret // turns encryption on; both ends must agree
//
//	l, err := transport.Listen(":7777", cfg)
//	...
//	for {
//		s, err := l.Accept(ctx)
//		if err != nil {
//			return err // the listener closed
//		}
//		go serve(s)
//	}
//
//	s, err := transport.Dial(ctx, "authority.example:7777", cfg)
//
// Serve and DialConn do the same over any net.PacketConn the caller owns,
// such as a lagsim.Conn simulating a bad network. A Peer is a dialling
// end with no socket or goroutine at all: its owner carries its packets,
// so one goroutine can drive many sessions (a load generator does).
//
// A dialled session runs on a kcp-go session. A listener runs one socket
// loop: a single goroutine owns its socket and every session it accepts,
// reads packets in batches (recvmmsg on a UDP socket), hands each
// session's frames over once per batch, flushes each session once and
// sends all their packets in one batch (sendmmsg). Its only timer is the
// socket's read deadline, set to the earliest of the sessions' deadlines
// (retransmissions and delayed acknowledgements only while any are owed,
// keepalives, timeouts), so an accepted session costs no goroutine and no
// timer of its own, and a quiet one wakes the loop only for its
// keepalive. Both ends speak kcp-go's packet format.
//
// Dial returns after a handshake: the listener must answer within
// Config.HandshakeTimeout (or before ctx ends). A listener with another
// Secret or protocol version never answers, so that shows as
// a handshake timeout.
//
// # Admission
//
// A listener's socket loop asks a Guard, which drops, before a session is
// allocated, every packet from an address without a session
// that is not a proper opening (what a dialer sends first: a KCP data
// segment with sequence number 0 carrying the whole hello record,
// decrypted and checksummed when a Secret is set), and every opening over
// Config.HandshakeRatePerHost per second from its IP address or
// Config.HandshakeRate per second in all. Garbage from many source
// addresses, or conversations that send part of a hello and stop, so cost
// a parse each and hold no handshake slot. Listener.GuardStats counts the
// decisions. Clients behind one address share its rate.
//
// # The session loop
//
//	// Any goroutine: queue frames; Send never waits for the network.
//	s.Send(frame, transport.Data)
//	s.Send(ping, transport.Control) // overtakes queued Data
//
//	// One goroutine: receive frames until the session closes.
//	for {
//		f, err := s.Recv(ctx)
//		if err != nil {
//			var ce *transport.CloseError
//			errors.As(err, &ce) // ce.Reason, ce.Remote
//			return
//		}
//		handle(f)
//	}
//
//	s.Close("shutting down") // the peer's Recv reports this reason
//
// A goroutine that serves many sessions drains them instead of blocking
// in Recv for each: Notify registers a function the session calls when
// frames are waiting (once per burst) and when it closes; it must not
// block, so it typically lists the session and wakes the serving
// goroutine, which then takes the frames with Drain:
//
//	s.Notify(func() { markReady(s) }) // from the session's goroutines
//
//	// The serving goroutine, for each session marked ready:
//	frames, err := s.Drain(buf[:0], 256)
//	for _, f := range frames {
//		handle(f.Data, f.At) // f.At: when the frame arrived
//	}
//	if err != nil {
//		// closed, and every frame it received was returned
//	}
//
// # Rules
//
//  1. Frames arrive whole, in order per class, each at most Config.MaxFrame
//     bytes. Send copies the frame; Recv's slice belongs to the caller.
//  2. Send never blocks. When the send queue is full (SendQueueFrames or
//     SendQueueBytes) the oldest Data frame is dropped — Control frames only
//     when no Data is left — and Stats.SendDropped counts it. A codec whose
//     frames depend on earlier ones must treat a drop as fatal or size the
//     queue so it cannot happen.
//  3. Recv (or Drain) must keep up. The reader never waits for the owner: when
//     RecvQueueFrames frames are unread the session closes with
//     ErrRecvOverflow (and tells the peer), because dropping a frame of a
//     reliable stream would corrupt whatever decodes it.
//  4. A session that hears nothing for IdleTimeout closes with
//     ErrIdleTimeout. Each end sends a keepalive after KeepAlive of silence,
//     so an idle but healthy session stays open.
//  5. An incoming frame over MaxFrame, an unknown record or a malformed one
//     closes the session with ErrFrameTooLarge or ErrProtocol, telling the
//     peer why; nothing is allocated for a length before it is checked.
//  6. Close sends what is queued, then the reason, and waits up to
//     CloseLinger for the peer's acknowledgement. If the network loses the
//     reason the peer closes on its idle timeout instead.
//  7. Every error of a closed session is a *CloseError matching ErrClosed
//     and its cause with errors.Is.
//
// # Counters
//
// Session.Stats reports frames and bytes each way, queue drops and KCP's
// smoothed RTT, RTT variance and RTO for this session. Retransmissions,
// FEC recoveries and checksum failures are counted per process (kcp-go
// counts its own only that way), so Stats.Global carries those, summed
// over every session.
//
// # Wire format
//
// The KCP stream (stream mode) carries records: a 1-byte kind, a 4-byte
// big-endian payload length, the payload. Kinds: hello and welcome (the
// handshake: "RWND" and ProtocolVersion), frame, keepalive, close (the
// reason), close-ack. Packets use kcp-go's layout: with a Secret, a
// 16-byte nonce and a CRC32 of the rest, encrypted; with FEC, kcp-go's FEC
// header (10 data + 3 parity shards in the Internet preset); then KCP
// segments. Encryption, when a Secret is set, is kcp-go's AES
// block crypt (CFB with a CRC32 check per packet) keyed by
// HKDF-SHA256(secret, salt "rewind/transport/v1", info "kcp aes-256 block
// key") to 32 bytes.
package transport

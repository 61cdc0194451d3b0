package transport

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Limits on Config values. Units are in the names.
const (
	MaxFrameLimit   = 16 << 20 // largest MaxFrame a Config may set, bytes
	MaxReasonBytes  = 200      // close reasons are truncated to this many bytes
	MinSecretBytes  = 16       // shortest Secret accepted
	maxShardsTotal  = 255      // Reed–Solomon limit on data+parity shards
	maxWindow       = 65535    // KCP windows travel as 16-bit numbers
	minMTU, maxMTU  = 576, 1500
	minInterval     = 10 * time.Millisecond // kcp-go clamps below this
	maxInterval     = 5 * time.Second       // kcp-go clamps above this
	maxQueueFrames  = 1 << 20
	maxAcceptQueued = 1 << 16
	maxCoalesce     = 50 * time.Millisecond
	maxSocketBuffer = 256 << 20
)

// KDF parameters. Both ends derive the AES-256 key from Config.Secret with
// HKDF-SHA256 (RFC 5869) using this salt and info, so the same secret gives
// the same key everywhere and a key for nothing else.
const (
	kdfSalt = "rewind/transport/v1"
	kdfInfo = "kcp aes-256 block key"
	keySize = 32
)

// ErrInvalidConfig is returned (wrapped) by Config.Validate.
var ErrInvalidConfig = errors.New("transport: invalid config")

// Config is every setting of a session and a listener. Start from a preset
// (LAN or Internet), change what you need, and let Listen/Dial validate it.
// Both ends of a session must agree on Secret, DataShards and ParityShards
// and MaxFrame should match; the rest is per end.
type Config struct {
	// KCP tuning, see kcp-go's SetNoDelay/SetWindowSize/SetMtu.
	NoDelay      bool          // nodelay mode: lower minimum RTO, no exponential back-off
	Interval     time.Duration // internal update (flush) interval, 10 ms to 5 s
	Resend       int           // fast retransmit after this many out-of-order acks (0: off)
	NoCongestion bool          // disable congestion control (games prefer latency)
	SendWindow   int           // packets in flight, 1 to 65535
	RecvWindow   int           // packets buffered out of order, 1 to 65535
	MTU          int           // UDP payload size, 576 to 1500 bytes
	AckNoDelay   bool          // acknowledge every packet at once instead of once per Interval

	// Forward error correction (Reed–Solomon, kcp-go's FEC): every
	// DataShards packets are followed by ParityShards parity packets, so any
	// ParityShards losses in a group are repaired without a retransmit.
	// Both zero turns FEC off.
	DataShards, ParityShards int

	// Secret turns on encryption when non-empty (at least MinSecretBytes):
	// packets are encrypted with AES-256 in kcp-go's CFB mode with a CRC32
	// integrity check, under a key derived from Secret by HKDF-SHA256. A
	// peer with another secret is never heard: its packets fail the check.
	Secret []byte

	// MaxFrame is the largest frame, in bytes, a session sends or accepts.
	// A larger incoming frame closes the session before anything is
	// allocated for it.
	MaxFrame int

	// KeepAlive is how long a session may stay silent before it sends a
	// keepalive record; IdleTimeout is how long it waits without receiving
	// anything before it closes with ErrIdleTimeout. IdleTimeout must exceed
	// KeepAlive (a few times over, so lost keepalives are tolerated).
	KeepAlive   time.Duration
	IdleTimeout time.Duration

	// HandshakeTimeout bounds the opening exchange (Dial, and each incoming
	// session before Accept sees it).
	HandshakeTimeout time.Duration
	// CloseLinger bounds how long Close waits to send what is queued and
	// for the peer to acknowledge the close reason.
	CloseLinger time.Duration

	// The send queue holds frames until KCP's window takes them. Beyond
	// either limit the oldest Data frame is dropped (the oldest Control
	// frame once no Data is left) and counted in Stats.SendDropped.
	SendQueueFrames int
	SendQueueBytes  int
	// RecvQueueFrames and RecvQueueBytes bound the complete frames
	// waiting for Recv. A session whose owner falls this far behind is
	// closed with ErrRecvOverflow rather than stalling its reader or
	// dropping frames. RecvQueueBytes must hold one MaxFrame.
	RecvQueueFrames int
	RecvQueueBytes  int

	// AcceptQueue bounds the sessions that finished their handshake and wait
	// for Listener.Accept (and, separately, those still in their handshake).
	// Beyond it new sessions are refused with a close reason.
	AcceptQueue int

	// Coalesce, on a listener, is how long its socket loop lets packets
	// gather after handling a batch before it reads again (at most 50 ms;
	// zero: it reads again at once). Packets that arrive meanwhile are
	// read with one system call and their sessions flushed once, at the
	// price of up to Coalesce of added latency each way. Dialled sessions
	// ignore it.
	Coalesce time.Duration

	// SocketBuffer, on a listener that opens its own socket (Listen), is
	// the size asked of the kernel for the socket's receive and send
	// buffers, in bytes (at most 256 MiB; zero: the system's default).
	// Linux caps it at net.core.rmem_max/wmem_max. One socket serves every
	// session, so its buffer must hold what arrives while the loop is
	// not reading: at the system's default (about 208 KiB, a few hundred
	// small packets) 500 clients at 30 packets a second overflow it in
	// about 10 ms, and every packet dropped costs a retransmission.
	// Dialled sessions and Serve's conns ignore it.
	SocketBuffer int

	// A listener's Guard admits new sessions: only packets that open a
	// session properly (see Guard), at most HandshakeRatePerHost per
	// second from one IP address (burst: two seconds' worth) and
	// HandshakeRate per second in all (burst: one second's worth). Clients
	// behind one address (a NAT) share its rate. Dialers ignore both.
	HandshakeRatePerHost float64
	HandshakeRate        float64
}

// LAN is tuned for a local network: immediate acks, no FEC, short timeouts.
func LAN() Config {
	return Config{
		NoDelay:          true,
		Interval:         10 * time.Millisecond,
		Resend:           2,
		NoCongestion:     true,
		SendWindow:       256,
		RecvWindow:       256,
		MTU:              1400,
		AckNoDelay:       true,
		MaxFrame:         1 << 20,
		KeepAlive:        time.Second,
		IdleTimeout:      5 * time.Second,
		HandshakeTimeout: 3 * time.Second,
		CloseLinger:      time.Second,
		SendQueueFrames:  1024,
		SendQueueBytes:   4 << 20,
		RecvQueueFrames:  1024,
		RecvQueueBytes:   4 << 20,
		AcceptQueue:      128,
		SocketBuffer:     4 << 20,

		HandshakeRatePerHost: 16,
		HandshakeRate:        512,
	}
}

// Internet is tuned for the public internet: a conservative MTU that fits
// common tunnels, FEC repairing up to 3 losses in 13 packets, larger
// windows for longer round trips, acks batched per interval and timeouts
// that ride out a few seconds of outage.
func Internet() Config {
	c := LAN()
	c.SendWindow, c.RecvWindow = 512, 512
	c.MTU = 1200
	c.AckNoDelay = false
	c.DataShards, c.ParityShards = 10, 3
	c.KeepAlive = 2 * time.Second
	c.IdleTimeout = 15 * time.Second
	c.HandshakeTimeout = 5 * time.Second
	c.CloseLinger = 2 * time.Second
	return c
}

// Validate reports the first setting that is out of range.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Interval < minInterval || c.Interval > maxInterval:
		return bad("Interval %v outside [%v, %v]", c.Interval, minInterval, maxInterval)
	case c.Resend < 0:
		return bad("Resend %d is negative", c.Resend)
	case c.SendWindow < 1 || c.SendWindow > maxWindow:
		return bad("SendWindow %d outside [1, %d]", c.SendWindow, maxWindow)
	case c.RecvWindow < 1 || c.RecvWindow > maxWindow:
		return bad("RecvWindow %d outside [1, %d]", c.RecvWindow, maxWindow)
	case c.MTU < minMTU || c.MTU > maxMTU:
		return bad("MTU %d outside [%d, %d]", c.MTU, minMTU, maxMTU)
	case c.DataShards < 0 || c.ParityShards < 0:
		return bad("negative FEC shards %d/%d", c.DataShards, c.ParityShards)
	case (c.DataShards == 0) != (c.ParityShards == 0):
		return bad("FEC needs both DataShards and ParityShards (or neither), got %d/%d", c.DataShards, c.ParityShards)
	case c.DataShards+c.ParityShards > maxShardsTotal:
		return bad("FEC shards %d+%d exceed %d", c.DataShards, c.ParityShards, maxShardsTotal)
	case len(c.Secret) > 0 && len(c.Secret) < MinSecretBytes:
		return bad("Secret of %d bytes is shorter than %d", len(c.Secret), MinSecretBytes)
	case c.MaxFrame < 1 || c.MaxFrame > MaxFrameLimit:
		return bad("MaxFrame %d outside [1, %d]", c.MaxFrame, MaxFrameLimit)
	case c.KeepAlive <= 0:
		return bad("KeepAlive %v must be positive", c.KeepAlive)
	case c.IdleTimeout <= c.KeepAlive:
		return bad("IdleTimeout %v must exceed KeepAlive %v", c.IdleTimeout, c.KeepAlive)
	case c.HandshakeTimeout <= 0:
		return bad("HandshakeTimeout %v must be positive", c.HandshakeTimeout)
	case c.CloseLinger <= 0:
		return bad("CloseLinger %v must be positive", c.CloseLinger)
	case c.SendQueueFrames < 1 || c.SendQueueFrames > maxQueueFrames:
		return bad("SendQueueFrames %d outside [1, %d]", c.SendQueueFrames, maxQueueFrames)
	case c.SendQueueBytes < c.MaxFrame:
		return bad("SendQueueBytes %d cannot hold one MaxFrame (%d)", c.SendQueueBytes, c.MaxFrame)
	case c.RecvQueueFrames < 1 || c.RecvQueueFrames > maxQueueFrames:
		return bad("RecvQueueFrames %d outside [1, %d]", c.RecvQueueFrames, maxQueueFrames)
	case c.RecvQueueBytes < c.MaxFrame:
		return bad("RecvQueueBytes %d cannot hold one MaxFrame (%d)", c.RecvQueueBytes, c.MaxFrame)
	case c.Coalesce < 0 || c.Coalesce > maxCoalesce:
		return bad("Coalesce %v outside [0, %v]", c.Coalesce, maxCoalesce)
	case c.SocketBuffer < 0 || c.SocketBuffer > maxSocketBuffer:
		return bad("SocketBuffer %d outside [0, %d]", c.SocketBuffer, maxSocketBuffer)
	case c.AcceptQueue < 1 || c.AcceptQueue > maxAcceptQueued:
		return bad("AcceptQueue %d outside [1, %d]", c.AcceptQueue, maxAcceptQueued)
	case !(c.HandshakeRatePerHost >= 1) || !(c.HandshakeRate >= 1):
		return bad("HandshakeRatePerHost %v and HandshakeRate %v must be at least 1", c.HandshakeRatePerHost, c.HandshakeRate)
	}
	return nil
}

// blockCrypt returns the packet cipher for c, nil when no secret is set.
func (c *Config) blockCrypt() (kcp.BlockCrypt, error) {
	if len(c.Secret) == 0 {
		return nil, nil
	}
	key, err := deriveKey(c.Secret)
	if err != nil {
		return nil, err
	}
	return kcp.NewAESBlockCrypt(key)
}

// deriveKey derives the AES-256 key from a secret (HKDF-SHA256, kdfSalt,
// kdfInfo).
func deriveKey(secret []byte) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, secret, []byte(kdfSalt), kdfInfo, keySize)
	if err != nil {
		return nil, fmt.Errorf("transport: derive key: %w", err)
	}
	return key, nil
}

// tune applies c's KCP settings to a session.
func (c *Config) tune(s *kcp.UDPSession) {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	// Stream mode packs small writes into full segments and lets the record
	// layer span segments; kcp-go marks the setter deprecated but it is
	// the only way to turn the mode on.
	//lint:ignore SA1019 stream mode is required by the record layer
	s.SetStreamMode(true)
	s.SetWriteDelay(false)
	s.SetNoDelay(b(c.NoDelay), int(c.Interval/time.Millisecond), c.Resend, b(c.NoCongestion))
	s.SetWindowSize(c.SendWindow, c.RecvWindow)
	s.SetMtu(c.MTU)
	s.SetACKNoDelay(c.AckNoDelay)
}

package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A session's KCP stream is a sequence of records:
//
//	kind    1 byte
//	length  4 bytes, big-endian: the payload size
//	payload length bytes
//
// Kinds are append-only. Only kindFrame carries the owner's data; the others
// belong to the transport.
const (
	kindHello     byte = 1 // dialer → listener: handshakeMagic, protocolVersion
	kindWelcome   byte = 2 // listener → dialer: handshakeMagic, protocolVersion
	kindFrame     byte = 3 // one frame for the owner
	kindKeepAlive byte = 4 // empty; proves the peer is alive
	kindClose     byte = 5 // the close reason (UTF-8, at most MaxReasonBytes)
	kindCloseAck  byte = 6 // empty; the close reason arrived
)

// ProtocolVersion is the transport's record-layer version, exchanged in the
// handshake. Peers with different versions refuse each other.
const ProtocolVersion = 1

const (
	headerSize     = 5
	handshakeMagic = "RWND"
	// maxControlPayload bounds every record that is not a frame.
	maxControlPayload = 256
)

// errors of the record layer; the session wraps them.
var (
	// ErrFrameTooLarge: a frame exceeds MaxFrame (on Send, or arriving).
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrProtocol: the peer sent something the record layer does not allow.
	ErrProtocol = errors.New("transport: protocol violation")
)

// appendRecord appends one record to dst.
func appendRecord(dst []byte, kind byte, payload []byte) []byte {
	dst = append(dst, kind)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// checkHeader validates a record header against maxFrame before anything is
// read or allocated for its payload. It returns the payload length.
func checkHeader(h []byte, maxFrame int) (kind byte, n int, err error) {
	kind = h[0]
	size := binary.BigEndian.Uint32(h[1:headerSize])
	switch kind {
	case kindFrame:
		if uint64(size) > uint64(maxFrame) {
			return kind, 0, fmt.Errorf("%w: incoming frame of %d bytes exceeds %d", ErrFrameTooLarge, size, maxFrame)
		}
	case kindHello, kindWelcome, kindClose:
		if size > maxControlPayload {
			return kind, 0, fmt.Errorf("%w: record kind %d of %d bytes exceeds %d", ErrProtocol, kind, size, maxControlPayload)
		}
	case kindKeepAlive, kindCloseAck:
		if size != 0 {
			return kind, 0, fmt.Errorf("%w: record kind %d carries %d bytes, want 0", ErrProtocol, kind, size)
		}
	default:
		return kind, 0, fmt.Errorf("%w: unknown record kind %d", ErrProtocol, kind)
	}
	return kind, int(size), nil
}

// helloPayload is the payload of kindHello and kindWelcome.
func helloPayload() []byte { return append([]byte(handshakeMagic), ProtocolVersion) }

// checkHello validates a hello or welcome payload.
func checkHello(p []byte) error {
	if len(p) != len(handshakeMagic)+1 || string(p[:len(handshakeMagic)]) != handshakeMagic {
		return fmt.Errorf("%w: not a rewind transport peer", ErrProtocol)
	}
	if v := p[len(handshakeMagic)]; v != ProtocolVersion {
		return fmt.Errorf("%w: peer speaks version %d, this end %d", ErrProtocol, v, ProtocolVersion)
	}
	return nil
}

// truncateReason cuts a close reason to MaxReasonBytes on a rune boundary.
func truncateReason(s string) string {
	if len(s) <= MaxReasonBytes {
		return s
	}
	s = s[:MaxReasonBytes]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

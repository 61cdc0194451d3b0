package timesync

import (
	"errors"
	"fmt"
)

// Errors returned for bad input. Match them with errors.Is; the returned
// error wraps one of these with the offending values.
var (
	// ErrBadSample: the four timestamps of an exchange are not ordered
	// (client receive before client send, server send before server
	// receive, or a round trip shorter than the server's hold time).
	ErrBadSample = errors.New("timesync: bad sample")
	// ErrRTTTooLarge: the exchange took longer than Config.MaxRTT; such a
	// sample bounds the offset too loosely to be worth keeping.
	ErrRTTTooLarge = errors.New("timesync: round trip too large")
	// ErrUnexpectedReply: a reply answers no request this clock has
	// outstanding (a duplicate, a forgery, or one older than the
	// outstanding limit).
	ErrUnexpectedReply = errors.New("timesync: unexpected reply")
	// ErrReference: a reference clock does not follow anyone.
	ErrReference = errors.New("timesync: reference clock takes no samples")
	// ErrBadConfig: a Config field is out of range.
	ErrBadConfig = errors.New("timesync: bad config")
)

// Request is what a follower sends to ask for the reference time.
// ClientSend is the follower's local time (its Source, not its synced
// clock) when it sent the request, in nanoseconds. The server echoes it.
type Request struct {
	ClientSend int64
}

// Reply is the server's answer. ServerRecv and ServerSend are the
// server's synced time, in nanoseconds, when the request arrived and when
// the reply left; ClientSend is echoed from the Request. The fields are
// plain integers so that any codec can carry them one by one.
type Reply struct {
	ClientSend int64
	ServerRecv int64
	ServerSend int64
}

// Answer builds the reply to req. recv and send are the server's synced
// clock readings taken when req arrived and just before the reply leaves:
// taking them as close to the socket as possible keeps the server's hold
// time out of the round trip. A server answers only once its own clock is
// synced (a reference is synced from the start), because followers adopt
// whatever time it stamps.
func Answer(req Request, recv, send int64) Reply {
	return Reply{ClientSend: req.ClientSend, ServerRecv: recv, ServerSend: send}
}

// Sample is one complete exchange: the reply plus the follower's local
// time when it arrived. Times are nanoseconds; ClientSend and ClientRecv
// are on the follower's local clock, ServerRecv and ServerSend on the
// server's synced clock.
type Sample struct {
	ClientSend int64
	ServerRecv int64
	ServerSend int64
	ClientRecv int64
}

// SampleOf joins a reply with the local time it was received.
func SampleOf(r Reply, clientRecv int64) Sample {
	return Sample{ClientSend: r.ClientSend, ServerRecv: r.ServerRecv, ServerSend: r.ServerSend, ClientRecv: clientRecv}
}

// RTT is the time the exchange spent on the network: the whole round trip
// less the server's hold time.
func (s Sample) RTT() int64 {
	return (s.ClientRecv - s.ClientSend) - (s.ServerSend - s.ServerRecv)
}

// Offset is Cristian's single-exchange estimate of server minus client
// time, exact when both directions took equally long. Its error is at
// most RTT()/2.
func (s Sample) Offset() int64 {
	// ((t1-t0) + (t2-t3)) / 2, rearranged so that no intermediate
	// overflows for a sample that passed Check.
	return (s.ServerRecv - s.ClientSend) - s.RTT()/2
}

// Check reports why s cannot be a real exchange, or nil. Timestamps must
// be non-negative (nanoseconds since some epoch), which also keeps every
// difference the estimator takes from overflowing.
func (s Sample) Check(maxRTT int64) error {
	switch {
	case s.ClientSend < 0 || s.ServerRecv < 0 || s.ServerSend < 0 || s.ClientRecv < 0:
		return fmt.Errorf("%w: negative timestamp in %+v", ErrBadSample, s)
	case s.ClientRecv < s.ClientSend:
		return fmt.Errorf("%w: client receive %d before client send %d", ErrBadSample, s.ClientRecv, s.ClientSend)
	case s.ServerSend < s.ServerRecv:
		return fmt.Errorf("%w: server send %d before server receive %d", ErrBadSample, s.ServerSend, s.ServerRecv)
	case s.RTT() < 0:
		return fmt.Errorf("%w: server held the request %d ns, longer than the round trip %d ns",
			ErrBadSample, s.ServerSend-s.ServerRecv, s.ClientRecv-s.ClientSend)
	case s.RTT() > maxRTT:
		return fmt.Errorf("%w: %d ns > %d ns", ErrRTTTooLarge, s.RTT(), maxRTT)
	}
	return nil
}

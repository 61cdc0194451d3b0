package sim

import (
	"math/rand/v2"
	"time"

	"github.com/rewindnet/rewind/netcode/lagsim"
)

// segment is the payload one transport packet carries (KCP's MSS with its
// default MTU): a frame larger than this travels as several packets and
// arrives when the last of them does.
const segment = 1376

// maxTries bounds the transmissions of one packet: a profile with very high
// loss still delivers, late, rather than looping.
const maxTries = 32

// link is one direction of one client's connection: the transport's
// reliable, ordered delivery over a lossy packet network. Each packet's
// fate comes from lagsim's pure decision function; a lost packet is sent
// again after the retransmission timeout (doubling, capped), so loss shows
// up as delay; a frame is delivered only after every frame sent before it
// on the link (head-of-line blocking), so reordering and duplication at the
// packet level show up as delay too, never as reordered or duplicate
// frames.
type link struct {
	prof *lagsim.Profile
	rng  *rand.Rand
	dec  lagsim.Link
	fast int64 // delay of the first resend (fast retransmit), ns
	rto  int64 // retransmission timeout after that, ns
	last int64 // arrival time of the latest frame scheduled

	// counters
	frames, bytes, packets, resent uint64
}

// fastLimit is how many transmissions of one packet fast retransmit
// makes before only the timeout is left (KCP's IKCP_FASTACK_LIMIT).
const fastLimit = 5

// newLink models KCP in its game preset: a lost packet is resent as soon
// as the acknowledgements of two packets sent after it come back (fast
// retransmit: about one round trip plus two frames later, frame being the
// sender's period), up to fastLimit transmissions; after that it waits
// for the retransmission timeout (the round trip plus four times its
// jitter), growing by half each time as KCP's no-delay mode does.
func newLink(prof *lagsim.Profile, rng *rand.Rand, frame time.Duration) *link {
	rtt := 2 * prof.Delay
	return &link{
		prof: prof, rng: rng,
		fast: int64(rtt + prof.Jitter + 2*frame),
		rto:  int64(rtt + 4*prof.Jitter + 10*time.Millisecond),
	}
}

// send schedules a frame of size bytes sent at now and returns its arrival
// time.
func (l *link) send(now int64, size int) int64 {
	l.frames++
	l.bytes += uint64(size)
	arrive := now
	for left := size; ; left -= segment {
		n := min(left, segment)
		arrive = max(arrive, l.packet(now, n))
		if left <= segment {
			break
		}
	}
	arrive = max(arrive, l.last)
	l.last = arrive
	return arrive
}

// packet returns when one packet of n bytes sent at now arrives, after
// however many transmissions it takes.
func (l *link) packet(now int64, n int) int64 {
	t := now
	wait := l.fast
	for try := 1; ; try++ {
		l.packets++
		d := l.dec.Decide(l.prof, l.rng, time.Unix(0, t), n)
		if !d.Drop || try == maxTries {
			if d.Drop {
				return t + int64(l.prof.Delay)
			}
			return d.At.UnixNano()
		}
		l.resent++
		t += wait
		if try == fastLimit {
			wait = l.rto
		} else if try > fastLimit {
			wait = min(wait*3/2, int64(2*time.Second))
		}
	}
}

// reset forgets the frames in flight: a new transport session starts empty.
func (l *link) reset(now int64) { l.last = now }

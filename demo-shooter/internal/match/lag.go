package match

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rewindnet/rewind/netcode/lagsim"
)

// MaxLagConns bounds the sockets one Lag tracks at once: one per session
// of each client it serves (a reconnecting client closes the old one).
const MaxLagConns = 1024

// Lag is one simulated link shared by a group of clients: every socket it
// makes applies the same profile both ways (so the round trip is twice
// the profile's delay), and Set switches all of them live. It is what the
// demo's 1–7 keys change. Safe for concurrent use.
type Lag struct {
	bind string // local address to bind sockets to

	mu    sync.Mutex // guards the fields below
	prof  lagsim.Profile
	cut   bool // every packet is lost, both ways, whatever prof says
	seed  uint64
	conns map[*lagConn]struct{}
}

// cutProfile is a link that loses every packet.
var cutProfile = lagsim.Profile{Name: "cut", Loss: 1}

// applied returns the profile sockets apply now. l.mu must be held.
func (l *Lag) applied() lagsim.Profile {
	if l.cut {
		return cutProfile
	}
	return l.prof
}

// NewLag returns a Lag with profile p whose sockets bind to bind
// ("127.0.0.1:0" for a loopback authority, ":0" for a remote one) and draw
// their randomness from seed (one stream per socket, in order of making).
func NewLag(bind string, p lagsim.Profile, seed uint64) (*Lag, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Lag{bind: bind, prof: p, seed: seed, conns: make(map[*lagConn]struct{})}, nil
}

// Profile returns the profile in force.
func (l *Lag) Profile() lagsim.Profile {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prof
}

// Set switches every socket, and those made later, to p.
func (l *Lag) Set(p lagsim.Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prof = p
	return l.applyLocked()
}

// SetCut cuts the link (every packet lost, both ways) or restores the
// profile in force, on every socket and on those made later: what the
// demo's L key does, to show a lost connection and its recovery.
func (l *Lag) SetCut(cut bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	return l.applyLocked()
}

// Cut reports whether the link is cut.
func (l *Lag) Cut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut
}

func (l *Lag) applyLocked() error {
	p := l.applied()
	for c := range l.conns {
		if err := c.SetProfile(p, p); err != nil {
			return err
		}
	}
	return nil
}

// PacketConn makes a socket behind the link: the netcode.Options
// PacketConn hook.
func (l *Lag) PacketConn() (net.PacketConn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= MaxLagConns {
		return nil, fmt.Errorf("match: %d lagged sockets open (limit)", len(l.conns))
	}
	l.seed++
	p := l.applied()
	c, err := lagsim.Listen(l.bind, lagsim.Options{Seed: l.seed, Out: p, In: p})
	if err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	lc := &lagConn{Conn: c, l: l}
	l.conns[lc] = struct{}{}
	return lc, nil
}

// Open returns how many sockets are open.
func (l *Lag) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// closeDrain bounds how long closing a socket waits for the packets still
// in flight on the simulated link.
const closeDrain = 500 * time.Millisecond

// lagConn forgets itself in its Lag when closed.
type lagConn struct {
	*lagsim.Conn
	l *Lag
}

// Close lets the packets already sent reach the other side (at most
// closeDrain), as they would on a real network once sent, and then closes
// the socket. Otherwise the last packets of a session would vanish with
// it: the acknowledgement of the authority's close among them, which the
// authority's graceful shutdown then waits its whole CloseLinger for.
func (c *lagConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeDrain)
	defer cancel()
	c.Conn.Drain(ctx)
	return c.Conn.Close()
}

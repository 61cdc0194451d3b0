package match

import (
	"fmt"
	"net"
	"sync"

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
	seed  uint64
	conns map[*lagConn]struct{}
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
	c, err := lagsim.Listen(l.bind, lagsim.Options{Seed: l.seed, Out: l.prof, In: l.prof})
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

// lagConn forgets itself in its Lag when closed.
type lagConn struct {
	*lagsim.Conn
	l *Lag
}

func (c *lagConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

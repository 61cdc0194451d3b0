package match

import (
	"fmt"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// Link thresholds.
const (
	// SilentAfter is how long a connected client may hear nothing before
	// the link shows as silent: the authority flushes every tick and syncs
	// the clock every 100 ms, so a live link is never this quiet.
	SilentAfter = time.Second
	// RecoveredFor is how long a reconnection stays on show.
	RecoveredFor = 3 * time.Second
)

// LinkState is what the window shows of a client's connection.
type LinkState uint8

// Link states.
const (
	LinkUp        LinkState = iota // connected and hearing the authority
	LinkSilent                     // connected, but nothing heard for SilentAfter
	LinkLost                       // the session ended; the client redials
	LinkRecovered                  // connected again, within RecoveredFor
)

// Link follows a client's connection from its events and counters: when
// it last heard the authority, when and why its session ended, and
// whether the reconnection resumed the session (same creator). Observe it
// once per frame; it is pure (wall times are arguments).
type Link struct {
	// Heard is the wall time the client last received a frame.
	Heard time.Time
	// Lost is when the session ended (zero while connected); Why says why.
	Lost time.Time
	Why  string
	// Back is when the client was welcomed again after a loss; Creator is
	// the creator it was welcomed as and Before the one it had. The same
	// creator means the authority resumed the session (the client then
	// re-sends its pending calls as they were), or a restarted authority
	// handed out the same number; another creator is a new player.
	Back            time.Time
	Creator, Before uint32
	// Losses counts sessions lost.
	Losses int

	frames  uint64
	creator uint32
	started bool
}

// Observe takes one frame's events and the client's counters after them,
// at wall time now. It returns whether the connection was lost or came
// back in this frame, for a caller that logs the changes.
func (l *Link) Observe(now time.Time, evs []netcode.Event, st netcode.Stats) (lost, back bool) {
	if !l.started {
		l.started, l.Heard, l.frames, l.creator = true, now, st.FramesIn, st.Creator
	}
	if st.FramesIn != l.frames {
		l.frames, l.Heard = st.FramesIn, now
	}
	for _, ev := range evs {
		switch ev.Kind {
		case netcode.EventDisconnected:
			if l.Lost.IsZero() {
				l.Lost, l.Losses, lost = now, l.Losses+1, true
				l.Why = "session ended"
				if ev.Err != nil {
					l.Why = ev.Err.Error()
				}
			}
		case netcode.EventConnected:
			if !l.Lost.IsZero() {
				l.Lost, l.Back, back = time.Time{}, now, true
				l.Creator, l.Before = st.Creator, l.creator
			}
			l.creator, l.Heard = st.Creator, now
		}
	}
	if st.Creator != 0 {
		l.creator = st.Creator
	}
	return lost, back
}

// State returns the state to show at now.
func (l *Link) State(now time.Time) LinkState {
	switch {
	case !l.Lost.IsZero():
		return LinkLost
	case now.Sub(l.Heard) >= SilentAfter:
		return LinkSilent
	case !l.Back.IsZero() && now.Sub(l.Back) < RecoveredFor:
		return LinkRecovered
	}
	return LinkUp
}

// Again describes the last reconnection: the creator kept or a new one.
func (l *Link) Again() string {
	if l.Creator == l.Before {
		return fmt.Sprintf("as creator %d, as before", l.Creator)
	}
	return fmt.Sprintf("as creator %d, a new player (was %d)", l.Creator, l.Before)
}

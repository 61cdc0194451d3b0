package match

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/quality"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// ErrBadMatch: a match's settings are out of bounds.
var ErrBadMatch = errors.New("match: bad match settings")

// Match bounds and defaults.
const (
	MaxBots = game.MaxPlayers
	// Frame is the bots' frame period: 60 frames a second, like the
	// window's fixed step.
	Frame = time.Second / 60
	// DefaultWarmup is played before measuring: clocks sync, bots join
	// and spread out.
	DefaultWarmup = 2 * time.Second
	// maxSettle bounds the settling after the measured span: the bots
	// stop acting and their clients keep updating until every call has
	// its result (a call times out well before this on any preset link).
	maxSettle    = 15 * time.Second
	dialTimeout  = 20 * time.Second
	childTimeout = 10 * time.Second
)

// Settings configure one headless match.
type Settings struct {
	Profile  lagsim.Profile // every bot's link, both ways
	Bots     int
	Duration time.Duration // measured play, after Warmup
	Warmup   time.Duration // zero: DefaultWarmup
	Seed     uint64
	// Authority returns the command that runs the authority in its own
	// process: a program that ends in Serve on a loopback address, with
	// "127.0.0.1:0" as listen address.
	Authority func() *exec.Cmd
	// Transport of the clients; zero: the netcode default.
	Options netcode.Options
}

func (s *Settings) validate() error {
	switch {
	case s.Bots < 1 || s.Bots > MaxBots:
		return fmt.Errorf("%w: %d bots outside [1, %d]", ErrBadMatch, s.Bots, MaxBots)
	case s.Duration <= 0:
		return fmt.Errorf("%w: duration %v", ErrBadMatch, s.Duration)
	case s.Warmup < 0:
		return fmt.Errorf("%w: warm-up %v", ErrBadMatch, s.Warmup)
	case s.Authority == nil:
		return fmt.Errorf("%w: no authority command", ErrBadMatch)
	}
	return s.Profile.Validate()
}

// Run plays one headless match: an authority in its own process, Bots
// bots over loopback behind the profile, Warmup of play, then Duration
// measured, and returns its quality. After the measured span the bots stop
// acting until the span's calls are answered, so a shot made just before
// the end is judged by its answer rather than counted as lost; the CPU,
// traffic and call counters cover the span only. ctx ends it early (an
// error).
func Run(ctx context.Context, s Settings) (quality.Profile, error) {
	if err := s.validate(); err != nil {
		return quality.Profile{}, err
	}
	if s.Warmup == 0 {
		s.Warmup = DefaultWarmup
	}
	child, err := StartChild(s.Authority(), childTimeout)
	if err != nil {
		return quality.Profile{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			child.Stop(childTimeout)
		}
	}()
	lag, err := NewLag("127.0.0.1:0", s.Profile, s.Seed<<16)
	if err != nil {
		return quality.Profile{}, err
	}
	players, err := dialBots(ctx, child.Addr, lag, s)
	for _, p := range players {
		if p != nil {
			defer p.C.Close()
		}
	}
	if err != nil {
		return quality.Profile{}, err
	}

	tick := time.NewTicker(Frame)
	defer tick.Stop()
	play := func(d time.Duration) error {
		end := time.Now().Add(d)
		for {
			now := time.Now()
			for _, p := range players {
				p.Frame(now)
			}
			if !now.Before(end) {
				return nil
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := play(s.Warmup); err != nil {
		return quality.Profile{}, err
	}
	// Measure from here: fresh recorders, counters as of now.
	base := make([]netcode.Stats, len(players))
	for i, p := range players {
		p.ResetRecorder()
		base[i] = p.C.Stats()
	}
	cpu0, err := child.CPU()
	if err != nil {
		return quality.Profile{}, err
	}
	start := time.Now()
	if err := play(s.Duration); err != nil {
		return quality.Profile{}, err
	}
	span := time.Since(start)
	cpu1, err := child.CPU()
	if err != nil {
		return quality.Profile{}, err
	}
	recs := make([]*quality.Recorder, len(players))
	ctr := make([]quality.Counters, len(players))
	for i, p := range players {
		st, b := p.C.Stats(), base[i]
		recs[i] = &p.Rec
		ctr[i] = quality.Counters{
			Calls: st.Calls - b.Calls, Confirmed: st.Confirmed - b.Confirmed, Failed: st.Failed - b.Failed,
			Mispredictions: st.Mispredictions - b.Mispredictions, Reruns: st.Reruns - b.Reruns,
			BytesIn: st.BytesIn - b.BytesIn, BytesOut: st.BytesOut - b.BytesOut, RTT: st.RTT,
		}
	}
	if err := settle(ctx, players, tick); err != nil {
		return quality.Profile{}, err
	}
	for _, p := range players {
		p.C.Close()
	}
	stopped = true
	as, err := child.Stop(childTimeout)
	if err != nil {
		return quality.Profile{}, err
	}
	name := s.Profile.Name
	if name == "" {
		name = "custom"
	}
	return quality.Summarise(name, span, recs, ctr, quality.Authority{CPU: cpu1 - cpu0, Calls: as.Calls, Reruns: as.Reruns})
}

// dialBots connects the bots at once (each waits for its welcome and
// clock sync) and makes them Players.
func dialBots(ctx context.Context, addr string, lag *Lag, s Settings) ([]*Player, error) {
	players := make([]*Player, s.Bots)
	errs := make([]error, s.Bots)
	var wg sync.WaitGroup
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			opts := s.Options
			opts.Registry = game.Registry()
			opts.PacketConn = lag.PacketConn
			c, err := netcode.Dial(dctx, addr, opts)
			if err != nil {
				errs[i] = fmt.Errorf("match: bot %d: %w", i, err)
				return
			}
			p, err := NewPlayer(c, fmt.Sprintf("bot%d", i), game.NewBot(s.Seed<<8|uint64(i)))
			if err != nil {
				c.Close()
				errs[i] = err
				return
			}
			players[i] = p
		}()
	}
	wg.Wait()
	return players, errors.Join(errs...)
}

// settle stops the bots and updates the players until every call has its
// result, or maxSettle passes.
func settle(ctx context.Context, players []*Player, tick *time.Ticker) error {
	for _, p := range players {
		p.Idle = true
	}
	end := time.Now().Add(maxSettle)
	for {
		now := time.Now()
		waiting := 0
		for _, p := range players {
			p.Frame(now)
			waiting += p.Awaiting()
		}
		if waiting == 0 || !now.Before(end) {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

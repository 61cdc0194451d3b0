package lagsim

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors returned by this package. Match them with errors.Is.
var (
	// ErrInvalidProfile is returned by Profile.Validate and by every function
	// that accepts a Profile which fails validation.
	ErrInvalidProfile = errors.New("lagsim: invalid profile")
	// ErrUnknownPreset is returned by Preset for a name it does not know.
	ErrUnknownPreset = errors.New("lagsim: unknown preset")
	// ErrInvalidOptions is returned by Wrap for bad Options.
	ErrInvalidOptions = errors.New("lagsim: invalid options")
)

// Distribution is the shape of the jitter added to Profile.Delay.
type Distribution uint8

const (
	// Uniform jitter is drawn uniformly from [-Jitter, +Jitter]. It is the
	// zero value and the shape every preset uses, so "30 ± 5 ms" means every
	// packet takes between 25 and 35 ms.
	Uniform Distribution = iota
	// Normal jitter is normally distributed with standard deviation Jitter,
	// clamped to ±4 Jitter.
	Normal
	// Pareto jitter is heavy-tailed: a Pareto sample with shape 2 and scale
	// Jitter/2 (mean Jitter), shifted to mean zero. Most packets arrive up to
	// Jitter/2 early, a few arrive very late; the tail is clamped at
	// +maxParetoJitter×Jitter so one packet cannot stall a link forever.
	Pareto
)

// maxParetoJitter bounds the heavy tail of Pareto jitter, in units of Jitter.
const maxParetoJitter = 20

func (d Distribution) String() string {
	switch d {
	case Uniform:
		return "uniform"
	case Normal:
		return "normal"
	case Pareto:
		return "pareto"
	}
	return fmt.Sprintf("Distribution(%d)", uint8(d))
}

// Burst is the two-state Gilbert–Elliott loss model. The link is either
// good (losing packets with Profile.Loss) or bad (losing them with LossBad).
// Before each packet the state changes with probability Enter (good→bad) or
// Exit (bad→good), so the mean burst lasts 1/Exit packets and the link spends
// Enter/(Enter+Exit) of its packets in the bad state. The zero value turns
// bursts off.
type Burst struct {
	Enter   float64 // per-packet probability of going from good to bad
	Exit    float64 // per-packet probability of going from bad to good
	LossBad float64 // loss probability while bad
}

func (b Burst) enabled() bool { return b.Enter > 0 }

// Profile describes one direction of a simulated link. The zero Profile
// passes packets through untouched.
//
// Every figure is one-way: a Profile applied to both directions of a link
// with Delay 50 ms gives a round-trip time of 100 ms.
type Profile struct {
	// Name is informational (presets set it); it does not change behaviour.
	Name string

	// Delay is the base one-way latency added to every packet.
	Delay time.Duration
	// Jitter is the spread of the latency around Delay, shaped by
	// Distribution. The resulting latency is never negative. Because each
	// packet draws its own latency, jitter reorders packets sent closer
	// together than the jitter, as a real multi-path network can.
	Jitter       time.Duration
	Distribution Distribution

	// Loss is the probability in [0, 1] that a packet is dropped (in the good
	// state when Burst is set).
	Loss float64
	// Burst, when set, makes losses bursty (Gilbert–Elliott).
	Burst Burst

	// Duplicate is the probability in [0, 1] that a delivered packet is
	// delivered a second time, with an independently drawn latency.
	Duplicate float64

	// Reorder is the probability in [0, 1] that a packet is held back an
	// extra ReorderGap, so that packets sent after it overtake it.
	Reorder    float64
	ReorderGap time.Duration

	// Bandwidth caps the link at this many bytes per second (0: no cap).
	// Packets are serialised one after the other at this rate before their
	// latency starts, so a burst queues up like on a real bottleneck.
	Bandwidth int64
}

// maxDelay bounds Delay, Jitter and ReorderGap: a simulated link that holds
// packets longer than this is a mistake, not a network.
const maxDelay = time.Minute

// Validate reports whether p is usable, naming the first bad field.
func (p Profile) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidProfile, fmt.Sprintf(format, args...))
	}
	prob := func(name string, v float64) error {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return bad("%s %v is not a probability in [0, 1]", name, v)
		}
		return nil
	}
	if p.Delay < 0 || p.Delay > maxDelay {
		return bad("delay %v outside [0, %v]", p.Delay, maxDelay)
	}
	if p.Jitter < 0 || p.Jitter > maxDelay {
		return bad("jitter %v outside [0, %v]", p.Jitter, maxDelay)
	}
	if p.Distribution > Pareto {
		return bad("unknown jitter distribution %v", p.Distribution)
	}
	for _, c := range []struct {
		name string
		v    float64
	}{
		{"loss", p.Loss}, {"burst enter", p.Burst.Enter}, {"burst exit", p.Burst.Exit},
		{"burst loss", p.Burst.LossBad}, {"duplicate", p.Duplicate}, {"reorder", p.Reorder},
	} {
		if err := prob(c.name, c.v); err != nil {
			return err
		}
	}
	if p.Burst.enabled() && p.Burst.Exit == 0 {
		return bad("burst exit probability must be > 0 when bursts are on (the link would stay bad forever)")
	}
	if p.ReorderGap < 0 || p.ReorderGap > maxDelay {
		return bad("reorder gap %v outside [0, %v]", p.ReorderGap, maxDelay)
	}
	if p.Reorder > 0 && p.ReorderGap == 0 {
		return bad("reorder probability %v needs a reorder gap > 0", p.Reorder)
	}
	if p.Bandwidth < 0 {
		return bad("bandwidth %d is negative", p.Bandwidth)
	}
	return nil
}

// presetNames lists the presets in order of worsening link.
var presetNames = []string{"none", "lan", "broadband", "wifi", "mobile", "transatlantic", "awful"}

// PresetNames returns the names Preset accepts, from best link to worst.
func PresetNames() []string { return append([]string(nil), presetNames...) }

// Preset returns the named one-way profile:
//
//	none           no delay, no loss
//	lan            1 ms
//	broadband      30 ± 5 ms, 0.1 % loss
//	wifi           60 ± 20 ms, 1 % loss
//	mobile         120 ± 40 ms, 2 % loss
//	transatlantic  150 ± 10 ms
//	awful          300 ± 100 ms, 5 % loss
//
// Jitter is uniform and loss independent per packet. Apply a preset to both
// directions for its round trip (twice the one-way delay).
func Preset(name string) (Profile, error) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	p := Profile{Name: name}
	switch name {
	case "none":
	case "lan":
		p.Delay = ms(1)
	case "broadband":
		p.Delay, p.Jitter, p.Loss = ms(30), ms(5), 0.001
	case "wifi":
		p.Delay, p.Jitter, p.Loss = ms(60), ms(20), 0.01
	case "mobile":
		p.Delay, p.Jitter, p.Loss = ms(120), ms(40), 0.02
	case "transatlantic":
		p.Delay, p.Jitter = ms(150), ms(10)
	case "awful":
		p.Delay, p.Jitter, p.Loss = ms(300), ms(100), 0.05
	default:
		return Profile{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownPreset, name, presetNames)
	}
	return p, nil
}

package sim

import "github.com/rewindnet/rewind/netcode"

// Actor plays one simulated client in place of the built-in workload,
// so a game can run its own functions and behaviour (bots, say) in the
// simulator. Give it with Config.Actor; the run's Registry must hold the
// functions it calls. An Actor must be deterministic given what it is
// shown (draw randomness from its own seeded source) for a seed to
// reproduce the run.
type Actor interface {
	// Frame is called once per client frame of the active phase while the
	// client is connected and synced, after the frame's arrivals were
	// applied. Make calls with call, which the simulator tracks as it does
	// the workload's (answers, latency); core is for reads (Read, ReadAt,
	// Children, Now, ViewDelay, Creator).
	Frame(core *netcode.ClientCore, call func(name string, args []byte) (netcode.CallID, error))
	// Events is given every event the core reports, in order, before the
	// simulator's own checks see them (all phases). The slice is not
	// kept by the simulator after the call.
	Events(core *netcode.ClientCore, evs []netcode.Event)
}

// playerCall makes a call for c's Actor and tracks it like the
// workload's.
func (s *Sim) playerCall(c *simClient, name string, args []byte) (netcode.CallID, error) {
	id, err := c.core.Call(name, args)
	if err != nil {
		s.obs.refused++
		return id, err
	}
	c.calls[id] = &callInfo{at: s.now, name: name}
	return id, nil
}

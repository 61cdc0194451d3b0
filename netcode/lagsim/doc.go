// Package lagsim simulates a bad network under real sockets: Conn wraps a
// net.PacketConn and delays, drops, duplicates, reorders and rate-limits
// its packets, following a Profile per direction that can change while it
// runs.
//
// # Use
//
//	wifi, _ := lagsim.Preset("wifi") // 60 ± 20 ms, 1 % loss, one way
//	c, err := lagsim.Listen("127.0.0.1:0", lagsim.Options{Seed: 1, Out: wifi, In: wifi})
//	...
//	s, err := transport.DialConn(ctx, c, serverAddr, cfg)
//	...
//	c.SetProfile(awful, awful) // switch live, e.g. from a debug key
//
// Listen opens the socket and wraps it in one step; Wrap takes any
// net.PacketConn.
//
// # Directions
//
// Out applies to packets the Conn writes, In to packets it reads. Every
// figure is one-way, so there are two ways to get a preset's round trip
// (twice its delay):
//
//   - wrap both ends of the link, each with Out set to the preset; or
//   - wrap one end only, with both Out and In set to it.
//
// Wrapping one end with only Out set gives a one-way delay, an asymmetric
// link.
//
// # Model
//
// Each packet of a direction goes through, in order: the loss model
// (independent, or Gilbert–Elliott bursts), the bandwidth cap (packets
// queue behind each other on the wire), latency (Delay plus uniform,
// normal or Pareto jitter, never negative), an optional extra ReorderGap
// for a share of packets, and an optional duplicate with its own latency.
// Link.Decide is that model as a pure function of the profile, a seeded
// *rand.Rand, the send time and the packet size; Conn is the thin shell
// that reads the clock and moves packets, so the model is tested on
// virtual time and a seed reproduces its decisions.
//
// # Limits
//
// At most Options.MaxQueued packets per direction are in flight; more are
// dropped and counted (Stats.QueueDrops), as is an inbound packet the
// reader of the Conn is MaxQueued packets behind on. Delays and jitter are
// capped at a minute, Pareto jitter at 20 times Jitter.
//
// Conn holds the wrapped conn by composition, never by embedding: kcp-go
// switches to batched system calls on a conn that looks like a
// *net.UDPConn, which would bypass the simulator.
package lagsim

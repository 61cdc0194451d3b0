// Package sim is Rewind's deterministic simulator: one authority node and
// many client cores (netcode.ClientCore) run together on a virtual clock,
// over simulated links, with no goroutine, socket or wall clock. The node
// and the cores are the production code, not copies; a seed reproduces a
// run byte for byte.
//
// # Running a simulation
//
// The simulator drives the authority through the Server interface;
// NodeServer adapts an authority.Node. The package sits above the
// authority (it imports it; no production package imports it), so it can
// drive several nodes and what connects them:
//
//	reg := sim.Registry()                        // the built-in workload
//	node, _ := authority.NewNode(authority.DefaultConfig(reg))
//	cfg := sim.DefaultConfig()
//	cfg.Seed, cfg.Clients = 42, 32
//	cfg.Profile, _ = lagsim.Preset("mobile")
//	s, err := sim.New(cfg, sim.NodeServer(node), reg)
//	if err != nil { ... }                        // wraps sim.ErrBadConfig
//	if err := s.Run(); err != nil { ... }        // wraps sim.ErrProperty, names the seed
//	fmt.Printf("trace %016x\n", s.TraceHash())
//	r := s.Report()                              // the quality report
//
// RunUntil advances to a given virtual time, for tests that look in
// between; Check runs the final checks.
//
// # The model
//
//  1. Time. The virtual clock is int64 nanoseconds and is the authority's
//     synced time (the authority is the reference). Each client has its
//     own local clock on virtual time, with a random offset and a drift of
//     up to Config.MaxDriftPPM, read by a timesync.Clock that the core
//     syncs over the simulated link as in production.
//  2. Events. Everything happens through one queue ordered by (time,
//     sequence number): client frames and server ticks every Config.Frame
//     (16 ms; each client has its own phase), frame arrivals, session
//     drops and reconnects. Nothing depends on map order or pointers.
//  3. Links. Each direction of each client's connection has its own
//     seeded random source and a lagsim.Link, whose pure Decide gives each
//     packet's fate under Config.Profile (one-way figures, applied to both
//     directions). A frame is split into packets of the transport's
//     segment size. The transport is reliable and ordered, as the KCP
//     stream is: a lost packet is resent (fast retransmit about one round
//     trip later, up to five times, then on a growing timeout), and a
//     frame is delivered only after every frame sent before it on the same
//     link. So loss, duplication and reordering at the packet level show
//     up as delay and head-of-line blocking, never as lost, duplicated or
//     reordered frames, which the wire's path dictionary could not take.
//  4. Server. A frame is handed to Server.Step when it arrives; the
//     server ticks every frame; after each step or tick its Ready output
//     goes onto the down links. A session the server closes is dropped
//     (a failure unless Config.Reconnects injects drops).
//  5. Clients. Arriving frames wait in the client's inbox, stamped with
//     the local time they arrived, until its next frame: Receive them all,
//     Tick, play the workload, drain Events, send Outgoing — the order a
//     game loop over the client shell follows.
//  6. Faults. With Config.Reconnects, sessions are dropped at random
//     during the active phase (frames in flight are lost with them) and
//     the client connects again on a new session after up to a second.
//
// # Phases
//
// Warmup (clients join over its first half and sync their clocks), Active
// (the workload plays), Quiet (no new call, no fault: everything settles).
//
// # Properties
//
// A run fails with ErrProperty, naming the seed and the virtual time, when:
//
//  1. the authority's lock invariant (Server.Verify) fails, checked after
//     every Config.VerifyEvery-th server step or tick and at the end;
//  2. a client refuses a frame, or gets an Error from the authority;
//  3. an event reaches a client's game twice (EventEmitted counted per
//     path, time and creator); see Config.StrictEvents for duplicates
//     after the core's memory of delivered events;
//  4. after the quiet phase, once the frames already in flight have
//     arrived (the run goes on for at most 10 s: on a lossy link one
//     packet lost several times holds an ordered stream shut for
//     seconds): a client is disconnected or unsynced, has a call pending
//     or a prediction showing, made calls that were never answered, or
//     (without faults) played for a second or more of the active phase
//     and had no call confirmed; a bump the
//     authority confirmed did not reach its caller's game; or a client's
//     confirmed view of a watched path differs from the authority's latest
//     valid value (both ways: no missing and no extra paths).
//
// # The workload
//
// Registry holds three functions, exported so that tests and demos reuse
// them: move (a player's key state changed; the position is computed
// exactly, in integer milli-units, from the previous key state and the
// time it changed), shove (push another player: it writes a path its
// owner is predicting, so late shoves force corrections) and bump (add
// one to a shared counter and emit events/bumps, so contention and late
// arrivals happen and exactly-once delivery is checked). Each client
// watches players/ and counters/ (and events/ with Workload.WatchEvents)
// and plays at the rates of Config.Workload, drawn from its own seeded
// source.
//
// # The quality report
//
// Report gives the misprediction rate (mispredicted over confirmed
// calls), the distance between predicted and authoritative player
// positions in corrections (p50, p99, world units), re-runs per call on
// the authority and on the clients, budget skips, bytes per client per
// second each way over the active phase, and the time from a call to its
// result reaching the game minus the profile's mean round trip (p50,
// p99; it includes up to a frame of waiting at each end).
package sim

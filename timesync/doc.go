// Package timesync keeps a synced, monotonic clock: every node of a
// Rewind cluster and every game client reads the cluster reference's time
// through it, and stamps writes with it.
//
// It has three parts:
//
//   - Estimator, a pure state machine. Fed four-timestamp exchanges
//     (Sample), it estimates the offset to the reference and the drift
//     between the clocks, with its own error bound, a precision gauge and
//     round-trip statistics. Time comes in only as arguments.
//   - Clock, a thin wrapper around an Estimator and a local time Source.
//     Now is lock-free and cheap, safe from any goroutine, and never
//     returns less than it returned before. The Clock owns no goroutine
//     and no timer: it says when the next request is due (NextSync, or
//     IdleSync for a request that would travel alone), and the caller
//     sends it.
//   - Answer, the server side: a pure function that echoes a Request with
//     the server's receive and send times.
//
// # The exchange
//
// A follower sends Request{ClientSend} stamped with its local time; the
// server answers with Reply{ClientSend, ServerRecv, ServerSend} stamped
// with its synced clock; the follower notes its local time on receipt.
// The structs are plain integers so that a codec carries them field by
// field. Requests are pipelined: the next one does not wait for a reply.
//
// # The canonical loop
//
// A follower (a game client, or an authority following the cluster's
// reference) drives its clock from its network loop:
//
//	clock, err := timesync.New(timesync.SystemSource(), timesync.DefaultConfig())
//	...
//	for {
//		if clock.Local() >= clock.NextSync() {
//			send(clock.Request())
//		}
//		select {
//		case rep := <-replies: // decoded off the wire
//			if err := clock.Observe(rep.Reply, rep.RecvLocal); err != nil {
//				log(err) // a duplicate, forged or impossible reply; nothing changed
//			}
//		case <-ticker.C: // e.g. every MinInterval
//		}
//	}
//
// where the reader goroutine took rep.RecvLocal = clock.Local() as soon
// as the reply came off the socket. Meanwhile the game thread reads
// clock.Now() as often as it likes.
//
// A follower that sends other messages to the reference lets requests
// ride on them: it attaches one to an outgoing batch at NextSync (every
// MaxInterval once stable), and sends one alone only at IdleSync (every
// IdleInterval once stable), so a quiet follower costs the reference
// fewer exchanges while one that talks pays only bytes.
//
// A server answers from its receive path:
//
//	recv := clock.Now()
//	req := decode(...)
//	send(timesync.Answer(req, recv, clock.Now()))
//
// # Rules
//
//  1. Stamp writes with Now only once Synced reports true. Until the
//     first sync Now reads 0, which Rewind treats as "before
//     everything", so an early write is refused rather than misplaced.
//  2. The first sync sets the clock at once, from 0 to the reference's
//     time, however far that is. It waits until the estimate is precise
//     (Config.SyncPrecision) or Config.Warmup samples are in: a few
//     round trips on a quiet link, about a second on a mobile one.
//  3. Later corrections slew: the clock runs at most Config.MaxSlew per
//     second fast or slow (default 5 ms/s) until it has caught up. It
//     never steps, in either direction.
//  4. Give Observe the local time of receipt taken as close to the
//     socket as possible, and a server its receive time likewise:
//     queueing inside a process counts as network delay and widens
//     nothing but the error.
//  5. A server answers only while its own clock is Synced; a reference
//     (Config.Reference) is synced from the start.
//
// # Clusters
//
// One authority is the cluster's reference: its clock is created with
// ReferenceConfig and reads its Source unchanged. Every other authority
// follows it exactly as a game client follows its authority, with the
// same Clock and loop, and answers its own clients from its synced clock.
// A client's error is then its own error plus its authority's.
//
// # Accuracy
//
// The estimator intersects the bounds each exchange puts on the offset
// (see Estimator): its error is half the difference between the fastest
// trips of the two directions, usually far below Cristian's RTT/2. A
// constant asymmetry between the directions is invisible to any method
// and leaves an error of half of it, which does not grow. When the
// reference's clock steps by more than a round trip the samples disagree;
// the estimator starts over, the re-sync interval drops back to
// MinInterval, and the clock slews to the new time. A smaller step is
// absorbed as the pre-step samples leave the window.
//
// The re-sync interval starts at MinInterval (10 ms) for Warmup samples
// and then grows by a quarter per sample to MaxInterval (100 ms): a
// stable follower costs ten small requests a second.
package timesync

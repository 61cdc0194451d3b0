// Package netcode is what a game links: the data model of Rewind (paths,
// times, path values and read locks), the store and its validity engine,
// transactions, and the registry of game functions.
//
// # Data model
//
// A path is a hierarchical key such as "players/42/pos" (see ValidatePath
// for the rules); a prefix ends with '/' and matches every path below it.
// Every write is a PathValue stamped with a Time {Nanos, Version, Creator}
// on the synced clock, and carries the ReadLocks of what it read: "when I
// wrote, the value written at Start was the latest value of Path over the
// open interval (Start, End)". A nil Value is a deletion.
//
// # The one rule
//
// A value is valid iff, for every lock, the value at (Path, Start) is valid
// (or Start is zero) and no valid value of Path lies strictly between Start
// and End. A lock whose Start value has not been seen yet makes its holder
// pending until that value arrives, or until finality (then invalid).
// Because locks point strictly back in time, the valid set is a pure
// function of the set of values, never of their arrival order, so every
// node that has seen the same values agrees on validity without talking.
// A late write that lands inside a lock's interval invalidates the holder
// and, cascading, everything that read it; when the late write is itself
// rejected, they come back.
//
// # Using the store
//
// A Store is a pure core: every method takes the current synced time as an
// argument, returns its effects as data ([]Change), and owns no goroutine.
// The canonical loop of an owner (the authority's node, a test harness):
//
//  1. Insert or InsertBatch values as they arrive, or Run a call with a
//     Registry and Commit its Outcome. Each returns the changes it caused:
//     the values added and every state change, in time order.
//  2. Call Tick(now) regularly (every server tick): values older than
//     now - MaxChangeAge - FinalitySkew become final, their locks are
//     dropped, invalid ones and events are discarded, and history is
//     trimmed to what a lock that can still arrive may reference.
//  3. Turn changes into messages (watchers, call re-runs). The returned
//     slice is reused by the next call: copy what you keep.
//
// Rules a caller must follow:
//
//  1. Serialise calls: a Store is not safe for concurrent use.
//  2. Pass a non-decreasing now; writes outside
//     [now - MaxChangeAge, now + MaxFutureSkew] are refused.
//  3. Do not modify slices returned by Latest, Get or History.
//  4. Give every writer its own Creator id and never reuse a Time for a
//     different value: a second, different value at the same (path, time)
//     is refused with ErrConflict.
//
// Refusals are typed errors (ErrBadLock, ErrTooOld, ErrValueTooLarge, ...)
// matched with errors.Is; a refused write or batch stores nothing.
//
// # Functions and calls
//
// A game registers deterministic functions, func(tx *Tx, args []byte) error,
// in a Registry linked into both its client and its authority. A Call names
// a function and a write time W. Registry.Run executes it against a View at
// W: Read sees the latest value strictly before W and records a lock,
// ReadPast(path, t) reads at a past time for lag compensation (clamped to
// W - MaxRewind), Write and Delete buffer writes at W, Emit buffers an event
// (delivered, never read back), Children lists keys without a lock (an
// unsafe read: use it to discover, then Read). Rand is seeded from the call
// id, so prediction, authority run and every re-run draw the same numbers.
// When a committed output turns invalid, the authority runs the same call
// again at Version+1 on the corrected state: rollback at path granularity,
// only for the calls a late input touched.
//
// # The client
//
// A game links the same Registry as its authority and dials it:
//
//	c, err := netcode.Dial(ctx, "authority:7777", netcode.Options{Registry: reg, Token: tok})
//	c.Watch("players/")                        // or WatchHistory(prefix, window)
//	for each frame {
//		for _, ev := range c.Update() { ... }  // results, values, corrections, (dis)connects
//		if c.WatchReady("players/") {          // the watch's snapshot is in
//			c.Call("move", args)           // predicted at once, sent on the next Update
//		}
//		pos, _ := c.InterpolateFloats("players/7/pos")  // remote entities, ViewDelay behind
//		draw(smoother.Apply(key, mine, c.Now()))        // own entity, corrections smoothed
//	}
//	c.Close()
//
// The authority must serve the same functions: the generic binary
// (authority/cmd/authority) serves only a plain store and the counter game
// of package examples/counter, whose doc comment states a function's
// contract (name, arguments, paths, value encoding) as a game's should, and
// whose cmd/counter-client is a complete client in 50 lines. A game's own
// server is a few lines over package authority/cli
// (examples/counter/cmd/counter-server), or embeds authority.Server.
//
// Rules:
//
//  1. Call Update once per frame from the goroutine that owns the client;
//     every method except Now, Stats and Close belongs to that goroutine.
//     Nothing changes between two Updates.
//  2. A lost session is redialled and resumed: the authority gives it the
//     same Creator and answers the pending calls it already ran from its
//     records, so no call runs twice. A game that stops calling Update
//     loses its session (ErrBacklog) and reconnects when it resumes; while
//     reconnecting, Call fails with ErrNotConnected, and EventDisconnected
//     and EventConnected tell when. Watches are renewed on the new session:
//     once a watch's snapshot has arrived (the authority marks its end),
//     what changed while away is in the view, including paths deleted and
//     values invalidated then, each reported as an EventValue.
//  3. A prediction is visible to reads at once; the authority's answer
//     arrives as EventResult, with EventCorrection for every output that
//     differed (Correction names the value that caused it). Emitted events
//     (EventEmitted) reach the game exactly once.
//  4. Predict from a complete view: until a watch's snapshot has arrived
//     (EventWatchReady, WatchReady), the view lacks what the authority
//     holds, and a call predicted from it shows a wrong result until the
//     snapshot or the answer corrects it. After a reconnect the watches
//     are renewed and become ready again.
//
// ClientCore is the same logic without goroutines or sockets, for
// simulators and custom transports (see package authority/sim).
package netcode

// Package authority is the server half of Rewind: it keeps the
// authoritative store, runs the game's functions, re-runs the calls a late
// input invalidated, and streams values and state changes to watchers.
//
// It has two layers. Node is the logic as a pure state machine (Connect,
// Step, Disconnect, Tick, Shutdown, then Ready for what to send), which a
// deterministic simulator drives directly. Server is the thin shell that
// runs a Node on the transport with real goroutines, sockets and clock.
//
// # The node
//
// The canonical loop of whatever drives a Node (the Server, a simulator, a
// test):
//
//	id, err := node.Connect(now, remote)   // a transport session opened
//	node.StepArrived(now, arrived, id, frame) // for every frame it receives
//	                                       // (Step(now, id, frame) if it arrived now)
//	node.Tick(now)                         // every server tick
//	for _, o := range node.Ready() {       // after each of the above
//		send o.Frames in order; if o.Close, close the session
//	}
//	node.Disconnect(now, id)               // the transport session is gone
//
// now is the authority's synced time in nanoseconds; the node never reads
// a clock. Step every frame that has arrived before calling Tick: a tick
// closes the sessions that have not said Hello within
// Limits.HelloTimeout, and one whose Hello arrived in time but waits
// behind a stall would be taken as late. The node owns each session's wire Encoder and Decoder, so the
// driver moves opaque frames, and a frame that fails to decode gets an
// Error and a closed session before anything reaches the store.
//
// What the node does with a session:
//
//  1. Hello first (protocol version, then the Authenticator if any), within
//     Limits.HelloTimeout of connecting; the Welcome assigns a Creator id
//     (NodeID<<24 | n) and sends the timing rules. TimeSyncRequest is
//     answered with the node's time; Ping is echoed. Sessions that have
//     not said Hello are capped apart from the players
//     (Limits.MaxPendingSessions: a new one makes the oldest give way),
//     so they cannot lock players out; the player cap (Limits.MaxSessions)
//     is checked at Hello, and a refused player gets an Error saying so.
//  2. Watch (a prefix ending in '/', or an exact path) is answered at once
//     with a snapshot: the latest valid value of each path, or for history
//     watches every valid value within the window plus the one before it.
//     Afterwards every value that becomes valid is delivered, and every
//     delivered value that stops being valid (or comes back) as a state
//     change, batched per flush (every Tick, or Config.FlushEvery) in the
//     order they happened. Pending
//     values wait until they are valid. Clients never receive locks. A
//     snapshot is charged to the session's Limits.SnapshotValuesPerSecond
//     and built only as far as that goes: one that does not fit is
//     undone and the watch refused (asking again for a prefix already
//     watched costs its snapshot again).
//  3. Call runs the registered function at the call's write time (after
//     the function's TimePolicy), with past-time reads at W - ViewDelay
//     clamped to MaxRewind, and commits its writes with their locks. Each
//     new call must be stamped later than its creator's previous call
//     (across resumed sessions). The
//     answer is a CallResult: ok with the output refs, failed with the
//     function's error, or rejected (unknown function, write time outside
//     the window, the store refused the writes, rate limit); a call sent
//     with the digest of a prediction that was right, its outputs valid,
//     gets a matched result (no outputs, reads or output values). A call
//     sent again with the same id is answered from its record, not run
//     again.
//  4. Whenever an output of a call turns invalid, the call is re-run at
//     the next Version on the corrected state, on the next Tick, in time
//     order, unless some stored version of it is still valid (a late input
//     that was itself rejected brings the old version back). The caller
//     gets a new CallResult; after 16 versions the call is given up and the
//     caller gets a failed result. Calls are forgotten, and never re-run,
//     once final.
//  5. Write stores raw values only where the WriteRule allows (default:
//     under clients/<creator>/) and only with the session's own Creator.
//  6. Resuming (Config.ResumeKey set; the Server sets a random key when
//     none is given): each Welcome carries a resume token, creator ‖ issue
//     time ‖ an HMAC over node id, creator, issue time and player. A Hello
//     that presents a valid token for the same player, of a creator this
//     node holds live or whose session ended within Config.ResumeWindow,
//     gets that creator back; a live session still holding it is closed
//     with CodeSuperseded. The client then sends its unanswered calls
//     again with their original ids: one that ran (or failed) is answered
//     from its record, one that never arrived runs once, and every call
//     must still be later than the creator's latest, whichever session
//     sent it, so two calls never share a Time. Re-run results go to the
//     session holding the creator. A bad, foreign or expired token is not
//     an error: the session gets a fresh creator, as without one. Without
//     an Authenticator the token alone proves who resumes (its MAC binds
//     the empty player), so keep the transport encrypted (Secret) for it
//     not to be read off the wire.
//  7. Limits are per session: watches, calls, written values, received
//     bytes, handled messages and snapshot values per second (token
//     buckets holding one second's worth; a message is charged before it
//     is handled and a snapshot as it is built, so what one frame can make
//     the node do is bounded before it is done), and queued deliveries (a session that cannot keep up is
//     disconnected rather than silently lose values). Other sessions are
//     unaffected. Every refusal is a strike, answered with its reason: a
//     rate overrun, a refused watch (bad prefix, over the watch limit), a
//     refused write (outside the write rule, another creator, a path,
//     lock, size or time the store refuses), a call to an unknown
//     function. A call outside the change window when it arrived (too
//     old, too far ahead, not after the creator's previous call) costs an
//     eighth of a strike, since an honest link that freezes delivers
//     bursts of them. More than Limits.Strikes strikes within
//     Limits.StrikeWindow (default 20 within 10 s: 21 refusals, or 161
//     calls outside the window) disconnect the session with an Error
//     naming the last refusal.
//     Rates and strikes are charged at the time a frame arrived (the
//     arrived argument of StepArrived), so frames that queued up while
//     the node was busy are not a flood; a call that went stale while it
//     waited is rejected as too old before the rate limit is charged.
//
// # Embedding a server
//
// A game links its registry into both its client and its authority, and
// serves it:
//
//	reg := netcode.NewRegistry()
//	reg.Register("move", move, netcode.FuncOptions{})
//
//	cfg := authority.DefaultServerConfig(":7777", reg)
//	cfg.Logger = slog.Default()
//	cfg.Transport.Secret = secret           // encryption; clients must agree
//	cfg.Node.Auth, _ = authority.NewHMACAuth(secret, 0)
//
//	srv, err := authority.NewServer(cfg) // binds the port: a busy port fails here
//	if err != nil {
//		return err
//	}
//	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
//	defer stop()
//	return srv.Serve(ctx) // until ctx ends, then a graceful shutdown
//
// Server.Stats returns the node's counters, per-function counters and
// transport totals at any time, from any goroutine.
//
// # How the server runs
//
// One goroutine (the one calling Serve) owns the Node. It takes sessions
// the listener accepted from one bounded queue, and ticks the node every
// ServerConfig.Tick. Received frames reach it without a goroutine per
// session: each session's transport (transport.Session.Notify) puts the
// session on a ready list, once, and wakes the node goroutine, which then
// drains the frames of every listed session (transport.Session.Drain, at
// most 256 per session per round so none starves the others; each with
// its arrival time, see Node.StepArrived) and handles
// the sessions whose transport closed. So a frame crosses one goroutine
// hand-off, and frames from many sessions arriving together cost one
// wake-up. After each such round, each batch of accepts and each tick it
// sends what Node.Ready returned, through each session's transport send
// queue. The node's time is the server's synced
// clock (a timesync reference clock unless ServerConfig.Clock is set).
//
// # Rules
//
//  1. NewServer binds the address (or takes ServerConfig.Conn, which the
//     caller keeps and closes); Close releases it even if Serve never ran.
//     Serve runs once per Server.
//  2. Shutdown, or the end of Serve's ctx, is graceful: the node flushes
//     its pending watch deliveries, every session receives what was queued
//     for it and then an Error with CodeShutdown, then a transport close
//     that waits at most Transport.CloseLinger for the peer's
//     acknowledgement. Close stops at once. Both are idempotent.
//  3. Every frame is sent as transport.Data, in the order the node made
//     them. Frames carry the path dictionary's definitions, so a frame
//     that overtook another (as Control frames do) would break the
//     client's decoder; for the same reason no frame may be dropped.
//  4. The node goroutine never waits for a peer. Sending only queues; a
//     session whose send queue cannot take its next frames (its KCP window
//     is full because it stopped acknowledging) is closed as too slow and
//     counted in TransportStats.TooSlow, before the transport would drop
//     a frame. It reconnects to a fresh snapshot.
//  5. No received frame is dropped. When the node goroutine falls
//     behind, each session's transport receive queue fills; a session
//     that falls Transport.RecvQueueFrames behind is closed by the
//     transport (ErrRecvOverflow). Per-session rate limits in the node keep one
//     client from getting there alone.
//  6. A session the node refuses at Connect is closed at the transport
//     with the reason; it has no wire session yet. The caps on waiting
//     sessions and on players close sessions through the node instead,
//     with an Error the client can read.
//
// # Serving a game's functions from a command
//
// Package authority/cli is the command line of the authority binary as a
// library: a game's server command gets every flag (listen address,
// secret, transport preset, timing, limits, log level), graceful shutdown
// on SIGINT/SIGTERM and the exit statuses in a few lines:
//
//	func main() {
//		cli.Main(cli.Program{Name: "mygame-server", Functions: rules.Registry})
//	}
//
// examples/counter/cmd/counter-server is the template to copy;
// cli.Program.Configure adjusts the ServerConfig (an Authenticator, a
// WriteRule) before it is validated.
//
// # Limits and abuse
//
// Every client is taken to be hostile. What one session can make the
// authority do or hold is bounded before it is done, charged when its
// frame arrived (so a stall of the node never turns honest traffic into
// a flood), and every refusal is a strike. The limits, with their
// defaults:
//
//	Config.Limits             default    bounds
//	MaxSessions               4096       players (sessions that said Hello); checked at Hello
//	MaxPendingSessions        256        sessions not yet said Hello; a new one makes the oldest give way
//	HelloTimeout              5 s        time to say Hello after connecting
//	MessagesPerSecond         1024       messages handled per session (a Watch or Unwatch prefix counts one)
//	SnapshotValuesPerSecond   16384      watch snapshot values per session; a prefix larger than this
//	                                     cannot be watched whole
//	CallsPerSecond            120        calls per session
//	FailoverCalls             120        calls older than the change window a creator resumed after its
//	                                     authority failed may send again (made before the takeover,
//	                                     above the closed time)
//	WritesPerSecond           240        raw values written per session
//	BytesPerSecond            256 KiB    bytes received per session
//	WatchesPerSession         64         prefixes watched at once
//	MaxInboundPathBytes       256 KiB    the paths a session has defined in its path dictionary
//	MaxPendingOutbound        16384      deliveries queued for a session; beyond, it is too slow
//	Strikes, StrikeWindow     20, 10 s   refusals tolerated before a disconnect
//
//	ServerConfig.Transport    default    bounds
//	HandshakeRatePerHost      16/s       new sessions from one IP address (burst 32)
//	HandshakeRate             512/s      new sessions in all (burst 512)
//	SendQueueFrames, Bytes    1024, 4 MiB  a session's send queue; a peer that fills it is closed as too slow
//	RecvQueueFrames, Bytes    1024, 4 MiB  a session's receive queue; beyond, the session closes
//	AcceptQueue               128        handshakes in progress, and sessions waiting to be accepted
//
// Rates are token buckets holding one second's worth. A strike costs the
// session one of its Strikes; a call outside the change window when it
// arrived (too old, too far ahead, not after the creator's previous one)
// costs an eighth, since an honest link that freezes delivers bursts of
// them; a call that only went stale while waiting for a busy node costs
// nothing. More than Strikes within StrikeWindow disconnect the session
// with an Error naming the last refusal. A malformed frame, a path that
// is not UTF-8 or a protocol violation closes the session at once.
//
// So one frame costs the node at most a second's worth of messages, of
// snapshot values, of calls and of written values, and each call or write
// at most one delivery per watcher; an abuser is cut off within a second
// of abusing at a game loop's pace (the hostile suite holds each class
// of abuse to that while honest players play, see docs/BENCHMARKS.md).
//
// The listener's transport.Guard drops, before any session exists, every
// packet from an address without a session that is not a proper session
// opening, and openings over the handshake rates: garbage and partial
// handshakes cost a parse each. Clients behind one address (a NAT) share
// its handshake rate, and an abuser on the same address can use it up;
// established sessions are never affected.
//
// Memory per session: an idle player costs the node about 3 KiB and the
// session about 12 KiB of its own, plus its conversation in the socket
// loop (about 62 KiB per idle player in all, measured over the real
// stack).
// At most, a session holds its two transport queues (SendQueueBytes +
// RecvQueueBytes), its KCP windows (SendWindow + RecvWindow segments of
// MTU bytes, twice over for the send side), its path definitions
// (MaxInboundPathBytes), its queued deliveries (MaxPendingOutbound
// records, the values shared with the store) and its encoder's scratch
// (64 KiB between frames): about 12 MiB with the defaults, most of it the
// transport queues. The sessions are at most MaxSessions +
// MaxPendingSessions, plus those closing (each for at most
// Transport.CloseLinger).
//
// What an operator tunes: MaxSessions to the players one machine serves
// (the memory above times that must fit); HandshakeRatePerHost up for
// players behind one NAT (a LAN party), down to slow a flood from one
// address; SnapshotValuesPerSecond up if a watched prefix holds more
// paths than 16,384; CallsPerSecond and WritesPerSecond to the game's
// input rate (a 60 Hz game sending one call a frame uses half the
// default); the transport queues down to cut the worst case per session
// when many sessions share a small machine. Strikes and StrikeWindow set
// how forgiving the authority is of clients with bugs.
//
// # Clusters
//
// With Config.Cluster.Key, a node is one authority of several: the shell
// tells it of its peers (PeerUp, PeerDown, ConnectPeer) and the node
// replicates what it accepts to them over replication streams, with closed
// times, confirmation by acknowledgement, failover and catch-up
// (docs/DESIGN.md, "The cluster"). SetShardMap splits the paths into
// ranges with owners: a value goes to its range's owners and to the peers
// that watch it (Cluster.Watch, WatchRange, the prefixes its clients
// watch); a call runs on an owner of its function's shard key
// (netcode.FuncOptions.ShardKey), relayed there by the node its client is
// connected to, which passes the answer back; a raw write to a range the
// node does not own is refused with an error naming the owners; a run
// that reads or writes a range the node does not hold yet is refused and
// the node watches that range from then on.
//
// # The authority binary
//
// authority/cmd/authority serves a registry chosen by name:
//
//	authority -listen 127.0.0.1:7777 -functions counter -log-level debug
//
// -functions none (the default) is a plain path-value store (raw writes
// under the write rule, watches); counter serves the counter game of
// package examples/counter (one function, "add") for smoke tests. A game
// serves its own functions with a command of its own (above). Other flags
// set the secret (-secret: HMAC tokens and transport encryption), the
// transport preset (-transport internet|lan), MaxChangeAge, MaxRewind,
// MaxFutureSkew, the tick and flush periods, the limits (-max-sessions,
// -max-pending-sessions, -hello-timeout, -calls-per-sec, -writes-per-sec,
// -bytes-per-sec, -messages-per-sec, -snapshot-values-per-sec, -watches)
// and the listener's handshake rates (-handshakes-per-host,
// -handshakes-per-sec).
// Logs are log/slog text on stderr. A bad flag exits 2 and a busy port
// exits 1, each with the reason; -h prints the flags and exits 0; SIGINT
// or SIGTERM shuts down gracefully and exits 0.
package authority

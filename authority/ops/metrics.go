package ops

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
)

// collector turns one Status per scrape into metrics. Every label has a
// bounded set of values: a function name (the registry's), a cause, a
// peer's node id, a range of the shard map, a member state.
type collector struct {
	e *Endpoint

	ready, sessions, opened, resumed                                           *prometheus.Desc
	calls, callErrors, reruns, callDuration                                    *prometheus.Desc
	rejected, abandoned, tooLate, invalidations, revalidations, lateWrites     *prometheus.Desc
	refusals, strikes, disconnects, notesDropped                               *prometheus.Desc
	written, valuesSent                                                        *prometheus.Desc
	framesIn, framesOut, bytesIn, bytesOut, sendDropped, retransmits, guard    *prometheus.Desc
	clockBound, clockSynced, storePaths, storeLive, storeHistory, storePending *prometheus.Desc
	finalityLag, rounds                                                        *prometheus.Desc

	fsync, durableLag, skipped, logRecords, durableRecords, logBytes, logFailures *prometheus.Desc
	snapshots, snapshotErrors, blocks, pendingFinal                               *prometheus.Desc
	members, rangesOwned, replLag, closedLag, takeovers, resets                   *prometheus.Desc
	quorum, caughtUp, replicated, failoverCalls, rerunsWaited, quorumKept         *prometheus.Desc
}

func newCollector(e *Endpoint) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("rewind_"+name, help, labels, nil)
	}
	return &collector{
		e:        e,
		ready:    d("ready", "1 when the authority is recovered, joined to its cluster (if any) and serving, as /readyz says."),
		sessions: d("sessions", "Sessions open now: players (said Hello), waiting (for their Hello), other (replication streams between authorities, sessions closing).", "state"),
		opened:   d("sessions_opened_total", "Sessions the node accepted."),
		resumed:  d("sessions_resumed_total", "Sessions that resumed an earlier session's creator."),

		calls:        d("calls_total", "Calls run (first runs), by function.", "function"),
		callErrors:   d("call_errors_total", "Runs whose function failed or whose writes the store refused, by function.", "function"),
		reruns:       d("reruns_total", "Calls re-run after a late input invalidated an output, by function.", "function"),
		callDuration: d("call_duration_seconds", "How long a function ran (first runs and re-runs), by function.", "function"),

		rejected:      d("calls_rejected_total", "Calls refused before running (window, order, rate, quorum, durability)."),
		abandoned:     d("reruns_abandoned_total", "Calls given up after too many re-runs."),
		tooLate:       d("reruns_too_late_total", "Calls invalidated too late to be re-run (below the horizon or the closed time)."),
		invalidations: d("invalidations_total", "Values whose state changed to invalid."),
		revalidations: d("revalidations_total", "Values whose state changed from invalid back."),
		lateWrites:    d("late_writes_total", "Insertions (call outputs, raw writes, replica batches) that took a valid value out of validity."),

		refusals:     d("refusals_total", "Requests refused while the session stayed open, by reason.", "reason"),
		strikes:      d("strikes_total", "Strikes charged to sessions, by reason.", "reason"),
		disconnects:  d("disconnects_total", "Sessions closed, by reason.", "reason"),
		notesDropped: d("log_notes_dropped_total", "Refusals and closes not logged because more than the per-round bound came at once."),

		written:    d("values_written_total", "Values clients wrote directly (Write messages), stored."),
		valuesSent: d("values_sent_total", "Values sent to watchers."),

		framesIn:    d("frames_received_total", "Frames received, over every session."),
		framesOut:   d("frames_sent_total", "Frames sent, over every session."),
		bytesIn:     d("received_bytes_total", "Frame bytes received, over every session."),
		bytesOut:    d("sent_bytes_total", "Frame bytes sent, over every session."),
		sendDropped: d("send_queue_dropped_frames_total", "Frames evicted from full send queues."),
		retransmits: d("kcp_retransmitted_segments_total", "KCP segments retransmitted, process-wide."),
		guard:       d("guard_dropped_packets_total", "Packets from addresses without a session that the listener dropped, by reason.", "reason"),

		clockBound:   d("clock_error_bound_seconds", "The synced clock's error bound (zero for a reference clock)."),
		clockSynced:  d("clock_synced", "1 when the synced clock is synced."),
		storePaths:   d("store_paths", "Paths held by the store."),
		storeLive:    d("store_live_values", "Values that can still change state."),
		storeHistory: d("store_history_values", "Final values kept as history."),
		storePending: d("store_pending_values", "Live values pending now."),
		finalityLag:  d("finality_lag_seconds", "How far the finality horizon trails the node's clock."),
		rounds:       d("node_rounds_total", "Rounds of the node goroutine, by how long they took.", "duration"),

		fsync:          d("archive_fsync_duration_seconds", "How long a group commit of the write-ahead log took (write and fdatasync of every mirror)."),
		durableLag:     d("archive_durable_lag_seconds", "How far the newest durable log record trails the node's clock."),
		durableRecords: d("archive_durable_records_total", "Log records appended since the archive opened that are on disk (of rewind_archive_log_records_total)."),
		skipped:        d("archive_recovery_skipped_bytes", "Log bytes the last recovery could not read back (damage skipped, torn tail)."),
		logRecords:     d("archive_log_records_total", "Records appended to the write-ahead log."),
		logBytes:       d("archive_log_bytes_total", "Bytes appended to the write-ahead log."),
		logFailures:    d("archive_log_failures_total", "Write or sync failures of the log (the first one stops it)."),
		snapshots:      d("archive_snapshots_total", "Snapshot blocks written."),
		snapshotErrors: d("archive_snapshot_errors_total", "Snapshots that failed."),
		blocks:         d("archive_blocks", "Live snapshot blocks."),
		pendingFinal:   d("archive_pending_final_values", "Final values waiting for the next snapshot."),

		members:     d("cluster_members", "Members of the cluster: alive (joined, not left nor declared dead, as gossip tells; this one included), down (peers the node holds as failed).", "state"),
		rangesOwned: d("cluster_ranges_owned", "Ranges of the shard map this authority owns."),
		replLag:     d("cluster_replication_lag_seconds", "Time since the latest Sync from a live peer's replication stream.", "peer"),
		closedLag:   d("cluster_closed_lag_seconds", "How far a range's closed time (the earliest of its live owners') trails the node's clock; the first 64 ranges of the shard map.", "range"),
		takeovers:   d("cluster_takeovers_total", "Failed peers taken over."),
		resets:      d("cluster_resets_total", "Times this authority restarted its node afresh after regaining a lost quorum."),
		quorum:      d("cluster_quorum", "1 when this authority sees a quorum of its cluster."),
		caughtUp:    d("cluster_caught_up", "1 when this authority holds what its live peers hold."),
		replicated:  d("cluster_replicated_values_total", "Values replicated to and from peers.", "direction"),

		failoverCalls: d("cluster_failover_calls_total", "Calls accepted older than the change window from clients resumed here after their authority failed (Limits.FailoverCalls)."),
		rerunsWaited:  d("cluster_reruns_waited_total", "Times a queued re-run was put off to the next tick, a value it read awaiting a peer's re-run."),
		quorumKept:    d("cluster_quorum_kept_total", "Times this authority regained a lost quorum and kept its state, no peer having taken its calls over."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.ready, c.sessions, c.opened, c.resumed, c.calls, c.callErrors, c.reruns, c.callDuration,
		c.rejected, c.abandoned, c.tooLate, c.invalidations, c.revalidations, c.lateWrites,
		c.refusals, c.strikes, c.disconnects, c.notesDropped, c.written, c.valuesSent,
		c.framesIn, c.framesOut, c.bytesIn, c.bytesOut, c.sendDropped, c.retransmits, c.guard,
		c.clockBound, c.clockSynced, c.storePaths, c.storeLive, c.storeHistory, c.storePending,
		c.finalityLag, c.rounds, c.fsync, c.durableLag, c.skipped, c.logRecords, c.durableRecords, c.logBytes,
		c.logFailures, c.snapshots, c.snapshotErrors, c.blocks, c.pendingFinal, c.members,
		c.rangesOwned, c.replLag, c.closedLag, c.takeovers, c.resets, c.quorum, c.caughtUp, c.replicated,
		c.failoverCalls, c.rerunsWaited, c.quorumKept,
	} {
		ch <- d
	}
}

// maxRangeSeries bounds the ranges labelled in closed-lag series: a shard
// map may hold thousands, a scrape should not.
const maxRangeSeries = 64

// roundNames label ServerStats.Rounds' buckets.
var roundNames = [len(authority.ServerStats{}.Rounds)]string{"lt_1ms", "lt_10ms", "lt_100ms", "lt_1s", "ge_1s"}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.e.cfg.StatusTimeout)
	defer cancel()
	st, ready, err := c.e.status(ctx, authority.StatusOptions{})
	up := 0.0
	if ready.ok() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, up)
	if err != nil {
		return // recovering, or the node goroutine did not answer: nothing else to say
	}
	c.collect(ch, &st)
}

// collect sends the metrics of one status.
func (c *collector) collect(ch chan<- prometheus.Metric, st *authority.Status) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	n := &st.Stats.Node
	gauge(c.sessions, float64(n.Players), "player")
	gauge(c.sessions, float64(n.Waiting), "waiting")
	gauge(c.sessions, float64(n.Sessions-n.Players-n.Waiting), "other")
	counter(c.opened, n.Connects)
	counter(c.resumed, n.Resumes)
	for name, fs := range st.Stats.Funcs {
		counter(c.calls, fs.Calls, name)
		counter(c.callErrors, fs.Errors, name)
		counter(c.reruns, fs.Reruns, name)
		ch <- prometheus.MustNewConstHistogram(c.callDuration, sumBuckets(fs.Runs[:]),
			time.Duration(fs.RunNanos).Seconds(), bounds(authority.RunBounds[:], fs.Runs[:]), name)
	}
	counter(c.rejected, n.CallsRejected)
	counter(c.abandoned, n.RerunsAbandoned)
	counter(c.tooLate, n.RerunsTooLate)
	counter(c.invalidations, n.Store.Invalidation)
	counter(c.revalidations, n.Store.Revalidation)
	counter(c.lateWrites, n.LateWrites)
	for k := range authority.NumCauses {
		// Every reason, zero or not, so a rate() sees the first one.
		counter(c.refusals, n.Refusals[k], k.String())
		counter(c.strikes, n.StrikesBy[k], k.String())
		counter(c.disconnects, n.Closes[k], k.String())
	}
	counter(c.notesDropped, n.NotesDropped)
	counter(c.written, n.Writes)
	counter(c.valuesSent, n.ValuesSent)

	t := &st.Stats.Transport
	counter(c.framesIn, t.FramesReceived)
	counter(c.framesOut, t.FramesSent)
	counter(c.bytesIn, t.BytesReceived)
	counter(c.bytesOut, t.BytesSent)
	counter(c.sendDropped, t.SendDropped)
	counter(c.retransmits, t.Global.Retransmits)
	counter(c.guard, t.Guard.NotOpening, "not_opening")
	counter(c.guard, t.Guard.HostLimited, "host_limited")
	counter(c.guard, t.Guard.Limited, "limited")

	gauge(c.clockBound, time.Duration(st.Clock.Bound).Seconds())
	gauge(c.clockSynced, flag(st.Clock.Synced || st.Clock.Samples == 0))
	gauge(c.storePaths, float64(n.Store.Paths))
	gauge(c.storeLive, float64(n.Store.LiveValues))
	gauge(c.storeHistory, float64(n.Store.FinalValues))
	gauge(c.storePending, float64(n.Store.PendingNow))
	if st.Horizon > 0 && st.Now > st.Horizon {
		gauge(c.finalityLag, time.Duration(st.Now-st.Horizon).Seconds())
	}
	for i, v := range st.Stats.Rounds {
		counter(c.rounds, v, roundNames[i])
	}

	if len(st.Data) > 0 {
		a := &st.Stats.Archive
		ch <- prometheus.MustNewConstHistogram(c.fsync, a.Log.Flushes, time.Duration(a.Log.SyncNanos).Seconds(),
			bounds(archive.SyncBounds[:], a.Log.Syncs[:]))
		if a.DurableNow > 0 {
			gauge(c.durableLag, max(0, time.Duration(st.Now-a.DurableNow).Seconds()))
		}
		gauge(c.skipped, float64(a.RecoverySkipped))
		counter(c.logRecords, a.Log.Records)
		counter(c.durableRecords, a.DurableRecords)
		counter(c.logBytes, a.Log.Bytes)
		counter(c.logFailures, a.Log.Failures)
		counter(c.snapshots, a.Snapshots)
		counter(c.snapshotErrors, a.SnapshotErrors)
		gauge(c.blocks, float64(a.Blocks))
		gauge(c.pendingFinal, float64(a.PendingFinal))
	}

	if cl := st.Cluster; cl != nil {
		down := 0
		for _, p := range cl.Peers {
			if !p.Up {
				down++
			}
			if p.Up && p.SyncAt > 0 {
				gauge(c.replLag, max(0, time.Duration(st.Now-p.SyncAt).Seconds()), strconv.Itoa(int(p.ID)))
			}
		}
		gauge(c.members, float64(len(cl.Members)), "alive")
		gauge(c.members, float64(down), "down")
		gauge(c.rangesOwned, float64(cl.RangesOwned))
		for _, r := range cl.Ranges[:min(len(cl.Ranges), maxRangeSeries)] {
			if r.Closed > 0 {
				gauge(c.closedLag, max(0, time.Duration(st.Now-r.Closed).Seconds()), r.Range)
			}
		}
		counter(c.takeovers, cl.Takeovers)
		counter(c.resets, cl.Resets)
		gauge(c.quorum, flag(cl.Quorum))
		gauge(c.caughtUp, flag(cl.CaughtUp))
		counter(c.replicated, n.ReplicatedOut, "out")
		counter(c.replicated, n.ReplicatedIn, "in")
		counter(c.failoverCalls, n.FailoverCalls)
		counter(c.rerunsWaited, n.RerunsWaited)
		counter(c.quorumKept, n.QuorumKept)
	}
}

// bounds turns per-bucket counts (the last past every bound) into the
// cumulative upper-bound counts of a Prometheus histogram.
func bounds(upper []time.Duration, counts []uint64) map[float64]uint64 {
	out := make(map[float64]uint64, len(upper))
	var cum uint64
	for i, b := range upper {
		cum += counts[i]
		out[b.Seconds()] = cum
	}
	return out
}

func sumBuckets(counts []uint64) uint64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}

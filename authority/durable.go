package authority

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/netcode"
)

// A durable node: with Config.Persist set, the node records, as data, what
// its shell must make durable — every accepted write with its locks (each
// run of a call, first or re-run, with its outputs or its error; raw
// writes and deletions; abandoned calls; creator ids assigned) — and the
// values that became final. The shell takes them with TakePersist after
// every Step, Tick or Shutdown and before sending what Ready returns,
// appends the entries to the archive's log and hands the final values to
// its snapshots. A restarted node is rebuilt with Restore from what the
// archive recovered: final values through Store.LoadFinal, then the log's
// entries through the store's normal insertion, in log order, at the times
// they were first accepted (validity does not depend on arrival order), so
// a call sent again after the restart is answered from its record, never
// run twice. The node stays pure: it does no I/O.

// Persist is what the node asks its shell to make durable.
type Persist struct {
	// Entries, in the order they happened, for the log.
	Entries []archive.Entry
	// Final holds the values that became final (valid), for snapshots.
	Final []netcode.PathValue
	// Horizon is the store's finality horizon: every final value below
	// it has been in Final (of this or an earlier Persist).
	Horizon int64
}

// TakePersist returns what the node recorded since the last call. It
// records nothing unless Config.Persist is set. Entries is valid until the
// next call (its array is reused); the values it refers to are not.
func (n *Node) TakePersist() Persist {
	p := Persist{Entries: n.persist, Final: n.store.TakeFinal(), Horizon: n.store.Horizon()}
	clear(n.persistSpare)
	n.persist, n.persistSpare = n.persistSpare[:0], n.persist
	return p
}

// SetNotDurable makes the node refuse every new call and raw write with
// reason (the shell's log failed: what is accepted could not be made
// durable); calls it has a record of are still answered, reads and
// watches go on. An empty reason lifts it.
func (n *Node) SetNotDurable(reason string) { n.notDurable = reason }

func (n *Node) logEntry(e archive.Entry) {
	if n.cfg.Persist {
		n.persist = append(n.persist, e)
	}
}

// logRun records one run of rec's call: out's writes, or its error. The
// entry is filled in where it is kept: an Entry is about 180 bytes, and
// built aside it was copied twice more.
func (n *Node) logRun(now int64, rec *callRec, version uint32, out *netcode.Outcome) {
	if !n.cfg.Persist {
		return
	}
	n.persist = append(n.persist, archive.Entry{})
	e := &n.persist[len(n.persist)-1]
	e.Kind, e.Now, e.Call, e.Version = archive.EntryRun, now, rec.call, version
	if rec.lastErr != nil {
		e.Err, e.Refused = rec.lastErr.Error(), rec.refused
		if e.Err == "" {
			e.Err = "failed"
		}
	} else {
		e.Locks, e.Values = out.Locks, out.Writes
	}
}

// logWrite records raw writes. Their bytes alias the received frame, so
// the entry gets copies.
func (n *Node) logWrite(now int64, vals []netcode.PathValue) {
	if !n.cfg.Persist {
		return
	}
	vs := slices.Clone(vals)
	for i := range vs {
		if vs[i].Value != nil {
			vs[i].Value = slices.Clone(vs[i].Value)
		}
	}
	n.logEntry(archive.Entry{Kind: archive.EntryWrite, Now: now, Values: vs})
}

// nodeMeta is the node's own state kept in the archive's manifest: the
// creator ids it assigned, so ids are not reused and their holders can
// resume after a restart.
type nodeMeta struct {
	NextCreator uint32        `json:"next_creator"`
	Creators    []creatorMeta `json:"creators,omitempty"`
}

type creatorMeta struct {
	ID    uint32 `json:"id"`
	Born  int64  `json:"born"`
	LastW int64  `json:"last_w"`
}

// ArchiveMeta returns the node's state for the archive's next snapshot.
func (n *Node) ArchiveMeta() []byte {
	m := nodeMeta{NextCreator: n.nextCrea}
	for _, rec := range n.creators {
		m.Creators = append(m.Creators, creatorMeta{rec.creator, rec.born, rec.lastW})
	}
	slices.SortFunc(m.Creators, func(a, b creatorMeta) int { return int(int64(a.ID) - int64(b.ID)) })
	b, _ := json.Marshal(m) // plain values: cannot fail
	return b
}

// ErrRestore wraps the errors of Restore.
var ErrRestore = errors.New("authority: restore")

// Restore rebuilds a new node (nothing connected or stepped yet) from what
// an archive recovered, at time now: the final values, the creator ids,
// and every logged write and call record. Calls whose outputs turned
// invalid while no re-run was logged are checked on the first Tick and
// re-run then. Sessions that were connected are gone; their creators can
// be resumed for ResumeWindow from now. It returns how many logged
// entries the store refused (they are left out, and counted).
func (n *Node) Restore(now int64, st *archive.State) (refused int, err error) {
	if len(n.sessions) > 0 || len(n.calls) > 0 {
		return 0, fmt.Errorf("%w: the node is not new", ErrRestore)
	}
	n.advance(now)
	if len(st.Meta) > 0 {
		var m nodeMeta
		if err := json.Unmarshal(st.Meta, &m); err != nil {
			return 0, fmt.Errorf("%w: node state: %w", ErrRestore, err)
		}
		n.nextCrea = max(n.nextCrea, m.NextCreator&(1<<24-1))
		for _, c := range m.Creators {
			rec := n.creatorFor(c.ID)
			rec.born, rec.lastW = c.Born, max(rec.lastW, c.LastW)
		}
	}
	var finals []netcode.PathValue
	if err := st.ScanFinals(func(v netcode.PathValue) error { finals = append(finals, v); return nil }); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrRestore, err)
	}
	if err := n.store.LoadFinal(st.Horizon, finals); err != nil {
		return 0, fmt.Errorf("%w: final values: %w", ErrRestore, err)
	}
	h := n.store.Horizon()
	for i := range st.Entries {
		if !n.replay(&st.Entries[i], h) {
			refused++
		}
	}
	// Every creator's session is gone: resumable from now.
	ids := make([]uint32, 0, len(n.creators))
	for id := range n.creators {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		rec := n.creators[id]
		rec.session, rec.ended = 0, now
		rec.endSeq++
		n.ended = append(n.ended, endedRec{rec, now, rec.endSeq})
		n.endedLive++
	}
	for n.endedLive > n.cfg.Limits.MaxSessions {
		n.popEnded()
	}
	// Re-runs that happened were logged and replayed; any that did not
	// make it to the log are found by the first Tick.
	n.rerunQueue = n.rerunQueue[:0]
	for _, rec := range n.callExpiry {
		rec.queued = true
		n.rerunQueue = append(n.rerunQueue, rec)
	}
	n.stats.Restored = uint64(len(st.Entries) - refused)
	n.stats.RestoreRefused = uint64(refused)
	return refused, nil
}

// creatorFor returns the record of creator id, making one if needed (and
// keeping it when resuming is on), and keeps fresh ids above it.
func (n *Node) creatorFor(id uint32) *creatorRec {
	if low := id & (1<<24 - 1); id>>24 == uint32(n.cfg.NodeID) && low >= n.nextCrea {
		n.nextCrea = low + 1
		if n.nextCrea >= 1<<24 {
			n.nextCrea = 1
		}
	}
	if rec := n.creators[id]; rec != nil {
		return rec
	}
	rec := &creatorRec{creator: id}
	if len(n.cfg.ResumeKey) > 0 {
		n.creators[id] = rec
	}
	return rec
}

// replay applies one logged entry; it reports false if the store refused
// it.
func (n *Node) replay(e *archive.Entry, horizon int64) bool {
	switch e.Kind {
	case archive.EntryCreator:
		rec := n.creatorFor(e.Creator)
		rec.born = e.Born
	case archive.EntryWrite:
		vals := make([]netcode.PathValue, 0, len(e.Values))
		for _, v := range e.Values {
			if v.Time.Nanos >= horizon {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			return true
		}
		changes, err := n.store.InsertBatch(e.Now, vals)
		if err != nil {
			return false
		}
		n.applyChanges(e.Now, changes)
	case archive.EntryAbandon:
		if rec := n.calls[e.Call.ID]; rec != nil {
			rec.abandoned = true
			rec.lastErr, rec.refused = fmt.Errorf("authority: call re-run %d times; its outputs no longer stand", maxVersions), false
		}
	case archive.EntryRun:
		if e.Call.Time < horizon {
			return true // final: its record was dropped
		}
		rec := n.calls[e.Call.ID]
		if rec == nil {
			owner := n.creatorFor(e.Call.ID.Creator)
			owner.lastW = max(owner.lastW, e.Call.Time)
			call := e.Call
			call.Args = slices.Clone(call.Args)
			rec = &callRec{call: call, owner: owner, stats: n.funcStat(call.Name)}
			n.calls[call.ID] = rec
			n.expireLater(rec)
		}
		if e.Err != "" {
			rec.versions = append(rec.versions, callVersion{version: e.Version})
			rec.lastErr, rec.refused = errors.New(e.Err), e.Refused
			return true
		}
		out := netcode.Outcome{Call: rec.call, Locks: e.Locks, Writes: e.Values, Tag: rec,
			Time: netcode.Time{Nanos: rec.call.Time, Version: e.Version, Creator: rec.call.ID.Creator}}
		changes, err := n.store.Commit(e.Now, &out)
		if err != nil {
			rec.versions = append(rec.versions, callVersion{version: e.Version})
			rec.lastErr, rec.refused = err, true
			return false
		}
		cv := callVersion{version: e.Version, reads: e.Locks, outputs: make([]outKey, len(e.Values))}
		for i, w := range e.Values {
			cv.outputs[i] = outKey{w.Path, w.Time}
		}
		rec.versions = append(rec.versions, cv)
		rec.lastErr, rec.refused = nil, false
		n.applyChanges(e.Now, changes)
	default:
		return false
	}
	return true
}

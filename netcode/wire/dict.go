package wire

import "fmt"

// encDict is the encoder's half of a path dictionary: path → id, with at
// most max ids. When it is full, a new path takes the id chosen by a CLOCK
// sweep (second chance): the hand skips, and clears, ids referenced since it
// last passed, and never takes an id used by the message being encoded. The
// decoder needs none of this: it applies each PathDef it receives, so any
// eviction order the encoder picks is one the peer follows.
type encDict struct {
	ids   map[string]uint32
	paths []string // by id
	ref   []bool   // referenced since the hand last passed
	stamp []uint64 // epoch of the last message that used the id
	epoch uint64   // current message
	hand  int
	max   int

	undo []undoEntry // assignments made by the current message
	defs []pathDef   // ids the current message defines, in order
}

type pathDef struct {
	id   uint32
	path string
}

// undoEntry records one assignment so a failed message can be rolled back,
// keeping the dictionary equal to what the peer has been told.
type undoEntry struct {
	id       uint32
	old      string
	appended bool
}

func newEncDict(max int) encDict {
	return encDict{ids: make(map[string]uint32), max: max}
}

// begin starts a message.
func (d *encDict) begin() {
	d.epoch++
	d.undo = d.undo[:0]
	d.defs = d.defs[:0]
}

// rollback forgets every assignment since begin.
func (d *encDict) rollback() {
	for i := len(d.undo) - 1; i >= 0; i-- {
		u := d.undo[i]
		delete(d.ids, d.paths[u.id])
		if u.appended {
			d.paths = d.paths[:u.id]
			d.ref = d.ref[:u.id]
			d.stamp = d.stamp[:u.id]
			continue
		}
		d.paths[u.id] = u.old
		d.ids[u.old] = u.id
	}
	d.undo = d.undo[:0]
	d.defs = d.defs[:0]
}

// known returns the id of path and marks it used by the current message,
// if the peer knows it.
func (d *encDict) known(path string) (uint32, bool) {
	id, ok := d.ids[path]
	if ok {
		d.ref[id] = true
		d.stamp[id] = d.epoch
	}
	return id, ok
}

// assign gives path, which the peer does not know, an id and queues its
// definition; kept apart from known so the hit path inlines.
func (d *encDict) assign(path string) (uint32, error) {
	var id uint32
	if len(d.paths) < d.max {
		id = uint32(len(d.paths))
		d.paths = append(d.paths, path)
		d.ref = append(d.ref, true)
		d.stamp = append(d.stamp, d.epoch)
		d.undo = append(d.undo, undoEntry{id: id, appended: true})
	} else {
		victim := -1
		for range 2*d.max + 1 {
			h := d.hand
			d.hand++
			if d.hand == d.max {
				d.hand = 0
			}
			if d.stamp[h] == d.epoch {
				continue
			}
			if d.ref[h] {
				d.ref[h] = false
				continue
			}
			victim = h
			break
		}
		if victim < 0 {
			return 0, fmt.Errorf("%w: one message uses more than %d distinct paths (Limits.MaxPaths)", ErrTooLarge, d.max)
		}
		id = uint32(victim)
		old := d.paths[id]
		delete(d.ids, old)
		d.undo = append(d.undo, undoEntry{id: id, old: old})
		d.paths[id] = path
		d.ref[id] = true
		d.stamp[id] = d.epoch
	}
	d.ids[path] = id
	d.defs = append(d.defs, pathDef{id: id, path: path})
	return id, nil
}

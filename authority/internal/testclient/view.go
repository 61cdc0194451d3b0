package testclient

import (
	"github.com/rewindnet/rewind/netcode/wire"
)

// maxPerPath bounds the values a View keeps per path; the oldest go first.
const maxPerPath = 4096

// View is what a watcher sees: every value delivered, with its latest
// state. Latest answers with the newest valid value of a path, which is
// what the authority's store holds once deliveries have caught up.
type View struct {
	paths map[string][]entry // by time, ascending
}

type entry struct {
	t     wire.Time
	value []byte
	state wire.State
}

// NewView returns an empty view.
func NewView() *View { return &View{paths: make(map[string][]entry)} }

func less(a, b wire.Time) bool {
	if a.Nanos != b.Nanos {
		return a.Nanos < b.Nanos
	}
	if a.Version != b.Version {
		return a.Version < b.Version
	}
	return a.Creator < b.Creator
}

// Apply takes in a Values or ValidStates message; others are ignored. A
// state change for a value the view never saw is ignored.
func (v *View) Apply(m *wire.Message) {
	switch m.Kind {
	case wire.KindValues:
		for i := range m.Values.Items {
			it := &m.Values.Items[i]
			if it.Flags&wire.FlagEvent != 0 {
				continue
			}
			v.put(it.Path, entry{t: it.Time, value: append([]byte(nil), it.Value...), state: it.State}, it.Value == nil)
		}
	case wire.KindValidStates:
		for _, sc := range m.ValidStates.Items {
			es := v.paths[sc.Path]
			for i := range es {
				if es[i].t == sc.Time {
					es[i].state = sc.State
				}
			}
		}
	}
}

func (v *View) put(path string, e entry, deleted bool) {
	if deleted {
		e.value = nil
	}
	es := v.paths[path]
	i := len(es)
	for i > 0 && less(e.t, es[i-1].t) {
		i--
	}
	if i > 0 && es[i-1].t == e.t {
		es[i-1] = e // re-delivered: a value coming back
		return
	}
	es = append(es, entry{})
	copy(es[i+1:], es[i:])
	es[i] = e
	if len(es) > maxPerPath {
		es = es[len(es)-maxPerPath:]
	}
	v.paths[path] = es
}

// Latest returns the newest valid value of path, and false when there is
// none or it is a deletion.
func (v *View) Latest(path string) ([]byte, bool) {
	es := v.paths[path]
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].state == wire.StateValid {
			return es[i].value, es[i].value != nil
		}
	}
	return nil, false
}

// Paths returns how many paths the view has seen.
func (v *View) Paths() int { return len(v.paths) }

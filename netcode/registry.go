package netcode

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Func is a game function: deterministic, reading and writing state only
// through tx. Returning an error stores nothing; the error is reported to
// the caller.
type Func func(tx *Tx, args []byte) error

// TimePolicy says which write time the authority gives a call.
type TimePolicy uint8

const (
	// KeepClientTime runs the call at the write time the client chose
	// (the default): what the player did happens when the player did it.
	KeepClientTime TimePolicy = iota
	// ClampToMaxLag runs the call at max(client time, now - MaxLag), so a
	// laggy client cannot act further in the past than MaxLag.
	ClampToMaxLag
	// ReceiveTime runs the call at the time the authority received it.
	ReceiveTime
)

// FuncOptions configure one registered function.
type FuncOptions struct {
	Policy TimePolicy
	MaxLag time.Duration // for ClampToMaxLag
	// ShardKey names the path a call of the function mostly writes (the
	// player's own entity, the region it stands in), from the caller's
	// creator id and the call's arguments. In a sharded authority cluster
	// the call runs on an owner of that path's range: a node that does
	// not own it forwards the call there and relays the result back. It
	// must be deterministic and cheap; "" (or nil) runs the call where it
	// arrives.
	ShardKey func(caller uint32, args []byte) string
	// NoLateFailover refuses the function's calls older than the change
	// window even when they come from a client that failed over to
	// another authority of a cluster and sends its unanswered calls
	// again (which the authority otherwise runs at their own times, up to
	// its Limits.FailoverCalls): for input that others already saw
	// played out, such as movement. Run 1–2 s back, a failed-over
	// player's moves would take back the hits other players scored on
	// where they saw it; refused, the player's own prediction is
	// corrected instead (favour the shooter).
	NoLateFailover bool
}

// Function is a registered function.
type Function struct {
	Name    string
	Fn      Func
	Options FuncOptions
}

// MaxFuncName is the longest function name a registry accepts, in bytes.
const MaxFuncName = 64

// Registry maps function names to functions. A game builds one registry and
// links it into both its client and its authority, so that both run the
// same code. Register everything before use; lookups are then safe from
// several goroutines.
type Registry struct {
	funcs  map[string]*Function
	layers []Layer
	txs    sync.Pool // of *Tx, reused by Run
}

// Layer declares a spatial layer: the entities under Prefix (each entity
// is Prefix + key + "/", key one segment), each placed by the value at
// Prefix + key + "/" + Field, which Pos decodes to a point. An authority
// indexes the layer's positions and answers spatial watches on Prefix
// (Client.WatchNear, Client.WatchRegion) with the entities inside the
// watch's area. Pos must be pure and accept any bytes (ok false: the
// entity has no position).
type Layer struct {
	Prefix string
	Field  string
	Pos    func(value []byte) (x, y float64, ok bool)
	// CellSize is the side of the index's grid cells in the positions'
	// units: about the radius of a typical watch. Zero: 64.
	CellSize float64
}

// MaxLayers bounds the spatial layers of a registry.
const MaxLayers = 16

// Spatial adds a spatial layer. Prefix must be a valid prefix (ending in
// '/'), Field one path segment, and no other layer may have the same
// prefix.
func (r *Registry) Spatial(l Layer) error {
	switch {
	case ValidatePrefix(l.Prefix) != nil || l.Prefix == "":
		return fmt.Errorf("netcode: spatial layer prefix %q: must be a non-empty prefix ending in '/'", l.Prefix)
	case l.Field == "" || strings.Contains(l.Field, "/") || ValidatePath(l.Field) != nil:
		return fmt.Errorf("netcode: spatial layer field %q: must be one path segment", l.Field)
	case l.Pos == nil:
		return fmt.Errorf("netcode: spatial layer %q has no Pos", l.Prefix)
	case l.CellSize < 0 || l.CellSize != l.CellSize:
		return fmt.Errorf("netcode: spatial layer %q: CellSize %v", l.Prefix, l.CellSize)
	case len(r.layers) >= MaxLayers:
		return fmt.Errorf("netcode: %d spatial layers is the limit", MaxLayers)
	}
	for _, o := range r.layers {
		if o.Prefix == l.Prefix {
			return fmt.Errorf("netcode: spatial layer %q declared twice", l.Prefix)
		}
	}
	r.layers = append(r.layers, l)
	return nil
}

// Layers returns the spatial layers, in the order they were added.
func (r *Registry) Layers() []Layer { return slices.Clone(r.layers) }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{funcs: make(map[string]*Function)}
}

// Register adds fn under name. The name must be 1 to MaxFuncName bytes of
// UTF-8 (it travels in calls as a FlatBuffers string) and not taken.
func (r *Registry) Register(name string, fn Func, opts FuncOptions) error {
	if name == "" || len(name) > MaxFuncName || !utf8.ValidString(name) {
		return fmt.Errorf("netcode: function name %q must be 1 to %d bytes of UTF-8", name, MaxFuncName)
	}
	if fn == nil {
		return fmt.Errorf("netcode: function %q is nil", name)
	}
	if opts.Policy > ReceiveTime {
		return fmt.Errorf("%w: function %q has time policy %d", ErrBadConfig, name, opts.Policy)
	}
	if _, ok := r.funcs[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateFunction, name)
	}
	r.funcs[name] = &Function{Name: name, Fn: fn, Options: opts}
	return nil
}

// Lookup returns the function registered under name.
func (r *Registry) Lookup(name string) (*Function, bool) {
	f, ok := r.funcs[name]
	return f, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.funcs))
	for n := range r.funcs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// CallID identifies a call: the caller's Creator id and its own sequence
// number.
type CallID struct {
	Creator uint32
	Seq     uint64
}

// Call asks for a function to run at write time Time (synced nanoseconds).
// ViewDelay is how far behind W the caller's view of others was (its
// interpolation delay): past-time reads at tx.ViewTime() see what it saw.
type Call struct {
	ID        CallID
	Name      string
	Args      []byte
	Time      int64
	ViewDelay time.Duration
}

// Outcome is the result of running a call: the writes it buffered, stamped
// with the write time and carrying the transaction's read locks, or the
// error that stored nothing. Locks are what the run read, also when it
// failed (a client re-predicts a failed call when what it read changes).
type Outcome struct {
	Call   Call
	Time   Time
	Locks  []ReadLock
	Writes []PathValue // every write shares Locks
	Err    error
	// Tag is carried by Store.Commit into every Change about the written
	// values, so the committer can find what wrote them.
	Tag any

	// pathsChecked: Run made this outcome, so every write path and lock
	// path is known valid (written paths were validated by the Tx, lock
	// paths came from the store or were validated on a miss).
	pathsChecked bool

	// ids, when set, are the ids in the store idStore of the paths of
	// Locks then Writes (noPath for a path it did not hold), found by the
	// run; they stay right while the store deletes no path (idGen is its
	// count of deletions then), and spare Commit looking the paths up.
	ids     []uint32
	idStore *Store
	idGen   uint64
}

// Run executes call against view at write time
// {call.Time, version, call.ID.Creator}. A function error, a transaction
// error or a panic in the function yields an Outcome with Err set and no
// writes. Run does not store anything: the authority commits the outcome
// with Store.Commit, a client keeps it as a prediction.
func (r *Registry) Run(view View, cfg *Config, call Call, version uint32) Outcome {
	out := Outcome{Call: call, Time: Time{Nanos: call.Time, Version: version, Creator: call.ID.Creator}}
	f, ok := r.funcs[call.Name]
	if !ok {
		out.Err = fmt.Errorf("%w: %q", ErrUnknownFunction, call.Name)
		return out
	}
	if call.Time <= 0 {
		out.Err = fmt.Errorf("%w: call %q at %d", ErrZeroTime, call.Name, call.Time)
		return out
	}
	viewNanos := call.Time - int64(call.ViewDelay)
	if call.ViewDelay < 0 {
		viewNanos = call.Time
	}
	if min := call.Time - int64(cfg.MaxRewind); viewNanos < min {
		viewNanos = min
	}
	tx, _ := r.txs.Get().(*Tx)
	if tx == nil {
		tx = new(Tx)
	}
	tx.reset(view, cfg, out.Time, viewNanos, call.ID)
	err := runGuarded(f.Fn, tx, call.Args)
	switch {
	case err != nil:
		out.Err = err
	case tx.err != nil:
		out.Err = tx.err
	}
	var writes []PathValue
	if out.Err == nil {
		out.Locks, writes = tx.records()
	} else if len(tx.locks) > 0 {
		out.Locks = slices.Clone(tx.locks)
	}
	if out.Err == nil {
		out.Writes, out.ids = tx.outcome(writes, out.Locks)
		out.pathsChecked = true
		if out.ids != nil {
			out.idStore, out.idGen = tx.store, tx.store.pathGen
		}
	}
	tx.release()
	r.txs.Put(tx)
	return out
}

func runGuarded(fn Func, tx *Tx, args []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrFunctionPanic, p)
		}
	}()
	return fn(tx, args)
}

// Commit stores the writes of a successful outcome atomically at time now,
// taking ownership of their slices (Run made them; nothing else may hold
// them). It returns the changes, or the refusal that stored nothing.
func (s *Store) Commit(now int64, out *Outcome) ([]Change, error) {
	if out.Err != nil {
		return nil, out.Err
	}
	s.changes = s.changes[:0]
	s.forgetLocks()
	vs := out.Writes
	var lockIDs, writeIDs []uint32
	if out.idStore == s && out.idGen == s.pathGen && len(out.ids) == len(out.Locks)+len(vs) {
		lockIDs, writeIDs = out.ids[:len(out.Locks)], out.ids[len(out.Locks):]
	}
	s.batch = s.batch[:0]
	for i := range vs {
		hint := noPath
		if writeIDs != nil {
			hint = writeIDs[i]
		}
		pid, err := s.checkWrite(now, &vs[i], !out.pathsChecked, hint)
		if err != nil {
			s.stats.Refused++
			return nil, err
		}
		s.batch = append(s.batch, pid)
	}
	if err := s.checkCapacity(vs); err != nil {
		s.stats.Refused++
		return nil, err
	}
	if lockIDs != nil && len(out.Locks) > 0 {
		// The locks' paths as the run found them; the ones it did not
		// find are added now.
		s.lockPaths = append(s.lockPaths[:0], lockIDs...)
		for i, id := range s.lockPaths {
			if id == noPath {
				s.lockPaths[i], _ = s.path(out.Locks[i].Path)
			}
		}
		s.lockPathsOf = &out.Locks[0]
	}
	for i := range vs {
		s.insertOwned(&vs[i], out.Tag, s.batch[i])
	}
	s.runCascade()
	return s.changes, nil
}

package match

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/rewindnet/rewind/netcode"
)

// Call tracing: how a cluster match checks that no confirmed call was lost
// and none applied twice.
//
// A traced call carries a tag after the game's arguments: the bot's index
// in the match and the bot's own sequence number of the call, which stays
// the same whatever the netcode call id becomes (a client that is welcomed
// afresh sends its calls again under new ids). TracedRegistry wraps every
// game function: it strips the tag, runs the game's function, and if that
// succeeded it reads trace/<bot>/<seq> and writes it back counting one
// more. The count is the number of valid applications of the call in the
// authority's history: a re-run replaces its earlier version (which is
// invalid when the re-run reads, so it is not counted), while a second
// application of the same call, under any id or time, either reads the
// first (and writes 2) or, arriving earlier in time, invalidates the
// first's read (which then re-runs and writes 2), by the validity rule.
// A confirmed call whose path is missing was lost; a count above 1 is a
// call applied twice. The paths are written only, and read only by the
// call itself, so tracing adds no dependency between calls.

// TracePrefix is the prefix of the trace paths.
const TracePrefix = "trace/"

// traceTagSize is the tag's size after a traced call's arguments: the bot
// index and the sequence number, 32 bits each, little-endian.
const traceTagSize = 8

// MaxTraced bounds the calls one Player traces: a traced call past it is
// refused by Player.Call (an hour's match of a bot makes far fewer).
const MaxTraced = 1 << 17

// ErrTrace: a traced function got no tag, or a trace path holds a bad
// count.
var ErrTrace = errors.New("match: call trace")

// TracePath returns trace/<bot>/<seq>.
func TracePath(bot, seq uint32) string {
	return TracePrefix + strconv.FormatUint(uint64(bot), 10) + "/" + strconv.FormatUint(uint64(seq), 10)
}

// traceArgs returns args with the tag of (bot, seq) appended (a copy).
func traceArgs(args []byte, bot, seq uint32) []byte {
	out := make([]byte, 0, len(args)+traceTagSize)
	out = append(out, args...)
	out = binary.LittleEndian.AppendUint32(out, bot)
	return binary.LittleEndian.AppendUint32(out, seq)
}

// TraceCount decodes a trace path's value: how many times the call was
// applied.
func TraceCount(v []byte) (uint32, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: count of %d bytes", ErrTrace, len(v))
	}
	return binary.LittleEndian.Uint32(v), nil
}

// TracedRegistry returns base's registry with every function traced (see
// above) and its spatial layers. The clients and the authorities of a
// traced match link it both.
func TracedRegistry(base func() *netcode.Registry) func() *netcode.Registry {
	return func() *netcode.Registry {
		b := base()
		r := netcode.NewRegistry()
		for _, name := range b.Names() {
			f, _ := b.Lookup(name)
			if err := r.Register(name, traced(f.Fn), f.Options); err != nil {
				panic(err) // names a registry already accepted: a failure is a bug here
			}
		}
		for _, l := range b.Layers() {
			if err := r.Spatial(l); err != nil {
				panic(err)
			}
		}
		return r
	}
}

// traced wraps fn: strip the tag, run fn, count the application.
func traced(fn netcode.Func) netcode.Func {
	return func(tx *netcode.Tx, args []byte) error {
		n := len(args) - traceTagSize
		if n < 0 {
			return fmt.Errorf("%w: arguments of %d bytes carry no tag", ErrTrace, len(args))
		}
		bot := binary.LittleEndian.Uint32(args[n:])
		seq := binary.LittleEndian.Uint32(args[n+4:])
		if err := fn(tx, args[:n:n]); err != nil {
			return err
		}
		p := TracePath(bot, seq)
		var count uint32
		if v, ok := tx.Read(p); ok {
			c, err := TraceCount(v)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			count = c
		}
		tx.Write(p, binary.LittleEndian.AppendUint32(nil, count+1))
		return nil
	}
}

// Outcome of a traced call as its client last heard it.
const (
	tracePending   uint8 = iota // no result yet
	traceConfirmed              // the latest result was a success
	traceFailed                 // the latest result was an error
)

// Trace is one Player's ledger of traced calls: each call's sequence
// number and the latest result its client heard (a re-run that fails
// later turns a confirmed call failed). The Player's goroutine owns it.
type Trace struct {
	// Bot is the index tagged on the calls.
	Bot    uint32
	ids    map[netcode.CallID]uint32
	status []uint8 // by seq-1
}

// NewTrace returns an empty ledger for bot.
func NewTrace(bot uint32) *Trace {
	return &Trace{Bot: bot, ids: make(map[netcode.CallID]uint32)}
}

// next returns the sequence number of the next call, or an error past
// MaxTraced.
func (t *Trace) next() (uint32, error) {
	if len(t.status) >= MaxTraced {
		return 0, fmt.Errorf("%w: more than %d calls", ErrTrace, MaxTraced)
	}
	return uint32(len(t.status)) + 1, nil
}

// made records call id as the call seq (the one next returned).
func (t *Trace) made(id netcode.CallID, seq uint32) {
	t.status = append(t.status, tracePending)
	t.ids[id] = seq
}

// result records a result of call id (err nil: a success).
func (t *Trace) result(id netcode.CallID, err error) {
	seq, ok := t.ids[id]
	if !ok {
		return
	}
	if err == nil {
		t.status[seq-1] = traceConfirmed
	} else {
		t.status[seq-1] = traceFailed
	}
}

// TraceCheck is what the trace paths of the surviving authorities say.
type TraceCheck struct {
	// Confirmed counts the calls whose client's latest result was a
	// success: each must be in every state, once.
	Confirmed uint64
	// Lost counts confirmed calls whose trace path is missing from at
	// least one state.
	Lost uint64
	// Duplicate counts calls (confirmed or not) applied more than once in
	// at least one state.
	Duplicate uint64
	// Unconfirmed counts calls the states hold although their client's
	// latest result was an error or none: a call whose result was lost
	// with its node, or timed out at the client, may have run.
	Unconfirmed uint64
	// Stray counts trace paths no ledger knows, or holding a bad count.
	Stray uint64
}

// CheckTraces checks the ledgers against the states (path → value, as
// read from each surviving authority).
func CheckTraces(ledgers []*Trace, states []map[string][]byte) TraceCheck {
	var c TraceCheck
	known := map[string]bool{}
	for _, t := range ledgers {
		for i, st := range t.status {
			p := TracePath(t.Bot, uint32(i)+1)
			known[p] = true
			present, dup := false, false
			missing := false
			for _, s := range states {
				v, ok := s[p]
				if !ok {
					missing = true
					continue
				}
				present = true
				if n, err := TraceCount(v); err == nil && n > 1 {
					dup = true
				}
			}
			if st == traceConfirmed {
				c.Confirmed++
				if missing {
					c.Lost++
				}
			} else if present {
				c.Unconfirmed++
			}
			if dup {
				c.Duplicate++
			}
		}
	}
	stray := map[string]bool{}
	for _, s := range states {
		for p, v := range s {
			if len(p) < len(TracePrefix) || p[:len(TracePrefix)] != TracePrefix {
				continue
			}
			if _, err := TraceCount(v); !known[p] || err != nil {
				stray[p] = true
			}
		}
	}
	c.Stray = uint64(len(stray))
	return c
}

// Divergence counts the paths whose value differs between the states (held
// by some and not others, or different bytes).
func Divergence(states []map[string][]byte) (diverged, compared uint64) {
	paths := map[string]bool{}
	for _, s := range states {
		for p := range s {
			paths[p] = true
		}
	}
	for p := range paths {
		compared++
		first, ok0 := states[0][p]
		for _, s := range states[1:] {
			v, ok := s[p]
			if ok != ok0 || string(v) != string(first) {
				diverged++
				break
			}
		}
	}
	return diverged, compared
}

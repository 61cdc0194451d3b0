// Package counter is the smallest complete Rewind game: named counters that
// any player can add to. Its registry is what `authority -functions counter`
// serves, and what a client of that authority must link; it is also a
// template for a game's own registry.
//
// # The contract
//
// One function, "add" (the constant Add):
//
//   - Arguments: an 8-byte little-endian int64 delta followed by the
//     counter's name (the rest of the bytes); AddArgs encodes them. The
//     name must make a valid path after the prefix: non-empty segments
//     separated by '/', UTF-8.
//   - It reads the counter at Prefix+name ("counters/<name>"), adds delta
//     and writes the sum there. A counter never written reads as 0.
//   - Values are 8-byte little-endian int64s; Count decodes one.
//   - Errors: ErrArgs for arguments that are too short or name no valid
//     path (the call fails; nothing is stored).
//
// Adds from many players at interleaved write times are what the
// authority's re-runs are for: a late add invalidates every later add of
// the same counter, and the authority re-runs them until the sum is right;
// each client sees its prediction corrected when it differed.
//
// # A client
//
// The client links the same registry, watches the counters and, once their
// snapshot has arrived, predicts each add at once:
//
//	c, err := netcode.Dial(ctx, "127.0.0.1:7777", netcode.Options{Registry: counter.Registry()})
//	if err != nil { ... }
//	defer c.Close()
//	c.Watch(counter.Prefix)
//	for !c.WatchReady(counter.Prefix) { c.Update(); wait a frame }
//	c.Call(counter.Add, counter.AddArgs("score", 1)) // readable at once
//	v, _ := c.Read(counter.Prefix + "score")
//	n, _ := counter.Count(v)
//
// Waiting for WatchReady (or EventWatchReady from Update) matters: a call
// predicted before the snapshot arrived reads 0 where the authority reads
// the real count, so the game shows a wrong count until the snapshot comes
// and the call is predicted again (or until the authority's answer
// corrects it). examples/counter/cmd/counter-client is the whole program.
//
// # A server
//
// `authority -functions counter` serves this registry; a game's own server
// links its registry the same way examples/counter/cmd/counter-server does
// (package authority/cli).
package counter

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rewindnet/rewind/netcode"
)

// Names of the counter game.
const (
	// Prefix is where the counters live: counter "score" is the path
	// "counters/score".
	Prefix = "counters/"
	// Add is the name of the function that adds to a counter.
	Add = "add"
)

// ErrArgs is the error of an add whose arguments are malformed.
var ErrArgs = errors.New("counter: bad arguments")

// Registry returns a registry holding the counter game's one function,
// Add. Register the same functions in the client and the authority. Add's
// shard key is the counter it writes, so in a cluster whose shard map
// splits counters/ each add runs on an owner of its counter.
func Registry() *netcode.Registry {
	r := netcode.NewRegistry()
	if err := r.Register(Add, add, netcode.FuncOptions{ShardKey: shardKey}); err != nil {
		panic(err) // a fixed, valid name: cannot happen
	}
	return r
}

// shardKey routes an add by the counter it writes ("" for malformed
// arguments, which fail wherever they run).
func shardKey(_ uint32, args []byte) string {
	if len(args) < 9 {
		return ""
	}
	return Prefix + string(args[8:])
}

func add(tx *netcode.Tx, args []byte) error {
	if len(args) < 9 {
		return fmt.Errorf("%w: want an 8-byte delta and a name, got %d bytes", ErrArgs, len(args))
	}
	delta := int64(binary.LittleEndian.Uint64(args))
	path := Prefix + string(args[8:])
	if err := netcode.ValidatePath(path); err != nil {
		return fmt.Errorf("%w: %w", ErrArgs, err)
	}
	cur, _ := tx.Read(path)
	n, err := Count(cur)
	if err != nil {
		return err
	}
	tx.Write(path, binary.LittleEndian.AppendUint64(nil, uint64(n+delta)))
	return nil
}

// AddArgs encodes the arguments of Add: delta, then the counter's name.
func AddArgs(name string, delta int64) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, uint64(delta)), name...)
}

// Count decodes a counter's value; nil (never written, or deleted) is 0.
func Count(v []byte) (int64, error) {
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.LittleEndian.Uint64(v)), nil
	}
	return 0, fmt.Errorf("%w: counter value of %d bytes", ErrArgs, len(v))
}

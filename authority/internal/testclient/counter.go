package testclient

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rewindnet/rewind/netcode"
)

// CounterPrefix is where the counter registry keeps its counters.
const CounterPrefix = "counters/"

// ErrCounterArgs is returned by the add function for malformed arguments.
var ErrCounterArgs = errors.New("testclient: bad counter arguments")

// Counter returns a registry with one function, "add": its arguments are
// AddArgs(name, delta), and it adds delta to the int64 at
// CounterPrefix+name (absent reads as 0). Concurrent adds from several
// clients at interleaved write times exercise the authority's re-runs: a
// late add invalidates every later add of the same counter, which the
// authority re-runs until the total is right.
func Counter() *netcode.Registry {
	r := netcode.NewRegistry()
	if err := r.Register("add", add, netcode.FuncOptions{}); err != nil {
		panic(err) // a fixed, valid name: cannot happen
	}
	return r
}

func add(tx *netcode.Tx, args []byte) error {
	if len(args) < 9 {
		return fmt.Errorf("%w: want an 8-byte delta and a name, got %d bytes", ErrCounterArgs, len(args))
	}
	delta := int64(binary.LittleEndian.Uint64(args))
	path := CounterPrefix + string(args[8:])
	if err := netcode.ValidatePath(path); err != nil {
		return fmt.Errorf("%w: %w", ErrCounterArgs, err)
	}
	cur, _ := tx.Read(path)
	n, err := Count(cur)
	if err != nil {
		return err
	}
	tx.Write(path, binary.LittleEndian.AppendUint64(nil, uint64(n+delta)))
	return nil
}

// AddArgs encodes the arguments of add.
func AddArgs(name string, delta int64) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, uint64(delta)), name...)
}

// Count decodes a counter value; nil (absent) is 0.
func Count(v []byte) (int64, error) {
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.LittleEndian.Uint64(v)), nil
	}
	return 0, fmt.Errorf("%w: counter value of %d bytes", ErrCounterArgs, len(v))
}

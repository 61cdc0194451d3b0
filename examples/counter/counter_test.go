package counter

import (
	"errors"
	"testing"

	"github.com/rewindnet/rewind/netcode"
)

func TestAdd(t *testing.T) {
	cfg := netcode.DefaultConfig()
	store, err := netcode.NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := Registry()
	const now = int64(10e9)
	run := func(seq uint64, args []byte) netcode.Outcome {
		return reg.Run(store, &cfg, netcode.Call{ID: netcode.CallID{Creator: 1, Seq: seq}, Name: Add, Args: args, Time: now + int64(seq)}, 0)
	}
	for seq, delta := range []int64{5, -2, 40} {
		out := run(uint64(seq+1), AddArgs("x", delta))
		if out.Err != nil {
			t.Fatal(out.Err)
		}
		if _, err := store.Commit(now, &out); err != nil {
			t.Fatal(err)
		}
	}
	v, ok := store.Latest(Prefix+"x", netcode.Time{Nanos: now + 100})
	if !ok {
		t.Fatal("no counter stored")
	}
	if n, err := Count(v.Value); err != nil || n != 43 {
		t.Fatalf("counter = %d, %v; want 43", n, err)
	}
	for _, tc := range []struct {
		name string
		args []byte
	}{
		{"short", []byte{1, 2, 3}},
		{"no name", AddArgs("", 1)},
		{"bad path", AddArgs("a//b", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out := run(9, tc.args); !errors.Is(out.Err, ErrArgs) {
				t.Fatalf("err = %v, want ErrArgs", out.Err)
			}
		})
	}
}

package testclient

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

func TestAdd(t *testing.T) {
	cfg := netcode.DefaultConfig()
	store, err := netcode.NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := Counter()
	const now = int64(10e9)
	run := func(seq uint64, args []byte) netcode.Outcome {
		return reg.Run(store, &cfg, netcode.Call{ID: netcode.CallID{Creator: 1, Seq: seq}, Name: "add", Args: args, Time: now + int64(seq)}, 0)
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
	v, ok := store.Latest(CounterPrefix+"x", netcode.Time{Nanos: now + 100})
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
			if out := run(9, tc.args); !errors.Is(out.Err, ErrCounterArgs) {
				t.Fatalf("err = %v, want ErrCounterArgs", out.Err)
			}
		})
	}
}

func TestView(t *testing.T) {
	at := func(n int64, version uint32) wire.Time { return wire.Time{Nanos: n, Version: version, Creator: 1} }
	vals := func(items ...wire.Value) *wire.Message {
		return &wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: items}}
	}
	states := func(items ...wire.StateChange) *wire.Message {
		return &wire.Message{Kind: wire.KindValidStates, ValidStates: wire.ValidStates{Items: items}}
	}
	type step struct {
		m    *wire.Message
		want string // latest of "p", "" for none
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"newest wins whatever the arrival order", []step{
			{vals(wire.Value{Path: "p", Time: at(20, 0), Value: []byte("b")}), "b"},
			{vals(wire.Value{Path: "p", Time: at(10, 0), Value: []byte("a")}), "b"},
		}},
		{"invalidated, re-run, restored", []step{
			{vals(wire.Value{Path: "p", Time: at(10, 0), Value: []byte("a")}), "a"},
			{vals(wire.Value{Path: "p", Time: at(20, 0), Value: []byte("b")}), "b"},
			{states(wire.StateChange{Path: "p", Time: at(20, 0), State: wire.StateInvalid}), "a"},
			{vals(wire.Value{Path: "p", Time: at(20, 1), Value: []byte("c")}), "c"},
			{states(wire.StateChange{Path: "p", Time: at(20, 1), State: wire.StateInvalid}), "a"},
			{vals(wire.Value{Path: "p", Time: at(20, 0), Value: []byte("b")}), "b"},
		}},
		{"deletion hides the path", []step{
			{vals(wire.Value{Path: "p", Time: at(10, 0), Value: []byte("a")}), "a"},
			{vals(wire.Value{Path: "p", Time: at(20, 0)}), ""},
		}},
		{"events are not kept", []step{
			{vals(wire.Value{Path: "p", Time: at(10, 0), Value: []byte("e"), Flags: wire.FlagEvent}), ""},
		}},
		{"unknown state change ignored", []step{
			{states(wire.StateChange{Path: "p", Time: at(10, 0), State: wire.StateValid}), ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewView()
			var got, want []string
			for _, s := range tc.steps {
				v.Apply(s.m)
				b, _ := v.Latest("p")
				got, want = append(got, string(b)), append(want, s.want)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("latest after each step (-want +got):\n%s", d)
			}
		})
	}
}

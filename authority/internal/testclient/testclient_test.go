package testclient

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rewindnet/rewind/netcode/wire"
)

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

package wire

import (
	"bytes"
	"errors"
	"testing"
)

// TestStringsMustBeUTF8: every string field on the wire (paths in values,
// path definitions, prefixes, call names, error texts, call result paths,
// snapshot ends) is valid UTF-8, as FlatBuffers strings are defined to be.
// The encoder refuses to write one that is not (ErrInvalid), and the
// decoder refuses a frame that carries one (ErrMalformed), so a strict
// FlatBuffers reader never meets a string it would refuse.
func TestStringsMustBeUTF8(t *testing.T) {
	const bad = "a/b\xff\xfe"
	// Each message is built with a placeholder of the same length in place
	// of the bad bytes; the decoder case patches it into the frame.
	const good = "a/bZZ"
	tests := []struct {
		name string
		m    func(s string) Message
	}{
		{"value path", func(s string) Message {
			return Message{Kind: KindValues, Values: Values{Items: []Value{{Path: s, Value: []byte{1}}}}}
		}},
		{"write lock path", func(s string) Message {
			return Message{Kind: KindWrite, Write: Write{Items: []Value{{Path: "x", Time: Time{Nanos: 9}, Locks: []Lock{{Path: s, End: Time{Nanos: 9}}}}}}}
		}},
		{"state change path", func(s string) Message {
			return Message{Kind: KindValidStates, ValidStates: ValidStates{Items: []StateChange{{Path: s}}}}
		}},
		{"watch prefix", func(s string) Message {
			return Message{Kind: KindWatch, Watch: Watch{Prefixes: []string{s + "/"}}}
		}},
		{"unwatch prefix", func(s string) Message {
			return Message{Kind: KindUnwatch, Unwatch: Unwatch{Prefixes: []string{s + "/"}}}
		}},
		{"call name", func(s string) Message {
			return Message{Kind: KindCall, Call: Call{Name: s}}
		}},
		{"call result error", func(s string) Message {
			return Message{Kind: KindCallResult, CallResult: CallResult{Status: CallFailed, Error: s}}
		}},
		{"call result output", func(s string) Message {
			return Message{Kind: KindCallResult, CallResult: CallResult{Outputs: []ValueRef{{Path: s}}}}
		}},
		{"call result read", func(s string) Message {
			return Message{Kind: KindCallResult, CallResult: CallResult{Reads: []Lock{{Path: s, End: Time{Nanos: 1}}}}}
		}},
		{"error text", func(s string) Message {
			return Message{Kind: KindError, Error: Error{Code: 1, Text: s}}
		}},
		{"watch done prefix", func(s string) Message {
			return Message{Kind: KindWatchDone, WatchDone: WatchDone{Prefix: s + "/"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/encode", func(t *testing.T) {
			e, _ := newPair(t, Limits{})
			frame := e.BeginFrame(nil)
			m := tt.m(bad)
			got, err := e.Append(frame, &m)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("encoding %q: got %v, want ErrInvalid", bad, err)
			}
			if len(got) != len(frame) {
				t.Errorf("frame grew to %d bytes on error", len(got))
			}
			// The dictionary was rolled back: a valid message still goes.
			ok := Message{Kind: KindValues, Values: Values{Items: []Value{{Path: "ok", Value: []byte{1}}}}}
			if _, err := e.Append(frame, &ok); err != nil {
				t.Fatalf("after the refusal: %v", err)
			}
		})
		t.Run(tt.name+"/decode", func(t *testing.T) {
			e, d := newPair(t, Limits{})
			m := tt.m(good)
			frame, err := e.Append(e.BeginFrame(nil), &m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeAll(d, frame); err != nil {
				t.Fatalf("the valid frame does not decode: %v", err)
			}
			i := bytes.Index(frame, []byte(good))
			if i < 0 || bytes.Count(frame, []byte(good)) != 1 {
				t.Fatalf("placeholder %q found %d times", good, bytes.Count(frame, []byte(good)))
			}
			copy(frame[i:], bad)
			_, d = newPair(t, Limits{})
			if _, err := decodeAll(d, frame); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decoding %q: got %v, want ErrMalformed", bad, err)
			}
		})
	}
}

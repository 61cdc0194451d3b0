package wire

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/google/go-cmp/cmp"

	"github.com/rewindnet/rewind/netcode/wire/fb"
)

// rawFrame wraps a FlatBuffers body built by hand as the only message of a
// frame of kind k.
func rawFrame(k Kind, body []byte) []byte {
	f := []byte{ProtocolVersion, byte(k)}
	f = binary.AppendUvarint(f, uint64(len(body)))
	return append(f, body...)
}

// rawRead describes one ReadRef to build by hand; a nil time is left out,
// and so is the path if noPath.
type rawRead struct {
	path       string
	noPath     bool
	start, end *Time
}

// rawCallResult builds a CallResult body with the generated builder.
// reads == nil leaves the reads field out and builds the table the way the
// schema before it did (four fields), as an older peer sends it.
func rawCallResult(id CallID, outputs []ValueRef, reads []rawRead) []byte {
	b := flatbuffers.NewBuilder(256)
	var offs []flatbuffers.UOffsetT
	for _, r := range outputs {
		p := b.CreateString(r.Path)
		fb.ValueRefStart(b)
		fb.ValueRefAddPath(b, p)
		fb.ValueRefAddTime(b, fb.CreateTime(b, r.Time.Nanos, r.Time.Version, r.Time.Creator))
		offs = append(offs, fb.ValueRefEnd(b))
	}
	vector := func() flatbuffers.UOffsetT {
		b.StartVector(4, len(offs), 4)
		for i := len(offs) - 1; i >= 0; i-- {
			b.PrependUOffsetT(offs[i])
		}
		return b.EndVector(len(offs))
	}
	outs := vector()
	var rv flatbuffers.UOffsetT
	if reads != nil {
		offs = offs[:0]
		for _, r := range reads {
			var p flatbuffers.UOffsetT
			if !r.noPath {
				p = b.CreateString(r.path)
			}
			fb.ReadRefStart(b)
			if p != 0 {
				fb.ReadRefAddPath(b, p)
			}
			if r.start != nil {
				fb.ReadRefAddStart(b, fb.CreateTime(b, r.start.Nanos, r.start.Version, r.start.Creator))
			}
			if r.end != nil {
				fb.ReadRefAddEnd(b, fb.CreateTime(b, r.end.Nanos, r.end.Version, r.end.Creator))
			}
			offs = append(offs, fb.ReadRefEnd(b))
		}
		rv = vector()
	}
	if reads == nil {
		b.StartObject(4) // the old CallResultStart
	} else {
		fb.CallResultStart(b)
	}
	fb.CallResultAddId(b, fb.CreateCallID(b, id.Creator, id.Seq))
	fb.CallResultAddStatus(b, byte(CallOK))
	fb.CallResultAddOutputs(b, outs)
	if reads != nil {
		fb.CallResultAddReads(b, rv)
	}
	b.Finish(fb.CallResultEnd(b))
	return b.FinishedBytes()
}

// TestCallResultFromOlderPeer decodes a CallResult laid out by the schema
// before the reads field: it must decode, with empty Reads, even into a
// Message whose Reads held something from an earlier result.
func TestCallResultFromOlderPeer(t *testing.T) {
	body := rawCallResult(CallID{Creator: 2, Seq: 5}, []ValueRef{{Path: "players/2/pos", Time: Time{Nanos: 77, Creator: 2}}}, nil)
	root, err := rootTable(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(4 + 2*4); root.vtLen != want {
		t.Fatalf("hand-built old CallResult has a vtable of %d bytes, want %d (four fields)", root.vtLen, want)
	}
	_, d := newPair(t, Limits{})
	m := Message{CallResult: CallResult{Reads: []Lock{{Path: "stale", End: Time{Nanos: 1}}}}}
	if err := d.Start(rawFrame(KindCallResult, body)); err != nil {
		t.Fatal(err)
	}
	if err := d.Next(&m); err != nil {
		t.Fatal(err)
	}
	want := CallResult{ID: CallID{Creator: 2, Seq: 5}, Status: CallOK, Outputs: []ValueRef{{Path: "players/2/pos", Time: Time{Nanos: 77, Creator: 2}}}}
	if diff := cmp.Diff(want, m.CallResult, cmpMsg...); diff != "" {
		t.Errorf("old-format CallResult (-want +got):\n%s", diff)
	}
	if len(m.CallResult.Reads) != 0 {
		t.Errorf("Reads = %v, want empty", m.CallResult.Reads)
	}
}

// TestCallResultReadsReuse decodes results with reads into one Message and
// checks that each decode replaces the reads of the one before.
func TestCallResultReadsReuse(t *testing.T) {
	e, d := newPair(t, Limits{})
	results := []CallResult{
		{ID: CallID{Seq: 1}, Reads: []Lock{{Path: "a", End: Time{Nanos: 1}}, {Path: "b", Start: Time{Nanos: 1}, End: Time{Nanos: 2}}}},
		{ID: CallID{Seq: 2}, Reads: []Lock{{Path: "c", End: Time{Nanos: 3}}}},
		{ID: CallID{Seq: 3}, Status: CallFailed, Error: "no"},
	}
	var m Message
	for i := range results {
		frame, err := e.AppendCallResult(e.BeginFrame(nil), &results[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(frame); err != nil {
			t.Fatal(err)
		}
		if err := d.Next(&m); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(results[i], m.CallResult, cmpMsg...); diff != "" {
			t.Errorf("result %d (-sent +got):\n%s", i, diff)
		}
	}
}

func TestCallResultEncoderRejects(t *testing.T) {
	t1, t2 := Time{Nanos: 10, Version: 1, Creator: 2}, Time{Nanos: 10, Version: 1, Creator: 3}
	tests := []struct {
		name  string
		lim   Limits
		reads []Lock
		want  error
	}{
		{"too many reads", Limits{MaxLocks: 2}, []Lock{{Path: "a", End: t1}, {Path: "b", End: t1}, {Path: "c", End: t1}}, ErrTooLarge},
		{"empty read path", Limits{}, []Lock{{Path: "a", End: t1}, {End: t1}}, ErrInvalid},
		{"long read path", Limits{MaxPathBytes: 3}, []Lock{{Path: "abcd", End: t1}}, ErrTooLarge},
		{"start equals end", Limits{}, []Lock{{Path: "a", Start: t1, End: t1}}, ErrInvalid},
		{"start after end", Limits{}, []Lock{{Path: "a", Start: t2, End: t1}}, ErrInvalid},
		{"zero end", Limits{}, []Lock{{Path: "a"}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newPair(t, tt.lim)
			frame := e.BeginFrame(nil)
			got, err := e.AppendCallResult(frame, &CallResult{Reads: tt.reads})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if len(got) != len(frame) {
				t.Errorf("frame grew to %d bytes on error", len(got))
			}
		})
	}
	// At the limits exactly, it encodes.
	e, _ := newPair(t, Limits{MaxLocks: 2, MaxPathBytes: 3})
	if _, err := e.AppendCallResult(e.BeginFrame(nil), &CallResult{Reads: []Lock{{Path: "abc", End: t1}, {Path: "b", Start: t1, End: t2}}}); err != nil {
		t.Errorf("reads at the limits: %v", err)
	}
}

func TestCallResultDecoderRejects(t *testing.T) {
	t1, t2 := Time{Nanos: 10, Version: 1, Creator: 2}, Time{Nanos: 10, Version: 1, Creator: 3}
	encoded := func(reads ...Lock) func() []byte {
		return func() []byte {
			e, _ := newPair(t, Limits{})
			f, err := e.AppendCallResult(e.BeginFrame(nil), &CallResult{Reads: reads})
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	byHand := func(reads ...rawRead) func() []byte {
		return func() []byte { return rawFrame(KindCallResult, rawCallResult(CallID{}, nil, reads)) }
	}
	tests := []struct {
		name  string
		lim   Limits
		frame func() []byte
		want  error
	}{
		{"too many reads", Limits{MaxLocks: 1}, encoded(Lock{Path: "a", End: t1}, Lock{Path: "b", End: t1}), ErrTooLarge},
		{"read path over limit", Limits{MaxPathBytes: 3}, encoded(Lock{Path: "abcd", End: t1}), ErrTooLarge},
		{"empty read path", Limits{}, byHand(rawRead{path: "", end: &t1}), ErrMalformed},
		{"absent read path", Limits{}, byHand(rawRead{noPath: true, end: &t1}), ErrMalformed},
		{"start equals end", Limits{}, byHand(rawRead{path: "a", start: &t1, end: &t1}), ErrMalformed},
		{"start after end", Limits{}, byHand(rawRead{path: "a", start: &t2, end: &t1}), ErrMalformed},
		{"absent times", Limits{}, byHand(rawRead{path: "a"}), ErrMalformed},
		{"second read bad", Limits{}, byHand(rawRead{path: "a", end: &t1}, rawRead{path: "b", start: &t2, end: &t1}), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d := newPair(t, tt.lim)
			_, err := decodeAll(d, tt.frame())
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "wire: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
	// The hand-built layout itself is sound: with valid times it decodes.
	_, d := newPair(t, Limits{})
	got, err := decodeAll(d, byHand(rawRead{path: "a", end: &t1}, rawRead{path: "b", start: &t1, end: &t2})())
	if err != nil {
		t.Fatal(err)
	}
	want := []Lock{{Path: "a", End: t1}, {Path: "b", Start: t1, End: t2}}
	if diff := cmp.Diff(want, got[0].CallResult.Reads); diff != "" {
		t.Errorf("hand-built reads (-want +got):\n%s", diff)
	}
}

// TestDecodeCallResultAllocs: once m has grown, decoding a CallResult
// allocates only its strings (one per output and per read path; the
// slices are reused).
func TestDecodeCallResultAllocs(t *testing.T) {
	e, d := newPair(t, Limits{})
	cr := CallResult{
		ID:      CallID{Creator: 1, Seq: 2},
		Outputs: []ValueRef{{Path: "players/1/pos", Time: Time{Nanos: 9}}, {Path: "players/1/vel", Time: Time{Nanos: 9}}},
		Reads: []Lock{
			{Path: "players/1/pos", Start: Time{Nanos: 1}, End: Time{Nanos: 9}},
			{Path: "players/1/vel", Start: Time{Nanos: 1}, End: Time{Nanos: 9}},
			{Path: "world/walls", End: Time{Nanos: 9}},
		},
	}
	frame, err := e.AppendCallResult(e.BeginFrame(nil), &cr)
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	decode := func() {
		if err := d.Start(frame); err != nil {
			t.Fatal(err)
		}
		if err := d.Next(&m); err != nil {
			t.Fatal(err)
		}
	}
	decode() // grow m
	var buf []byte
	encAllocs := testing.AllocsPerRun(100, func() {
		buf, _ = e.AppendCallResult(e.BeginFrame(buf[:0]), &cr)
	})
	decAllocs := testing.AllocsPerRun(100, decode)
	if want := float64(len(cr.Outputs) + len(cr.Reads)); encAllocs != 0 || decAllocs != want {
		t.Errorf("warm CallResult: %v allocs to encode, %v to decode; want 0 and %v", encAllocs, decAllocs, want)
	}
}

// TestMatchedCallResultDecoderRejects: a matched result with outputs, with
// reads or with a status other than ok is malformed, whoever built it.
func TestMatchedCallResultDecoderRejects(t *testing.T) {
	t1 := Time{Nanos: 10, Version: 1, Creator: 2}
	build := func(status CallStatus, outputs []ValueRef, reads bool) []byte {
		b := flatbuffers.NewBuilder(256)
		var outs, rv flatbuffers.UOffsetT
		if len(outputs) > 0 {
			p := b.CreateString(outputs[0].Path)
			fb.ValueRefStart(b)
			fb.ValueRefAddPath(b, p)
			fb.ValueRefAddTime(b, fb.CreateTime(b, t1.Nanos, t1.Version, t1.Creator))
			o := fb.ValueRefEnd(b)
			b.StartVector(4, 1, 4)
			b.PrependUOffsetT(o)
			outs = b.EndVector(1)
		}
		if reads {
			p := b.CreateString("a")
			fb.ReadRefStart(b)
			fb.ReadRefAddPath(b, p)
			fb.ReadRefAddEnd(b, fb.CreateTime(b, t1.Nanos, t1.Version, t1.Creator))
			o := fb.ReadRefEnd(b)
			b.StartVector(4, 1, 4)
			b.PrependUOffsetT(o)
			rv = b.EndVector(1)
		}
		fb.CallResultStart(b)
		fb.CallResultAddId(b, fb.CreateCallID(b, 1, 2))
		fb.CallResultAddStatus(b, byte(status))
		if outs != 0 {
			fb.CallResultAddOutputs(b, outs)
		}
		if rv != 0 {
			fb.CallResultAddReads(b, rv)
		}
		fb.CallResultAddMatched(b, true)
		b.Finish(fb.CallResultEnd(b))
		return rawFrame(KindCallResult, b.FinishedBytes())
	}
	tests := []struct {
		name  string
		frame []byte
	}{
		{"with outputs", build(CallOK, []ValueRef{{Path: "a"}}, false)},
		{"with reads", build(CallOK, nil, true)},
		{"failed", build(CallFailed, nil, false)},
		{"rejected", build(CallRejected, nil, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d := newPair(t, Limits{})
			if _, err := decodeAll(d, tt.frame); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	// The same builder with status ok and nothing else decodes.
	_, d := newPair(t, Limits{})
	got, err := decodeAll(d, build(CallOK, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	want := CallResult{ID: CallID{Creator: 1, Seq: 2}, Status: CallOK, Matched: true}
	if diff := cmp.Diff(want, got[0].CallResult, cmpMsg...); diff != "" {
		t.Errorf("matched result (-want +got):\n%s", diff)
	}
}

package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/rewindnet/rewind/netcode/wire/fb"
)

// body returns the body of the only message of frame and its kind.
func body(t *testing.T, frame []byte) (Kind, []byte) {
	t.Helper()
	k := Kind(frame[1])
	n, w := binary.Uvarint(frame[2:])
	if w <= 0 || 2+w+int(n) != len(frame) {
		t.Fatalf("frame of %d bytes: body length %d (%d bytes)", len(frame), n, w)
	}
	return k, frame[2+w:]
}

// TestHandLaidTables reads the hand-laid batch tables and matched results
// with the generated FlatBuffers accessors, as any FlatBuffers reader
// would, and checks every field, and the alignment of the structs within
// the body.
func TestHandLaidTables(t *testing.T) {
	base := Time{Nanos: -5_000_000_001, Version: 7, Creator: 1 << 31}
	for _, k := range []Kind{KindValues, KindWrite, KindValidStates} {
		e, _ := newPair(t, Limits{})
		var frame []byte
		var err error
		switch k {
		case KindValues:
			frame, err = e.AppendValues(e.BeginFrame(nil), &Values{Items: []Value{{Path: "a", Time: base, Value: []byte("xyz")}, {Path: "a", Time: Time{Nanos: 9}}}})
		case KindWrite:
			frame, err = e.AppendWrite(e.BeginFrame(nil), &Write{Items: []Value{{Path: "a", Time: base, Value: []byte("xyz")}, {Path: "a", Time: Time{Nanos: 9}}}})
		default:
			frame, err = e.AppendValidStates(e.BeginFrame(nil), &ValidStates{Items: []StateChange{{Path: "a", Time: base}, {Path: "a", Time: Time{Nanos: 9}}}})
		}
		if err != nil {
			t.Fatal(err)
		}
		// Skip the PathDefs message the batch's new path brought.
		_, defs := body(t, frame[:2+int(frame[2])+1])
		rest := append([]byte{ProtocolVersion}, frame[1+2+len(defs):]...)
		gotK, b := body(t, rest)
		if gotK != k {
			t.Fatalf("kind %v, want %v", gotK, k)
		}
		var tm fb.Time
		var count uint32
		var recs []byte
		var pos int
		switch k {
		case KindValues:
			x := fb.GetRootAsValues(b, 0)
			x.Base(&tm)
			count, recs, pos = x.Count(), x.RecordsBytes(), int(tm.Table().Pos)
		case KindWrite:
			x := fb.GetRootAsWrite(b, 0)
			x.Base(&tm)
			count, recs, pos = x.Count(), x.RecordsBytes(), int(tm.Table().Pos)
		default:
			x := fb.GetRootAsValidStates(b, 0)
			x.Base(&tm)
			count, recs, pos = x.Count(), x.RecordsBytes(), int(tm.Table().Pos)
		}
		if got := (Time{Nanos: tm.Nanos(), Version: tm.Version(), Creator: tm.Creator()}); got != base || count != 2 {
			t.Errorf("%v: base %v count %d, want %v 2", k, got, count, base)
		}
		if pos%8 != 0 {
			t.Errorf("%v: base struct at %d, not 8-aligned", k, pos)
		}
		if !bytes.Equal(recs, e.rec) {
			t.Errorf("%v: records %x, want %x", k, recs, e.rec)
		}
	}
	e, _ := newPair(t, Limits{})
	frame, err := e.AppendCallResult(e.BeginFrame(nil), &CallResult{ID: CallID{Creator: 0xfedcba98, Seq: 1<<63 + 5}, Status: CallOK, Matched: true})
	if err != nil {
		t.Fatal(err)
	}
	k, b := body(t, frame)
	if k != KindCallResult {
		t.Fatalf("kind %v", k)
	}
	x := fb.GetRootAsCallResult(b, 0)
	var id fb.CallID
	x.Id(&id)
	if id.Creator() != 0xfedcba98 || id.Seq() != 1<<63+5 || x.Status() != byte(CallOK) || !x.Matched() ||
		x.OutputsLength() != 0 || x.ReadsLength() != 0 || x.Error() != nil {
		t.Errorf("matched result read back as id %d/%d status %d matched %v outputs %d reads %d error %q",
			id.Creator(), id.Seq(), x.Status(), x.Matched(), x.OutputsLength(), x.ReadsLength(), x.Error())
	}
	if pos := int(id.Table().Pos); pos%8 != 0 {
		t.Errorf("call id struct at %d, not 8-aligned", pos)
	}
}

package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchValues returns n position updates as an authority streams them to a
// watcher: one path per player, 8-byte values, each written by its own
// player (creator) at its own time within the last 50 ms. Seeded: every run
// encodes the same batch.
func benchValues(n int) Values {
	rng := rand.New(rand.NewPCG(1, 2))
	base := int64(1_700_000_000_000_000_000)
	vs := Values{Items: make([]Value, n)}
	for i := range vs.Items {
		v := make([]byte, 8)
		binary.LittleEndian.PutUint32(v, rng.Uint32())
		binary.LittleEndian.PutUint32(v[4:], rng.Uint32())
		vs.Items[i] = Value{
			Path: fmt.Sprintf("players/%d/pos", 1000+i),
			Time: Time{Nanos: base + rng.Int64N(50_000_000), Creator: uint32(1000 + i)},
			// Version 0, state valid, no flags: the common case.
			Value: v,
		}
	}
	return vs
}

const benchN = 64

func report(b *testing.B, frameBytes int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchN, "ns/value")
	b.ReportMetric(float64(frameBytes)/benchN, "B/value")
}

func BenchmarkEncodeValues(b *testing.B) {
	e, _ := newPair(b, Limits{})
	vs := benchValues(benchN)
	buf, err := e.AppendValues(e.BeginFrame(nil), &vs) // warm the dictionary
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf, _ = e.AppendValues(e.BeginFrame(buf[:0]), &vs)
	}
	report(b, len(buf))
}

func BenchmarkDecodeValues(b *testing.B) {
	e, d := newPair(b, Limits{})
	vs := benchValues(benchN)
	first, _ := e.AppendValues(e.BeginFrame(nil), &vs)
	frame, err := e.AppendValues(e.BeginFrame(nil), &vs)
	if err != nil {
		b.Fatal(err)
	}
	var m Message
	if _, err := decodeAll(d, first); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := d.Start(frame); err != nil {
			b.Fatal(err)
		}
		if err := d.Next(&m); err != nil {
			b.Fatal(err)
		}
	}
	if len(m.Values.Items) != benchN {
		b.Fatalf("decoded %d values", len(m.Values.Items))
	}
	report(b, len(frame))
}

func BenchmarkEncodeValuesJSON(b *testing.B) {
	vs := benchValues(benchN)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = json.Marshal(&vs)
	}
	report(b, len(buf))
}

func BenchmarkDecodeValuesJSON(b *testing.B) {
	vs := benchValues(benchN)
	frame, err := json.Marshal(&vs)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var got Values
		if err := json.Unmarshal(frame, &got); err != nil {
			b.Fatal(err)
		}
	}
	report(b, len(frame))
}

// The gob baselines use one long-lived stream per direction, as a
// connection would: type information is sent once, not per frame.

func BenchmarkEncodeValuesGob(b *testing.B) {
	vs := benchValues(benchN)
	var w bytes.Buffer
	enc := gob.NewEncoder(&w)
	if err := enc.Encode(&vs); err != nil { // sends the types
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		w.Reset()
		if err := enc.Encode(&vs); err != nil {
			b.Fatal(err)
		}
		n = w.Len()
	}
	report(b, n)
}

// repeatReader yields head once, then body forever.
type repeatReader struct {
	head, body []byte
	p          int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	n := copy(p, r.body[r.p:])
	r.p = (r.p + n) % len(r.body)
	return n, nil
}

func BenchmarkDecodeValuesGob(b *testing.B) {
	vs := benchValues(benchN)
	var w bytes.Buffer
	enc := gob.NewEncoder(&w)
	if err := enc.Encode(&vs); err != nil {
		b.Fatal(err)
	}
	head := bytes.Clone(w.Bytes())
	w.Reset()
	if err := enc.Encode(&vs); err != nil {
		b.Fatal(err)
	}
	body := bytes.Clone(w.Bytes())
	dec := gob.NewDecoder(&repeatReader{head: head, body: body})
	var got Values
	if err := dec.Decode(&got); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got = Values{}
		if err := dec.Decode(&got); err != nil {
			b.Fatal(err)
		}
	}
	report(b, len(body))
}

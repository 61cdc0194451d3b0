package fec

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRecoverLosses sends packets through an encoder, loses some, and
// checks the decoder hands back exactly the lost data packets of every
// group that kept at least DataShards packets.
func TestRecoverLosses(t *testing.T) {
	const data, parity = 10, 3
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		enc, err := NewEncoder(data, parity)
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := NewDecoder(data, parity)
		var sent, got [][]byte
		var wire [][]byte // one group's packets
		lostData := 0
		recoverable := 0
		now := uint32(0)
		for range 50 * data {
			payload := make([]byte, 1+rng.IntN(1100))
			for i := range payload {
				payload[i] = byte(rng.Uint32())
			}
			sent = append(sent, payload)
			pkt := append(make([]byte, DataHeaderSize), payload...)
			ps := enc.Seal(now, pkt)
			now += 5
			wire = append(wire, pkt)
			for _, p := range ps {
				wire = append(wire, bytes.Clone(p))
			}
			if ps == nil {
				continue
			}
			// A full group: lose up to parity+1 packets at random.
			lost := map[int]bool{}
			for range rng.IntN(parity + 2) {
				lost[rng.IntN(len(wire))] = true
			}
			ld := 0
			for i := range lost {
				if i < data {
					ld++
				}
			}
			if len(lost) <= parity {
				recoverable += ld
			}
			lostData += ld
			for i, p := range wire {
				if lost[i] {
					continue
				}
				if pl := Payload(p); pl != nil {
					got = append(got, bytes.Clone(pl))
				}
				dec.Add(p, func(r []byte) { got = append(got, bytes.Clone(r)) })
			}
			wire = wire[:0]
		}
		if want := len(sent) - lostData + recoverable; len(got) != want {
			t.Fatalf("seed %d: got %d payloads, want %d (%d data lost, %d recoverable)", seed, len(got), want, lostData, recoverable)
		}
		for _, g := range got {
			found := false
			for _, s := range sent {
				if bytes.Equal(g, s) {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("seed %d: a payload that was never sent came out", seed)
			}
		}
		if dec.Recovered != uint64(recoverable) {
			t.Fatalf("seed %d: Recovered %d, want %d", seed, dec.Recovered, recoverable)
		}
	}
}

func TestPauseSkipsParity(t *testing.T) {
	enc, _ := NewEncoder(2, 1)
	if ps := enc.Seal(0, make([]byte, DataHeaderSize+4)); ps != nil {
		t.Fatal("parity after one packet")
	}
	if ps := enc.Seal(pauseMs, make([]byte, DataHeaderSize+4)); ps != nil {
		t.Fatal("parity sent across a pause")
	}
	// The skipped parity's seqid is used up: the next group starts at 3.
	pkt := make([]byte, DataHeaderSize+4)
	enc.Seal(pauseMs+1, pkt)
	if pkt[0] != 3 {
		t.Fatalf("next seqid %d, want 3", pkt[0])
	}
}

func TestDecoderHostileInput(t *testing.T) {
	dec, _ := NewDecoder(3, 2)
	rng := rand.New(rand.NewPCG(9, 9))
	for range 100000 {
		p := make([]byte, rng.IntN(40))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		if len(p) >= HeaderSize && rng.IntN(2) == 0 {
			p[4], p[5] = TypeData+byte(rng.IntN(2)), 0
			p[1], p[2], p[3] = 0, 0, 0
		}
		dec.Add(p, func([]byte) {})
		Payload(p)
	}
	held := 0
	for _, g := range dec.ring {
		for _, s := range g.shards {
			if s != nil {
				held++
			}
		}
	}
	if held > len(dec.ring)*dec.size || len(dec.bufs) > 4*dec.size {
		t.Fatalf("%d shards held, %d spare", held, len(dec.bufs))
	}
}

// groupPackets seals n groups of data+parity packets of random payloads
// and returns them in sending order, with the payloads.
func groupPackets(rng *rand.Rand, data, parity, n int) (wire, payloads [][]byte) {
	enc, _ := NewEncoder(data, parity)
	now := uint32(0)
	for range n * data {
		payload := make([]byte, 2+rng.IntN(500))
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		payloads = append(payloads, payload)
		pkt := append(make([]byte, DataHeaderSize), payload...)
		ps := enc.Seal(now, pkt)
		now += 5
		wire = append(wire, pkt)
		for _, p := range ps {
			wire = append(wire, bytes.Clone(p))
		}
	}
	return wire, payloads
}

// TestRecoverAcrossGroups mixes the packets of neighbouring groups (each
// moved up to two groups' worth of packets) and loses one data packet of
// each group: every group is still rebuilt, as the decoder keeps the
// newest group and keepGroups before it open.
func TestRecoverAcrossGroups(t *testing.T) {
	const data, parity, groups = 10, 3, 40
	rng := rand.New(rand.NewPCG(5, 5))
	wire, payloads := groupPackets(rng, data, parity, groups)
	size := data + parity
	type late struct {
		at  int
		pkt []byte
	}
	var kept []late
	for i, p := range wire {
		if i%size == i/size%data {
			continue // one data packet of each group lost
		}
		kept = append(kept, late{i + rng.IntN(2*size), p})
	}
	slices.SortStableFunc(kept, func(a, b late) int { return a.at - b.at })
	dec, _ := NewDecoder(data, parity)
	got := map[string]bool{}
	for _, k := range kept {
		p := k.pkt
		if pl := Payload(p); pl != nil {
			got[string(pl)] = true
		}
		dec.Add(p, func(r []byte) { got[string(r)] = true })
	}
	// A data packet that comes after the group could be rebuilt is
	// rebuilt too, so Recovered counts at least the lost ones.
	if dec.Recovered < groups || dec.Failed != 0 {
		t.Fatalf("Recovered %d, Failed %d, want at least %d, 0", dec.Recovered, dec.Failed, groups)
	}
	for i, pl := range payloads {
		if !got[string(pl)] {
			t.Fatalf("payload %d (group %d) missing", i, i/data)
		}
	}
	// A group keepGroups+1 behind the newest is closed: its packets are
	// ignored.
	old, _ := groupPackets(rng, data, parity, 1)
	dec.Add(old[0], func([]byte) { t.Fatal("an old group rebuilt") })
}

// BenchmarkDecoder feeds groups that each lost one data packet, as a
// lossy link does: every group is rebuilt.
func BenchmarkDecoder(b *testing.B) {
	const data, parity = 10, 3
	wire, _ := groupPackets(rand.New(rand.NewPCG(1, 1)), data, parity, 64)
	size := data + parity
	dec, _ := NewDecoder(data, parity)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i, p := range wire {
			if i%size == 3 {
				continue
			}
			// Each pass sends the groups again under newer seqids.
			binary.LittleEndian.PutUint32(p, uint32(n*len(wire)+i))
			dec.Add(p, func([]byte) {})
		}
		n++
	}
}

// BenchmarkDecoderSessions is BenchmarkDecoder over 500 decoders, one per
// session as a server holds them, each group losing a data packet at a
// position of its own: the pattern of lost shards varies, as it does
// between sessions on lossy links. An op is one group rebuilt.
func BenchmarkDecoderSessions(b *testing.B) {
	const data, parity, sessions = 10, 3, 500
	rng := rand.New(rand.NewPCG(2, 2))
	wire, _ := groupPackets(rng, data, parity, 1)
	size := data + parity
	decs := make([]*Decoder, sessions)
	seqs := make([]uint32, sessions)
	for i := range decs {
		decs[i], _ = NewDecoder(data, parity)
	}
	pkt := make([]byte, 0, maxShard)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		s := n % sessions
		lost := rng.IntN(data)
		for i, p := range wire {
			if i == lost {
				continue
			}
			pkt = append(pkt[:0], p...)
			binary.LittleEndian.PutUint32(pkt, seqs[s]+uint32(i))
			decs[s].Add(pkt, func([]byte) {})
		}
		seqs[s] += uint32(size)
		n++
	}
}

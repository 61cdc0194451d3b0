package netcode

import "testing"

// TestOutcomeDigest: the digest covers every field a result tells the
// caller (each change below gives another digest) and ignores
// FlagPredicted, which only the client's copy carries.
func TestOutcomeDigest(t *testing.T) {
	base := func() Outcome {
		w := Time{Nanos: 100, Version: 0, Creator: 7}
		return Outcome{
			Time:   w,
			Locks:  []ReadLock{{Path: "a", Start: Time{Nanos: 50, Creator: 3}, End: w}, {Path: "b", End: w}},
			Writes: []PathValue{{Path: "a", Time: w, Value: []byte{1, 2}}, {Path: "e", Time: w, Value: []byte{}, Flags: FlagEvent}},
		}
	}
	o := base()
	d := o.Digest()
	if d == 0 {
		t.Fatal("digest is 0")
	}
	p := base()
	for i := range p.Writes {
		p.Writes[i].Flags |= FlagPredicted
	}
	if p.Digest() != d {
		t.Error("FlagPredicted changes the digest")
	}
	changes := map[string]func(o *Outcome){
		"value byte":       func(o *Outcome) { o.Writes[0].Value[1] = 3 },
		"value nil":        func(o *Outcome) { o.Writes[1].Value = nil },
		"value longer":     func(o *Outcome) { o.Writes[0].Value = append(o.Writes[0].Value, 0) },
		"write path":       func(o *Outcome) { o.Writes[0].Path = "c" },
		"write time":       func(o *Outcome) { o.Writes[0].Time.Nanos++ },
		"write version":    func(o *Outcome) { o.Writes[0].Time.Version++ },
		"write creator":    func(o *Outcome) { o.Writes[0].Time.Creator++ },
		"flags":            func(o *Outcome) { o.Writes[1].Flags = 0 },
		"write dropped":    func(o *Outcome) { o.Writes = o.Writes[:1] },
		"writes swapped":   func(o *Outcome) { o.Writes[0], o.Writes[1] = o.Writes[1], o.Writes[0] },
		"lock start":       func(o *Outcome) { o.Locks[0].Start.Nanos++ },
		"lock start maker": func(o *Outcome) { o.Locks[0].Start.Creator++ },
		"lock end":         func(o *Outcome) { o.Locks[1].End.Nanos-- },
		"lock path":        func(o *Outcome) { o.Locks[1].Path = "bb" },
		"lock dropped":     func(o *Outcome) { o.Locks = o.Locks[:1] },
		"path into value":  func(o *Outcome) { o.Writes[0].Path, o.Writes[0].Value = "a\x01", []byte{2} },
	}
	for name, change := range changes {
		c := base()
		change(&c)
		if c.Digest() == d {
			t.Errorf("%s: same digest", name)
		}
	}
}

// BenchmarkOutcomeDigest: the digest of a call's outcome with two reads
// and one 8-byte write, as the node computes it once per predicted call.
func BenchmarkOutcomeDigest(b *testing.B) {
	w := Time{Nanos: 100_000_000_000, Creator: 7}
	o := Outcome{
		Locks:  []ReadLock{{Path: "players/7/pos", Start: Time{Nanos: 99_000_000_000, Creator: 7}, End: w}, {Path: "players/8/pos", Start: Time{Nanos: 99_500_000_000, Creator: 8}, End: w}},
		Writes: []PathValue{{Path: "players/7/pos", Time: w, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}}},
	}
	var d uint64
	for b.Loop() {
		d += o.Digest()
	}
	_ = d
}

package netcode_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/rewindnet/rewind/netcode"
)

func TestFloatsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []float64
	}{
		{"empty", []float64{}},
		{"one", []float64{1.5}},
		{"specials", []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64}},
		{"vector", []float64{-3.25, 4, 1e300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := netcode.AppendFloats([]byte("x"), tc.v...)
			if len(b) != 1+8*len(tc.v) {
				t.Fatalf("encoded %d bytes, want %d", len(b), 1+8*len(tc.v))
			}
			got, err := netcode.Floats(b[1:])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.v, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			for i := range got { // the sign of zero survives
				if math.Signbit(got[i]) != math.Signbit(tc.v[i]) {
					t.Errorf("component %d: sign lost", i)
				}
			}
		})
	}
	// Little-endian float64, as documented.
	if got, want := netcode.AppendFloats(nil, 1), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}; !cmp.Equal(got, want) {
		t.Errorf("AppendFloats(1) = %x, want %x", got, want)
	}
	nan, err := netcode.Floats(netcode.AppendFloats(nil, math.NaN()))
	if err != nil || len(nan) != 1 || !math.IsNaN(nan[0]) {
		t.Errorf("NaN round trip: %v, %v", nan, err)
	}
}

func TestFloatsBadInput(t *testing.T) {
	for _, n := range []int{1, 7, 9, 15} {
		if _, err := netcode.Floats(make([]byte, n)); !errors.Is(err, netcode.ErrBadFloats) {
			t.Errorf("%d bytes: err = %v, want ErrBadFloats", n, err)
		}
	}
	if v, err := netcode.Floats(nil); err != nil || len(v) != 0 {
		t.Errorf("nil: %v, %v", v, err)
	}
}

func sample(nanos int64, v ...float64) netcode.PathValue {
	pv := netcode.PathValue{Path: "p", Time: netcode.Time{Nanos: nanos}}
	if v != nil {
		pv.Value = netcode.AppendFloats([]byte{}, v...)
	}
	return pv
}

func deletion(nanos int64) netcode.PathValue {
	return netcode.PathValue{Path: "p", Time: netcode.Time{Nanos: nanos}}
}

func TestInterpolate(t *testing.T) {
	h := []netcode.PathValue{sample(100, 0), sample(200, 10), sample(400, 30)}
	same := []netcode.PathValue{sample(100, 0), {Path: "p", Time: netcode.Time{Nanos: 100, Creator: 2}, Value: netcode.AppendFloats(nil, 5)}}
	for _, tc := range []struct {
		name         string
		hist         []netcode.PathValue
		t            int64
		wantA, wantB int64 // sample times
		alpha        float64
		ok           bool
	}{
		{"empty", nil, 5, 0, 0, 0, false},
		{"single before", h[:1], 50, 100, 100, 0, true},
		{"single after", h[:1], 500, 100, 100, 0, true},
		{"before first holds", h, 50, 100, 200, 0, true},
		{"at first", h, 100, 100, 200, 0, true},
		{"middle", h, 150, 100, 200, 0.5, true},
		{"at inner sample", h, 200, 200, 400, 0, true},
		{"quarter", h, 250, 200, 400, 0.25, true},
		{"at last", h, 400, 200, 400, 1, true},
		{"after last holds", h, 1000, 200, 400, 1, true},
		{"same nanos", same, 100, 100, 100, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, alpha, ok := netcode.Interpolate(tc.hist, tc.t)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			got := []float64{float64(a.Time.Nanos), float64(b.Time.Nanos), alpha}
			want := []float64{float64(tc.wantA), float64(tc.wantB), tc.alpha}
			if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
				t.Errorf("(a, b, alpha) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterpolateFloats(t *testing.T) {
	h := []netcode.PathValue{sample(100, 0, 0), sample(200, 10, -20), sample(300, 10, -20, 1), deletion(400), sample(500, 7, 7)}
	for _, tc := range []struct {
		name string
		t    int64
		want []float64
		ok   bool
	}{
		{"before first", 0, []float64{0, 0}, true},
		{"blend", 125, []float64{2.5, -5}, true},
		{"at sample", 200, []float64{10, -20}, true},
		{"length change steps", 250, []float64{10, -20}, true},
		{"after the step", 300, []float64{10, -20, 1}, true},
		{"towards a deletion holds", 350, []float64{10, -20, 1}, true},
		{"deleted", 400, nil, false},
		{"from a deletion", 450, nil, false},
		{"after last", 900, []float64{7, 7}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := netcode.InterpolateFloats(h, tc.t)
			if ok != tc.ok {
				t.Fatalf("ok = %v (%v), want %v", ok, got, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := netcode.InterpolateFloats([]netcode.PathValue{{Value: []byte{1, 2, 3}}}, 0); ok {
		t.Error("a value that is not a float vector interpolated")
	}
}

// TestInterpolateMatchesNaive compares Interpolate's binary search with a
// linear scan over many histories and times.
func TestInterpolateMatchesNaive(t *testing.T) {
	for n := 2; n < 40; n++ {
		h := make([]netcode.PathValue, n)
		for i := range h {
			h[i] = sample(int64(10*i+i*i), float64(i))
		}
		for tt := int64(-5); tt < int64(10*n+n*n); tt += 3 {
			a, b, _, _ := netcode.Interpolate(h, tt)
			// naive: last index with time <= tt, clamped to [0, n-2]
			k := 0
			for i := range h {
				if h[i].Time.Nanos <= tt {
					k = i
				}
			}
			k = min(k, n-2)
			if a.Time != h[k].Time || b.Time != h[k+1].Time {
				t.Fatalf("n=%d t=%d: got (%d, %d), want (%d, %d)", n, tt, a.Time.Nanos, b.Time.Nanos, h[k].Time.Nanos, h[k+1].Time.Nanos)
			}
		}
	}
}

func TestSmoother(t *testing.T) {
	const tau = 100 * time.Millisecond
	ms := func(n int) int64 { return int64(n) * int64(time.Millisecond) }
	type step struct {
		correct          bool
		shown, corrected []float64 // for correct
		actual           []float64 // for apply
		at               int64
		want             []float64
	}
	e := math.Exp(-1)
	for _, tc := range []struct {
		name  string
		steps []step
		left  int // keys held at the end
	}{
		{"no correction passes through", []step{
			{actual: []float64{1, 2}, at: 0, want: []float64{1, 2}},
		}, 0},
		{"continuous at the correction, decays by tau", []step{
			{correct: true, shown: []float64{10, 0}, corrected: []float64{0, 0}},
			{actual: []float64{0, 0}, at: ms(50), want: []float64{10, 0}},
			{actual: []float64{0, 0}, at: ms(150), want: []float64{10 * e, 0}},
			{actual: []float64{1, 1}, at: ms(250), want: []float64{1 + 10*e*e, 1}},
		}, 1},
		{"offsets add up", []step{
			{correct: true, shown: []float64{4}, corrected: []float64{0}},
			{actual: []float64{0}, at: 0, want: []float64{4}},
			{actual: []float64{0}, at: ms(100), want: []float64{4 * e}},
			{correct: true, shown: []float64{0}, corrected: []float64{-1}},
			{actual: []float64{-1}, at: ms(130), want: []float64{-1 + 4*e + 1}},
		}, 1},
		{"time going back is no time", []step{
			{correct: true, shown: []float64{2}, corrected: []float64{0}},
			{actual: []float64{0}, at: ms(100), want: []float64{2}},
			{actual: []float64{0}, at: ms(50), want: []float64{2}},
		}, 1},
		{"forgotten below epsilon", []step{
			{correct: true, shown: []float64{1}, corrected: []float64{0}},
			{actual: []float64{0}, at: 0, want: []float64{1}},
			{actual: []float64{5}, at: ms(2000), want: []float64{5 + math.Exp(-20)}},
		}, 0},
		{"length mismatch resets", []step{
			{correct: true, shown: []float64{1, 1}, corrected: []float64{0, 0}},
			{actual: []float64{3}, at: 0, want: []float64{3}},
		}, 0},
		{"mismatched correction resets", []step{
			{correct: true, shown: []float64{1}, corrected: []float64{0}},
			{correct: true, shown: []float64{1}, corrected: []float64{0, 0}},
			{actual: []float64{0}, at: 0, want: []float64{0}},
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := netcode.NewSmoother(tau)
			for i, st := range tc.steps {
				if st.correct {
					s.Correct("k", st.shown, st.corrected)
					continue
				}
				got := s.Apply("k", st.actual, st.at)
				if diff := cmp.Diff(st.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
					t.Errorf("step %d (-want +got):\n%s", i, diff)
				}
			}
			if s.Len() != tc.left {
				t.Errorf("Len = %d, want %d", s.Len(), tc.left)
			}
		})
	}
}

func TestSmootherDisabledAndBounded(t *testing.T) {
	off := netcode.NewSmoother(0)
	off.Correct("k", []float64{5}, []float64{0})
	if got := off.Apply("k", []float64{0}, 0); got[0] != 0 || off.Len() != 0 {
		t.Errorf("tau 0 smoothed: %v, %d keys", got, off.Len())
	}

	s := netcode.NewSmoother(time.Second)
	s.MaxKeys = 3
	s.Correct("a", []float64{3}, []float64{0})
	s.Correct("b", []float64{1}, []float64{0})
	s.Correct("c", []float64{2}, []float64{0})
	s.Correct("d", []float64{4}, []float64{0}) // evicts b, the smallest
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	if s.Offset("b") != nil || s.Offset("d") == nil {
		t.Errorf("eviction: b %v, d %v; want b gone", s.Offset("b"), s.Offset("d"))
	}
	s.Forget("a")
	if s.Offset("a") != nil || s.Len() != 2 {
		t.Errorf("Forget left %v", s.Offset("a"))
	}
	// Apply does not alias its input.
	in := []float64{1}
	out := s.Apply("c", in, 0)
	out[0] = 99
	if in[0] != 1 {
		t.Error("Apply wrote to its input")
	}
}

// BenchmarkInterpolateFloats draws one entity from a 64-sample history
// (about a second of 60 Hz updates); the baseline decodes only the
// latest sample, what a game without interpolation would draw.
func BenchmarkInterpolateFloats(b *testing.B) {
	h := make([]netcode.PathValue, 64)
	for i := range h {
		h[i] = sample(int64(i)*16e6, float64(i), -float64(i))
	}
	b.Run("interpolate", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := netcode.InterpolateFloats(h, int64(i%1000)*1e6); !ok {
				b.Fatal("no value")
			}
		}
	})
	b.Run("baseline-latest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := netcode.Floats(h[len(h)-1].Value); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSmootherApply applies a live offset to a 2-vector; the
// baseline is the copy Apply makes anyway.
func BenchmarkSmootherApply(b *testing.B) {
	s := netcode.NewSmoother(100 * time.Millisecond)
	actual := []float64{1, 2}
	b.Run("apply", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%1000 == 0 {
				s.Correct("k", []float64{50, 50}, actual)
			}
			_ = s.Apply("k", actual, int64(i)*1000)
		}
	})
	b.Run("baseline-copy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = append([]float64(nil), actual...)
		}
	})
}

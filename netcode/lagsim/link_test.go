package lagsim

import (
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// run pushes n packets of size bytes, one every gap, through a fresh Link.
func run(t *testing.T, p Profile, seed uint64, n, size int, gap time.Duration) []Decision {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	var l Link
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]Decision, n)
	for i := range out {
		out[i] = l.Decide(&p, rng, epoch.Add(time.Duration(i)*gap), size)
	}
	return out
}

// binomialOK reports whether k successes in n trials is within 5 standard
// deviations (plus one) of the expected n·p: wide enough never to flake on a
// correct model, narrow enough to catch a wrong rate.
func binomialOK(k, n int, p float64) bool {
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return math.Abs(float64(k)-mean) <= 5*sd+1
}

func TestPresetsFigures(t *testing.T) {
	ms := time.Millisecond
	want := map[string]Profile{
		"none":          {Name: "none"},
		"lan":           {Name: "lan", Delay: 1 * ms},
		"broadband":     {Name: "broadband", Delay: 30 * ms, Jitter: 5 * ms, Loss: 0.001},
		"wifi":          {Name: "wifi", Delay: 60 * ms, Jitter: 20 * ms, Loss: 0.01},
		"mobile":        {Name: "mobile", Delay: 120 * ms, Jitter: 40 * ms, Loss: 0.02},
		"transatlantic": {Name: "transatlantic", Delay: 150 * ms, Jitter: 10 * ms},
		"awful":         {Name: "awful", Delay: 300 * ms, Jitter: 100 * ms, Loss: 0.05},
	}
	if diff := cmp.Diff([]string{"none", "lan", "broadband", "wifi", "mobile", "transatlantic", "awful"}, PresetNames()); diff != "" {
		t.Errorf("PresetNames (-want +got):\n%s", diff)
	}
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			got, err := Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want[name], got); diff != "" {
				t.Errorf("Preset(%q) (-want +got):\n%s", name, diff)
			}
			if err := got.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := Preset("dialup"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("Preset(dialup) error = %v, want ErrUnknownPreset", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Profile
		ok   bool
	}{
		{"zero", Profile{}, true},
		{"negative delay", Profile{Delay: -1}, false},
		{"huge delay", Profile{Delay: time.Hour}, false},
		{"negative jitter", Profile{Jitter: -1}, false},
		{"loss above one", Profile{Loss: 1.5}, false},
		{"loss NaN", Profile{Loss: math.NaN()}, false},
		{"unknown distribution", Profile{Distribution: 9}, false},
		{"burst without exit", Profile{Burst: Burst{Enter: 0.1}}, false},
		{"burst", Profile{Burst: Burst{Enter: 0.1, Exit: 0.5, LossBad: 0.5}}, true},
		{"reorder without gap", Profile{Reorder: 0.1}, false},
		{"negative bandwidth", Profile{Bandwidth: -5}, false},
		{"duplicate above one", Profile{Duplicate: 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidProfile) {
				t.Errorf("error %v does not match ErrInvalidProfile", err)
			}
		})
	}
}

func TestDecideDeterministic(t *testing.T) {
	p := Profile{Delay: 40 * time.Millisecond, Jitter: 15 * time.Millisecond, Loss: 0.1,
		Duplicate: 0.05, Reorder: 0.05, ReorderGap: 20 * time.Millisecond, Bandwidth: 1 << 20}
	a := run(t, p, 7, 2000, 500, time.Millisecond)
	b := run(t, p, 7, 2000, 500, time.Millisecond)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different decisions (-a +b):\n%s", diff)
	}
	c := run(t, p, 8, 2000, 500, time.Millisecond)
	if cmp.Equal(a, c) {
		t.Fatal("different seeds gave identical decisions")
	}
}

func TestDecideLatency(t *testing.T) {
	const n = 20000
	base, jit := 60*time.Millisecond, 20*time.Millisecond
	tests := []struct {
		dist       Distribution
		lo, hi     time.Duration // hard bounds of a latency
		meanSlack  time.Duration // allowed distance of the mean from base
		wantSpread time.Duration // minimum standard deviation
	}{
		{Uniform, base - jit, base + jit, time.Millisecond, jit / 2},
		{Normal, base - 4*jit, base + 4*jit, time.Millisecond, jit * 9 / 10},
		// Pareto: heavy right tail, mean Delay (clamping the tail shaves a little).
		{Pareto, base - jit/2, base + maxParetoJitter*jit, 3 * time.Millisecond, jit / 2},
	}
	for _, tt := range tests {
		t.Run(tt.dist.String(), func(t *testing.T) {
			p := Profile{Delay: base, Jitter: jit, Distribution: tt.dist}
			var sum, sumSq float64
			lat := make([]time.Duration, n)
			for i, d := range run(t, p, 1, n, 100, time.Millisecond) {
				if d.Drop || d.Dup {
					t.Fatalf("packet %d: unexpected %+v", i, d)
				}
				l := d.At.Sub(epoch.Add(time.Duration(i) * time.Millisecond))
				if l < tt.lo || l > tt.hi {
					t.Fatalf("packet %d: latency %v outside [%v, %v]", i, l, tt.lo, tt.hi)
				}
				lat[i] = l
				sum += float64(l)
				sumSq += float64(l) * float64(l)
			}
			mean := sum / n
			sd := time.Duration(math.Sqrt(sumSq/n - mean*mean))
			if d := time.Duration(mean) - base; d < -tt.meanSlack || d > tt.meanSlack {
				t.Errorf("mean latency %v, want %v ± %v", time.Duration(mean), base, tt.meanSlack)
			}
			if sd < tt.wantSpread {
				t.Errorf("latency standard deviation %v, want at least %v", sd, tt.wantSpread)
			}
			if tt.dist == Pareto {
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				// A heavy tail: the 99.9th percentile lies far beyond base+jit.
				if p999 := lat[n*999/1000]; p999 < base+4*jit {
					t.Errorf("p99.9 latency %v, want a heavy tail beyond %v", p999, base+4*jit)
				}
			}
		})
	}
}

func TestDecideNeverNegative(t *testing.T) {
	p := Profile{Delay: time.Millisecond, Jitter: 50 * time.Millisecond, Distribution: Normal}
	for i, d := range run(t, p, 3, 5000, 100, time.Millisecond) {
		if sent := epoch.Add(time.Duration(i) * time.Millisecond); d.At.Before(sent) {
			t.Fatalf("packet %d arrives %v before it was sent", i, sent.Sub(d.At))
		}
	}
}

func TestDecideLossRates(t *testing.T) {
	const n = 100000
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			p, err := Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			lost := 0
			for _, d := range run(t, p, 11, n, 100, time.Millisecond) {
				if d.Drop {
					lost++
				}
			}
			if !binomialOK(lost, n, p.Loss) {
				t.Errorf("lost %d of %d, want about %v", lost, n, p.Loss*n)
			}
		})
	}
}

func TestDecideBurstLoss(t *testing.T) {
	const n = 200000
	// Bad 1/(1+4)=20 % of the time, mean burst 1/0.2=5 packets, all lost while bad.
	p := Profile{Burst: Burst{Enter: 0.05, Exit: 0.2, LossBad: 1}}
	ds := run(t, p, 5, n, 100, time.Millisecond)
	lost, runs := 0, 0
	for i, d := range ds {
		if d.Drop {
			lost++
			if i == 0 || !ds[i-1].Drop {
				runs++
			}
		}
	}
	rate := float64(lost) / n
	if math.Abs(rate-0.2) > 0.01 {
		t.Errorf("loss rate %.4f, want 0.20 (time in bad state)", rate)
	}
	meanRun := float64(lost) / float64(runs)
	if math.Abs(meanRun-5) > 0.3 {
		t.Errorf("mean loss burst %.2f packets, want 5", meanRun)
	}
	// Independent loss at the same rate has mean run 1/(1-0.2)=1.25.
	q := Profile{Loss: 0.2}
	ds = run(t, q, 5, n, 100, time.Millisecond)
	lost, runs = 0, 0
	for i, d := range ds {
		if d.Drop {
			lost++
			if i == 0 || !ds[i-1].Drop {
				runs++
			}
		}
	}
	if mr := float64(lost) / float64(runs); mr > 1.4 {
		t.Errorf("independent loss: mean run %.2f, want about 1.25", mr)
	}
}

func TestDecideDuplicateAndReorder(t *testing.T) {
	const n = 50000
	p := Profile{Delay: 10 * time.Millisecond, Duplicate: 0.03, Reorder: 0.02, ReorderGap: 5 * time.Millisecond}
	ds := run(t, p, 9, n, 100, time.Millisecond)
	dups, late, overtaken := 0, 0, 0
	for i, d := range ds {
		sent := epoch.Add(time.Duration(i) * time.Millisecond)
		if d.Dup {
			dups++
			if got := d.DupAt.Sub(sent); got != p.Delay {
				t.Fatalf("packet %d: duplicate latency %v, want %v", i, got, p.Delay)
			}
		}
		switch l := d.At.Sub(sent); l {
		case p.Delay:
		case p.Delay + p.ReorderGap:
			late++
			if i+1 < n && ds[i+1].At.Before(d.At) {
				overtaken++
			}
		default:
			t.Fatalf("packet %d: latency %v", i, l)
		}
	}
	if !binomialOK(dups, n, p.Duplicate) {
		t.Errorf("%d duplicates of %d, want about %v", dups, n, p.Duplicate*n)
	}
	if !binomialOK(late, n, p.Reorder) {
		t.Errorf("%d reordered of %d, want about %v", late, n, p.Reorder*n)
	}
	if overtaken < late*9/10 {
		t.Errorf("only %d of %d held-back packets were overtaken", overtaken, late)
	}
}

func TestDecideBandwidth(t *testing.T) {
	// 100 kB/s: a 1000-byte packet occupies the wire for 10 ms.
	p := Profile{Delay: 5 * time.Millisecond, Bandwidth: 100_000}
	var l Link
	rng := rand.New(rand.NewPCG(1, 1))
	// A burst of 5 packets at t=0 leaves the wire 10 ms apart.
	for i := range 5 {
		d := l.Decide(&p, rng, epoch, 1000)
		want := epoch.Add(time.Duration(i+1)*10*time.Millisecond + p.Delay)
		if !d.At.Equal(want) {
			t.Fatalf("packet %d arrives at +%v, want +%v", i, d.At.Sub(epoch), want.Sub(epoch))
		}
	}
	// After the wire drained, a packet is not delayed by the old backlog.
	later := epoch.Add(time.Second)
	if d := l.Decide(&p, rng, later, 1000); !d.At.Equal(later.Add(15 * time.Millisecond)) {
		t.Fatalf("idle wire: arrives at +%v, want +15ms", d.At.Sub(later))
	}
}

func TestPassthrough(t *testing.T) {
	none, _ := Preset("none")
	lan, _ := Preset("lan")
	if !none.Passthrough() {
		t.Error("none is not passthrough")
	}
	if lan.Passthrough() {
		t.Error("lan is passthrough")
	}
	for _, d := range run(t, none, 1, 100, 10, time.Millisecond) {
		if d.Drop || d.Dup {
			t.Fatalf("none: %+v", d)
		}
	}
}

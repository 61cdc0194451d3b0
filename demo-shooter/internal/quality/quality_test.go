package quality

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestQuantile(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		q    float64
		want float64
	}{
		{"empty", nil, 0.5, 0},
		{"one", []float64{3}, 0.99, 3},
		{"median of odd", []float64{5, 1, 3}, 0.5, 3},
		{"p99 of 100", seq(100), 0.99, 99},
		{"p50 of 100", seq(100), 0.5, 50},
		{"max", []float64{2, 9, 4}, 1, 9},
		{"min", []float64{2, 9, 4}, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quantile(tt.xs, tt.q); got != tt.want {
				t.Errorf("Quantile(%v, %v) = %v, want %v", tt.xs, tt.q, got, tt.want)
			}
		})
	}
}

func seq(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[n-1-i] = float64(i + 1) // descending, so sorting matters
	}
	return s
}

func TestSamplesBounded(t *testing.T) {
	var s Samples
	for i := range 3 * MaxSamples {
		s.Add(float64(i))
	}
	if got := len(s.Values()); got != MaxSamples {
		t.Fatalf("kept %d samples, want %d", got, MaxSamples)
	}
	if s.Len() != 3*MaxSamples {
		t.Fatalf("Len %d, want %d", s.Len(), 3*MaxSamples)
	}
	// The reservoir must have taken later samples too.
	late := 0
	for _, x := range s.Values() {
		if x >= MaxSamples {
			late++
		}
	}
	if late < MaxSamples/2 {
		t.Errorf("only %d of %d kept samples come after the first %d", late, MaxSamples, MaxSamples)
	}
}

func TestSummarise(t *testing.T) {
	a, b := &Recorder{HitsSeen: 10, HitsConfirmed: 7, HitsShooterDead: 1, HitsLate: 1}, &Recorder{HitsSeen: 10, HitsConfirmed: 7, HitsMissed: 1, HitsRetracted: 1}
	for i := range 100 {
		a.Correction.Add(0)
		b.Correction.Add(float64(i % 2 * 4)) // half zero, half 4 px
		if i%2 == 1 {
			b.Corrected.Add(4)
		}
		a.ConfirmMinusRTT.Add(20)
	}
	a.Fail(FailDead)
	a.Fail(FailDead)
	b.Fail(FailDead)
	b.Fail(FailLate)
	ctr := []Counters{
		{Calls: 100, Confirmed: 100, Failed: 3, Mispredictions: 10, Reruns: 5, BytesIn: 10000, BytesOut: 5000, RTT: 100 * time.Millisecond},
		{Calls: 100, Confirmed: 100, Mispredictions: 30, Reruns: 15, BytesIn: 30000, BytesOut: 15000, RTT: 300 * time.Millisecond},
	}
	got, err := Summarise("mobile", 10*time.Second, []*Recorder{a, b}, ctr, Authority{CPU: 200 * time.Millisecond, Calls: 200, Reruns: 20})
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{
		Profile: "mobile", Clients: 2, Seconds: 10,
		HitsSeen: 20, HitsConfirmedPct: 70, HitsLostShooterDeadPct: 5, HitsLostLatePct: 5, HitsLostOtherPct: 20,
		HitsLostMissedPct: 5, HitsLostRetractedPct: 5, HitsLostUnansweredPct: 10,
		CorrectionP50Px: 0, CorrectionP99Px: 4, CorrectionMaxPx: 4, CorrectedPct: 25, CorrectionP99CorrectedPx: 4,
		MispredictionRate: 0.2, ReRunsPerCall: 0.1, AuthorityReRunsPerCall: 0.1,
		ConfirmLatencyMinusRTTMs: 20, RTTMs: 200, Calls: 200,
		FailedCalls: 3, FailedByReason: map[string]uint64{FailDead: 3, FailLate: 1},
		KbpsIn: 16, KbpsOut: 8, // 40 kB·8/10 s/2 clients = 16 kbit/s
		AuthorityCPUPctPerClient: 1, // 0.2 s of 10 s = 2 %, over 2 clients
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y float64) bool { return math.Abs(x-y) < 1e-9 })); diff != "" {
		t.Errorf("Summarise (-want +got):\n%s", diff)
	}
}

func TestSummariseRefuses(t *testing.T) {
	if _, err := Summarise("x", time.Second, nil, nil, Authority{}); !errors.Is(err, ErrBadReport) {
		t.Errorf("no clients: err %v, want ErrBadReport", err)
	}
	if _, err := Summarise("x", 0, []*Recorder{{}}, []Counters{{}}, Authority{}); !errors.Is(err, ErrBadReport) {
		t.Errorf("zero span: err %v, want ErrBadReport", err)
	}
}

// TestReportJSONShape checks the contract: a top-level "profiles" array
// whose objects carry every required field as a number (profile a string).
func TestReportJSONShape(t *testing.T) {
	r := Report{Machine: "test", Profiles: []Profile{{Profile: "mobile", Clients: 2, Seconds: 1, HitsConfirmedPct: 99}}}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	ps, ok := raw["profiles"].([]any)
	if !ok || len(ps) != 1 {
		t.Fatalf("profiles = %v, want an array of one", raw["profiles"])
	}
	p := ps[0].(map[string]any)
	if p["profile"] != "mobile" {
		t.Errorf("profile = %v", p["profile"])
	}
	for _, k := range []string{"hits_confirmed_pct", "correction_p50_px", "correction_p99_px", "misprediction_rate",
		"reruns_per_call", "confirm_latency_minus_rtt_ms", "kbps_in", "kbps_out", "authority_cpu_pct_per_client"} {
		if _, ok := p[k].(float64); !ok {
			t.Errorf("field %q = %#v, want a number", k, p[k])
		}
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&r, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestReportRefusesBadFigures(t *testing.T) {
	tests := []struct {
		name string
		r    Report
	}{
		{"no profiles", Report{}},
		{"NaN", Report{Profiles: []Profile{{Profile: "x", KbpsIn: math.NaN()}}}},
		{"Inf", Report{Profiles: []Profile{{Profile: "x", CorrectionP99Px: math.Inf(1)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.r.WriteJSON(&bytes.Buffer{}); !errors.Is(err, ErrBadReport) {
				t.Errorf("err %v, want ErrBadReport", err)
			}
		})
	}
	if _, err := ReadJSON(strings.NewReader(`{"profiles":[{"profile":"x","bogus":1}]}`)); !errors.Is(err, ErrBadReport) {
		t.Errorf("unknown field: err %v, want ErrBadReport", err)
	}
}

func TestWriteTable(t *testing.T) {
	r := Report{Profiles: []Profile{
		{Profile: "broadband", Clients: 16, Calls: 1000, FailedCalls: 20, FailedByReason: map[string]uint64{FailDead: 15, FailCooldown: 2, FailLate: 15}},
		{Profile: "awful", Clients: 16},
	}}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[1], "broadband") || !strings.Contains(lines[2], "awful") {
		t.Fatalf("table:\n%s", buf.String())
	}
	for _, col := range []string{"client resims/call", "auth reruns/call", "failed %"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %q lacks %q", lines[0], col)
		}
	}
	if f := strings.Fields(lines[1]); f[10] != "2.0" {
		t.Errorf("failed %% column %q, want 2.0 (20 of 1000): %q", f[10], lines[1])
	}
	// Reasons most frequent first, ties by name.
	if want := "broadband: 20 of 1000 calls failed (answers of the span's calls by reason: dead 15, late 15, cooldown 2)"; lines[3] != want {
		t.Errorf("reasons line %q, want %q", lines[3], want)
	}
	if want := "awful: 0 of 0 calls failed"; lines[4] != want {
		t.Errorf("reasons line %q, want %q", lines[4], want)
	}
}

// TestShardsReport: a sharded cluster match's figures sit beside the
// others in JSON, read back whole, and the table names them.
func TestShardsReport(t *testing.T) {
	sh := &Shards{Regions: 3, Handoffs: 11, RangeMoves: 1, PlayerRegionMoves: 10, RangeMoveMs: 1100, RangeMove: "moved",
		CrossShardCalls: 40, ForwardedCalls: 41, CrossRegionHitsSeen: 5, CrossRegionHitsConfirmedPct: 80,
		CrossRegionMotionCalls: 9, CrossRegionCorrectionP99Px: 1.5, LocalCalls: 30, RelayedCalls: 12,
		LocalConfirmMinusRTTMsP50: 4, LocalConfirmMinusRTTMsP99: 20, RelayedConfirmMinusRTTMsP50: 6, RelayedConfirmMinusRTTMsP99: 25}
	r := Report{Machine: "m", Command: "c", Profiles: []Profile{{Profile: "mobile", Clients: 2, Seconds: 10,
		Cluster: &Cluster{Nodes: 3, ConfirmedCalls: 50, Logs: "/tmp/x", Shards: sh}}}}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var shape struct{ Profiles []map[string]any }
	if err := json.Unmarshal(b.Bytes(), &shape); err != nil {
		t.Fatal(err)
	}
	flat := shape.Profiles[0]
	for _, k := range []string{"handoffs", "cross_shard_calls", "lost_confirmed_calls", "duplicate_calls", "replica_divergence", "cross_region_hits_confirmed_pct", "relayed_confirm_minus_rtt_ms_p99", "logs"} {
		if _, ok := flat[k]; !ok {
			t.Errorf("no %q in the report's profile", k)
		}
	}
	back, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, *back); d != "" {
		t.Errorf("read back differs (-wrote +read):\n%s", d)
	}
	var tb bytes.Buffer
	if err := r.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 regions: 11 handoffs", "40 cross-shard calls", "80.0 % confirmed", "kept in /tmp/x"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("the table does not say %q:\n%s", want, tb.String())
		}
	}
}

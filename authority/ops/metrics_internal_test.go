package ops

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rewindnet/rewind/authority"
)

// TestMetricsClusterCounters: the cluster's failover counters reach
// /metrics from the node's stats, each under its own name (distinct values
// tell a swapped pair), and only for a clustered node.
func TestMetricsClusterCounters(t *testing.T) {
	c := newCollector(nil)
	var st authority.Status
	st.Stats.Node.FailoverCalls = 7
	st.Stats.Node.RerunsWaited = 11
	st.Stats.Node.QuorumKept = 2
	st.Cluster = &authority.ClusterStatus{}
	got := collectCounters(t, c, &st)
	for d, want := range map[*prometheus.Desc]float64{c.failoverCalls: 7, c.rerunsWaited: 11, c.quorumKept: 2} {
		if v, ok := got[d]; !ok || v != want {
			t.Errorf("%v: %v (present %v), want %v", d, v, ok, want)
		}
	}
	st.Cluster = nil
	got = collectCounters(t, c, &st)
	for _, d := range []*prometheus.Desc{c.failoverCalls, c.rerunsWaited, c.quorumKept} {
		if _, ok := got[d]; ok {
			t.Errorf("%v reported without a cluster", d)
		}
	}
}

// collectCounters returns the value of every unlabelled counter collect
// sends for st.
func collectCounters(t *testing.T, c *collector, st *authority.Status) map[*prometheus.Desc]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	c.collect(ch, st)
	close(ch)
	out := map[*prometheus.Desc]float64{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		if pb.Counter != nil && len(pb.Label) == 0 {
			out[m.Desc()] = pb.Counter.GetValue()
		}
	}
	return out
}

package membership

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// BenchmarkFailureDetection measures, with the GameLAN settings over
// loopback, the time from a member's crash (shutdown without leaving) to
// the moment another member of a three-node cluster reports it Down, over
// 10 crashes per iteration: p50 and max in milliseconds. The baseline is
// memberlist's stock LAN settings, measured the same way
// (BenchmarkFailureDetectionStockLAN).
func BenchmarkFailureDetection(b *testing.B) { benchDetection(b, nil) }

func BenchmarkFailureDetectionStockLAN(b *testing.B) {
	benchDetection(b, func(c *Config) {
		c.Tune = func(mc *memberlistConfig) {
			*mc = *stockLAN(mc)
		}
	})
}

func benchDetection(b *testing.B, mod func(*Config)) {
	const runs = 10
	var times []time.Duration
	for range b.N {
		for range runs {
			times = append(times, detectOnce(b, mod))
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-ms")
	b.ReportMetric(0, "ns/op")
}

func detectOnce(b *testing.B, mod func(*Config)) time.Duration {
	mk := func(id uint8, join []string) *Membership {
		cfg := Config{Meta: Meta{NodeID: id}, BindAddr: "127.0.0.1:0", Join: join}
		if mod != nil {
			mod(&cfg)
		}
		m, err := Start(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	m1 := mk(1, nil)
	defer m1.Shutdown()
	m2 := mk(2, []string{m1.Addr()})
	defer m2.Shutdown()
	m3 := mk(3, []string{m1.Addr()})
	waitFor(b, time.Minute, "three members", func() bool { return len(m1.Members()) == 3 && len(m3.Members()) == 3 })
	time.Sleep(500 * time.Millisecond) // let the probes settle into their rhythm
	m1.Events()
	m3.Shutdown()
	return waitFor(b, time.Minute, "crash detected", downSeen(m1, 3))
}

type memberlistConfig = memberlist.Config

func stockLAN(*memberlist.Config) *memberlist.Config { return memberlist.DefaultLANConfig() }

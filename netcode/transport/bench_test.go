package transport

import (
	"context"
	"io"
	"testing"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// benchMessage is the size of the small message bounced in the round-trip
// benchmarks, bytes.
const benchMessage = 32

// BenchmarkRoundTrip bounces a small message over 127.0.0.1: through the
// full transport (Send, record layer, writer and reader goroutines, Recv)
// and, as the baseline, through raw kcp-go sessions with the same settings
// (LAN preset: stream mode, nodelay, 10 ms interval, resend 2, no
// congestion control, immediate acks, no FEC, no encryption).
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("raw-kcp", func(b *testing.B) { benchLoop(b, rawEcho(b, LAN())) })
	b.Run("transport", func(b *testing.B) { benchLoop(b, transportEcho(b, LAN())) })
}

func benchLoop(b *testing.B, roundTrip func()) {
	b.ResetTimer()
	for b.Loop() {
		roundTrip()
	}
}

// rawEcho connects a raw kcp-go session tuned as cfg to an echo server
// over 127.0.0.1, warms it up and returns one round trip of a
// benchMessage. Both ends close when b ends.
func rawEcho(b *testing.B, cfg Config) func() {
	b.Helper()
	ln, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		s, err := ln.AcceptKCP()
		if err != nil {
			return
		}
		defer s.Close()
		cfg.tune(s)
		buf := make([]byte, benchMessage)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	cli, err := kcp.DialWithOptions(ln.Addr().String(), nil, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	cfg.tune(cli)
	msg := make([]byte, benchMessage)
	buf := make([]byte, benchMessage)
	rt := func() {
		if _, err := cli.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(cli, buf); err != nil {
			b.Fatal(err)
		}
	}
	// Warm up so the server session exists and is tuned.
	for range 10 {
		rt()
	}
	return rt
}

// transportEcho does the same through the full transport (Dial, Send,
// Recv against an echoing Listen).
func transportEcho(b *testing.B, cfg Config) func() {
	b.Helper()
	ctx := context.Background()
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		s, err := l.Accept(ctx)
		if err != nil {
			return
		}
		defer s.Close("done")
		for {
			f, err := s.Recv(ctx)
			if err != nil {
				return
			}
			if s.Send(f, Data) != nil {
				return
			}
		}
	}()
	cli, err := Dial(ctx, l.Addr().String(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close("done") })
	msg := make([]byte, benchMessage)
	rt := func() {
		if err := cli.Send(msg, Data); err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for range 10 {
		rt()
	}
	return rt
}

// BenchmarkRoundTripOverhead alternates one raw kcp-go round trip and one
// transport round trip per iteration, so both see the same machine load,
// and reports each and the transport's overhead in percent.
func BenchmarkRoundTripOverhead(b *testing.B) {
	rawRT, fullRT := rawEcho(b, LAN()), transportEcho(b, LAN())
	var rawNs, fullNs time.Duration
	n := 0
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		rawRT()
		t1 := time.Now()
		fullRT()
		rawNs += t1.Sub(t0)
		fullNs += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(rawNs)/float64(n), "raw-ns/rt")
	b.ReportMetric(float64(fullNs)/float64(n), "transport-ns/rt")
	b.ReportMetric(100*(float64(fullNs)/float64(rawNs)-1), "overhead-%")
}

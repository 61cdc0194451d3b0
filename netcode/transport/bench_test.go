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
	b.Run("raw-kcp", benchRawKCP)
	b.Run("transport", benchTransport)
}

func benchRawKCP(b *testing.B) {
	cfg := LAN()
	ln, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
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
	defer cli.Close()
	cfg.tune(cli)
	msg := make([]byte, benchMessage)
	buf := make([]byte, benchMessage)
	// Warm up so the server session exists and is tuned.
	for range 10 {
		cli.Write(msg)
		if _, err := io.ReadFull(cli, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := cli.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(cli, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTransport(b *testing.B) {
	cfg := LAN()
	ctx := context.Background()
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
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
	defer cli.Close("done")
	msg := make([]byte, benchMessage)
	for range 10 {
		cli.Send(msg, Data)
		if _, err := cli.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if err := cli.Send(msg, Data); err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTripOverhead alternates one raw kcp-go round trip and one
// transport round trip per iteration, so both see the same machine load,
// and reports each and the transport's overhead in percent.
func BenchmarkRoundTripOverhead(b *testing.B) {
	cfg := LAN()
	ctx := context.Background()

	ln, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
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
	raw, err := kcp.DialWithOptions(ln.Addr().String(), nil, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	cfg.tune(raw)

	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
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
	defer cli.Close("done")

	msg := make([]byte, benchMessage)
	buf := make([]byte, benchMessage)
	rawRT := func() {
		if _, err := raw.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(raw, buf); err != nil {
			b.Fatal(err)
		}
	}
	fullRT := func() {
		if err := cli.Send(msg, Data); err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for range 10 {
		rawRT()
		fullRT()
	}
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

package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/reedsolomon"
	"github.com/rewindnet/rewind/netcode"
)

// cpuTime returns the process's CPU time (user and system, every thread)
// in nanoseconds: on a shared machine wall time measures the other load
// as much as the code, so the recovery benchmarks report this beside it.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchDirs are removed when the tests end.
var benchDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

const (
	benchRecord = 64 // payload bytes per record
	benchFlush  = DefaultFlushEvery
)

// BenchmarkWALAppend: 64-byte records appended to the log with group
// commit every 20 ms (write + fdatasync by the flusher goroutine), then
// one Sync at the end so every record counted is durable. Compare with
// BenchmarkWALAppendRawFile.
func BenchmarkWALAppend(b *testing.B) {
	o := DefaultOptions(b.TempDir())
	o.FlushEvery = benchFlush
	a, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	p := make([]byte, benchRecord)
	b.SetBytes(int64(FramedSize(8 + benchRecord)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p[0] = byte(i)
		if err := a.AppendRaw(int64(i), p); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	st := a.Stats().Log
	b.ReportMetric(float64(st.Records)/float64(max(st.Flushes, 1)), "records/sync")
}

// BenchmarkWALAppendRawFile is the baseline of BenchmarkWALAppend: the
// same framed bytes copied into a buffer and written to a plain os.File
// with fdatasync every 20 ms, in the appending goroutine, then a last
// write and fdatasync.
func BenchmarkWALAppendRawFile(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := AppendRecord(nil, make([]byte, 8+benchRecord))
	buf := make([]byte, 0, 4<<20)
	flush := func() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			b.Fatal(err)
		}
		buf = buf[:0]
	}
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	b.ResetTimer()
	last := time.Now()
	for i := 0; i < b.N; i++ {
		rec[RecordHeader] = byte(i)
		buf = append(buf, rec...)
		if i&255 == 0 && time.Since(last) >= benchFlush {
			flush()
			last = time.Now()
		}
	}
	flush()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

const (
	benchK, benchM = 4, 2
	benchBlock     = 4 << 20
)

func benchBody() []byte {
	body := make([]byte, benchBlock)
	for i := range body {
		body[i] = byte(i*31 + i>>9)
	}
	return body
}

// BenchmarkErasureEncode: a 4 MiB block cut into 4 data + 2 parity shard
// files (Reed-Solomon parity, per-chunk CRC-32C, headers). Compare with
// BenchmarkReedSolomonEncode.
func BenchmarkErasureEncode(b *testing.B) {
	c, err := newShardCodec(benchK, benchM, DefaultChunk)
	if err != nil {
		b.Fatal(err)
	}
	body := benchBody()
	b.SetBytes(benchBlock)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.encode(1, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReedSolomonEncode: reedsolomon's own Encode of the same 4 MiB
// as 4 + 2 shards, already split: the baseline.
func BenchmarkReedSolomonEncode(b *testing.B) {
	enc, err := reedsolomon.New(benchK, benchM)
	if err != nil {
		b.Fatal(err)
	}
	shards, err := enc.Split(benchBody())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchBlock)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := enc.Encode(shards); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkErasureReconstruct: the block read back from its shard files
// with two of the six missing (checksums verified, every chunk rebuilt).
// Compare with BenchmarkReedSolomonReconstruct.
func BenchmarkErasureReconstruct(b *testing.B) {
	c, err := newShardCodec(benchK, benchM, DefaultChunk)
	if err != nil {
		b.Fatal(err)
	}
	files, err := c.encode(1, benchBody())
	if err != nil {
		b.Fatal(err)
	}
	files[0], files[3] = nil, nil
	b.SetBytes(benchBlock)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := c.decode(1, files); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReedSolomonReconstruct: reedsolomon's Reconstruct of the same
// two missing shards: the baseline.
func BenchmarkReedSolomonReconstruct(b *testing.B) {
	enc, _ := reedsolomon.New(benchK, benchM)
	shards, _ := enc.Split(benchBody())
	enc.Encode(shards)
	work := make([][]byte, len(shards))
	b.SetBytes(benchBlock)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(work, shards)
		work[0], work[3] = work[0][:0], work[3][:0]
		if err := enc.Reconstruct(work); err != nil {
			b.Fatal(err)
		}
	}
}

// The recovery benchmarks share one archive: 900,000 final values in
// snapshot blocks and 100,000 in the log (50,000 call runs of 2 writes).
const (
	recoveryFinals  = 900_000
	recoveryLogged  = 100_000
	recoveryPlayers = 1000
)

var recoveryOnce struct {
	sync.Once
	dir string
	err error
}

func recoveryArchive(b *testing.B) string {
	recoveryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rewind-recovery-bench")
		if err != nil {
			recoveryOnce.err = err
			return
		}
		benchDirs = append(benchDirs, dir)
		recoveryOnce.dir = dir
		recoveryOnce.err = buildRecoveryArchive(dir)
	})
	if recoveryOnce.err != nil {
		b.Fatal(recoveryOnce.err)
	}
	return recoveryOnce.dir
}

func buildRecoveryArchive(dir string) error {
	a, err := Open(DefaultOptions(dir))
	if err != nil {
		return err
	}
	paths := make([]string, recoveryPlayers)
	for i := range paths {
		paths[i] = fmt.Sprintf("players/%d/pos", i)
	}
	val := make([]byte, 16)
	const perSnap = 100_000
	var n int64
	for s := 0; s < recoveryFinals/perSnap; s++ {
		vs := make([]netcode.PathValue, perSnap)
		for i := range vs {
			n++
			vs[i] = netcode.PathValue{Path: paths[n%recoveryPlayers], Time: netcode.Time{Nanos: n * 1000, Creator: uint32(n % recoveryPlayers)}, Value: val}
		}
		a.AddFinal(vs)
		a.Snapshot((n+1)*1000, 0, nil)
		if err := a.WaitSnapshots(); err != nil {
			return err
		}
	}
	locks := []netcode.ReadLock{{Path: paths[0], Start: netcode.Time{Nanos: 1}, End: netcode.Time{Nanos: 2}}}
	for i := 0; i < recoveryLogged/2; i++ {
		n++
		c := uint32(n % recoveryPlayers)
		e := Entry{Kind: EntryRun, Call: netcode.Call{ID: netcode.CallID{Creator: c, Seq: uint64(n)}, Name: "move", Args: val[:4], Time: n * 1000},
			Locks: locks, Values: []netcode.PathValue{
				{Path: paths[c], Value: val}, {Path: paths[(c+1)%recoveryPlayers], Value: val},
			}}
		if err := a.Append(n*1000, &e); err != nil {
			return err
		}
	}
	return a.Close()
}

// BenchmarkRecovery: opening the archive of 1,000,000 values (900,000 in
// blocks, 100,000 in the log) read-only and reading every value back:
// manifest, shards, checksums, block and log decoding. Compare with
// BenchmarkRecoveryRawRead.
func BenchmarkRecovery(b *testing.B) {
	dir := recoveryArchive(b)
	o := DefaultOptions(dir)
	o.ReadOnly = true
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := Open(o)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		st := a.Recovered()
		if err := st.ScanFinals(func(netcode.PathValue) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		for _, e := range st.Entries {
			n += len(e.Values)
		}
		if n != recoveryFinals+recoveryLogged {
			b.Fatalf("%d values", n)
		}
		a.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(recoveryFinals+recoveryLogged), "ns/value")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkRecoveryRawRead: the baseline of BenchmarkRecovery: every file
// of the same archive read into memory with os.ReadFile, nothing decoded.
func BenchmarkRecoveryRawRead(b *testing.B) {
	dir := recoveryArchive(b)
	var files []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return err
	})
	var total int64
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		total = 0
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			total += int64(len(data))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/1e6, "MB")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

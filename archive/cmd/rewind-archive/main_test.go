package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/netcode"
)

// build writes an archive in dir: finals in a block, then a log.
func build(t *testing.T, dir string) {
	t.Helper()
	o := archive.DefaultOptions(dir)
	o.FlushEvery = time.Millisecond
	o.SegmentSize = 1 << 16
	a, err := archive.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	f64 := func(fs ...float64) []byte {
		var b []byte
		for _, f := range fs {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
		return b
	}
	a.AddFinal([]netcode.PathValue{
		{Path: "players/1/pos", Time: netcode.Time{Nanos: 10, Creator: 1}, Value: f64(1.5, -2)},
		{Path: "players/1/name", Time: netcode.Time{Nanos: 11, Creator: 1}, Value: []byte("ann")},
	})
	a.Snapshot(100, 0, nil)
	if err := a.WaitSnapshots(); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		e := archive.Entry{Kind: archive.EntryWrite, Values: []netcode.PathValue{{
			Path: "players/1/pos", Time: netcode.Time{Nanos: int64(200 + i), Creator: 1}, Value: f64(float64(i)),
		}}}
		if i == 1999 {
			e.Values[0].Value = nil
		}
		if err := a.Append(int64(200+i), &e); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

func runTool(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVerifyRepairDump(t *testing.T) {
	dir := t.TempDir()
	build(t, dir)
	if code, out, errs := runTool("verify", dir); code != exitClean {
		t.Fatalf("verify a clean archive: %d\n%s%s", code, out, errs)
	}
	code, out, errs := runTool("dump", dir)
	if code != exitClean {
		t.Fatalf("dump: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2002 {
		t.Fatalf("%d lines", len(lines))
	}
	var first, second, last dumpLine
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &second)
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if first.Path != "players/1/name" || first.Base64 == nil || *first.Base64 != "YW5u" || first.State != "final" {
		t.Fatalf("first line %s", lines[0])
	}
	if second.Path != "players/1/pos" || fmt.Sprint(second.Floats) != "[1.5 -2]" {
		t.Fatalf("second line %s", lines[1])
	}
	if !last.Deleted || last.State != "logged" || last.Time.Nanos != 2199 {
		t.Fatalf("last line %s", lines[len(lines)-1])
	}
	if code, out, _ := runTool("stats", dir); code != exitClean || !strings.Contains(out, `"log_entries": 2000`) {
		t.Fatalf("stats: %d %s", code, out)
	}

	// Damage in the middle of the log: verify recovers with a loss
	// report; repair leaves it clean.
	names, _ := os.ReadDir(filepath.Join(dir, "wal"))
	if len(names) < 2 {
		t.Fatalf("%d segments", len(names))
	}
	p := filepath.Join(dir, "wal", names[0].Name())
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o644)
	code, out, _ = runTool("verify", dir)
	if code != exitRecovered || !strings.Contains(out, "skipped") {
		t.Fatalf("verify damaged: %d\n%s", code, out)
	}
	code, out, _ = runTool("repair", dir)
	if code != exitClean {
		t.Fatalf("repair: %d\n%s", code, out)
	}
	if code, _, _ := runTool("verify", dir); code != exitClean {
		t.Fatalf("verify after repair: %d", code)
	}
	code, out, _ = runTool("dump", dir)
	if n := strings.Count(out, "\n"); code != exitClean || n < 1990 || n >= 2002 {
		t.Fatalf("dump after repair: %d, %d lines", code, n)
	}
}

func TestVerifyUnreadable(t *testing.T) {
	if code, _, _ := runTool("verify", filepath.Join(t.TempDir(), "none")); code != exitUnreadable {
		t.Fatalf("missing directory: %d", code)
	}
	dir := t.TempDir()
	build(t, dir)
	os.Remove(filepath.Join(dir, "MANIFEST.0"))
	os.Remove(filepath.Join(dir, "MANIFEST.1"))
	if code, _, errs := runTool("verify", dir); code != exitUnreadable || !strings.Contains(errs, "manifest") {
		t.Fatalf("no manifest: %d %s", code, errs)
	}
	if code, _, _ := runTool("bogus", dir); code != exitUnreadable {
		t.Fatalf("unknown command: %d", code)
	}
}

func TestVerifyLostBlock(t *testing.T) {
	dir := t.TempDir()
	build(t, dir)
	shards, _ := filepath.Glob(filepath.Join(dir, "blocks", "*.shard"))
	if len(shards) != 1 {
		t.Fatalf("%d shards", len(shards))
	}
	os.Remove(shards[0])
	code, out, _ := runTool("verify", dir)
	if code != exitRecovered || !strings.Contains(out, "LOST") {
		t.Fatalf("verify with a block lost: %d\n%s", code, out)
	}
}

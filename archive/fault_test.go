package archive

import (
	"errors"
	"syscall"
	"testing"

	"github.com/rewindnet/rewind/netcode"
)

// TestLogFaults: when the disk fails (fsync error, short write, full
// disk), appends are refused with ErrLogFailed from then on; what was
// durable before is all there after a restart on a healthy disk.
func TestLogFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   Fault
		pattern string
	}{
		{"fsync", FaultSync, "*.log"},
		{"short_write", FaultShortWrite, "*.log"},
		{"disk_full", FaultDiskFull, "*.log"},
		{"disk_full_new_segment", FaultDiskFull, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &FaultFS{FS: OSFS{}}
			o := testOptions(dir)
			o.FS = ffs
			a := mustOpen(t, o)
			appendEntries(t, a, 0, 500)
			if err := a.Sync(); err != nil {
				t.Fatal(err)
			}
			ffs.Set(tc.fault, tc.pattern)
			// Keep appending until the log refuses (the flusher meets
			// the fault within a flush window; a new segment is due
			// within 64 KiB for the create fault).
			var err error
			n := 500
			waitFor(t, "the log to refuse", func() bool {
				e := writeEntry(n)
				err = a.Append(int64(1000+n), &e)
				if err == nil {
					n++
				}
				return err != nil
			})
			if !errors.Is(err, ErrLogFailed) || a.Err() == nil {
				t.Fatalf("append error %v, want ErrLogFailed", err)
			}
			if tc.fault == FaultDiskFull && !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("error %v does not say the disk is full", err)
			}
			if ffs.Hits() == 0 {
				t.Fatal("no fault injected")
			}
			if err := a.Sync(); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("sync after failure: %v", err)
			}
			if st := a.Stats(); st.Log.Refused == 0 || st.Log.Failures != 1 {
				t.Fatalf("stats %+v", st.Log)
			}
			a.Close()
			ffs.Clear()
			a = mustOpen(t, testOptions(dir))
			idx := checkSubsequence(t, a.Recovered().Entries)
			if len(idx) < 500 {
				t.Fatalf("%d entries after the restart, 500 were durable", len(idx))
			}
			for k, i := range idx {
				if i != k {
					t.Fatalf("entry %d is %d", k, i)
				}
			}
			a.Close()
		})
	}
}

// TestSnapshotFault: a snapshot that cannot be written keeps its values
// for the next, and removes nothing from the log.
func TestSnapshotFault(t *testing.T) {
	dir := t.TempDir()
	ffs := &FaultFS{FS: OSFS{}}
	o := testOptions(dir)
	o.FS = ffs
	a := mustOpen(t, o)
	appendEntries(t, a, 0, 100)
	a.AddFinal([]netcode.PathValue{finalValue("f/1", 1001, "a"), finalValue("f/2", 1002, "b")})
	ffs.Set(FaultDiskFull, "*.tmp")
	a.Snapshot(1100, 1100, nil)
	if err := a.WaitSnapshots(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("snapshot error %v, want ENOSPC", err)
	}
	if st := a.Stats(); st.PendingFinal != 2 || st.SnapshotErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
	ffs.Clear()
	a.Snapshot(1100, 1050, []byte("m"))
	if err := a.WaitSnapshots(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a = mustOpen(t, testOptions(dir))
	st := a.Recovered()
	if got := collectFinals(t, st); len(got) != 2 || string(st.Meta) != "m" {
		t.Fatalf("finals %v meta %q", got, st.Meta)
	}
	if n := len(checkSubsequence(t, st.Entries)); n != 100 {
		t.Fatalf("%d log entries, want 100 (the one segment holds later records)", n)
	}
	a.Close()
}

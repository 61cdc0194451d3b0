package archive

import (
	"os"
	"testing"
)

// TestStatsSyncsAndSkipped: every group commit is filed in one bucket of
// WALStats.Syncs, and a torn tail shows as RecoverySkipped after a
// restart, the bytes the report lists as damage.
func TestStatsSyncsAndSkipped(t *testing.T) {
	base := t.TempDir()
	a := mustOpen(t, testOptions(base))
	appendEntries(t, a, 0, 300)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = mustOpen(t, testOptions(base))
	if got := a.Stats().RecoverySkipped; got != 0 {
		t.Fatalf("clean reopen: RecoverySkipped %d", got)
	}
	appendEntries(t, a, 300, 400)
	a.Sync()
	st := a.Stats().Log
	var filed uint64
	for _, n := range st.Syncs {
		filed += n
	}
	if st.Flushes == 0 || filed != st.Flushes {
		t.Fatalf("flushes %d, filed in buckets %d", st.Flushes, filed)
	}
	a.Close()

	seg := lastSegment(t, base)
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Garbage where the last records were: a torn write.
	for i := len(full) - 40; i < len(full); i++ {
		full[i] ^= 0x5a
	}
	if err := os.WriteFile(seg, full, 0o644); err != nil {
		t.Fatal(err)
	}
	a = mustOpen(t, testOptions(base))
	defer a.Close()
	rep := a.Recovered().Report
	got := a.Stats().RecoverySkipped
	if got <= 0 || got != rep.SkippedBytes() {
		t.Fatalf("RecoverySkipped %d, report %d (%s)", got, rep.SkippedBytes(), rep.String())
	}
}

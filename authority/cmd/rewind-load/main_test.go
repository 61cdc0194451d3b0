package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMain lets the test binary be the authority child too: the command
// starts os.Executable with -serve.
func TestMain(m *testing.M) {
	if slices.Contains(os.Args[1:], "-serve") {
		if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmallRun plays 6 players for a second against a real authority
// process over loopback and checks that the report and the plots are
// written and say the run happened: calls were made and answered, the
// authority used some CPU. The figures themselves depend on the machine
// and are not judged here.
func TestSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an authority process")
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "r.json")
	var out, errs strings.Builder
	err := run([]string{"-sweep", "3,6", "-duration", "1s", "-warmup", "1s", "-idle", "500ms", "-lag", "lan",
		"-report", report, "-plot", dir, "-commit", "test"}, &out, &errs)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errs.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var runs []Report
	if err := json.Unmarshal(b, &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Players != 3 || runs[1].Players != 6 {
		t.Fatalf("report %s", b)
	}
	for _, r := range runs {
		if r.CallsPerS <= 0 || r.AuthorityCPUPct < 0 || r.Commit != "test" || r.DownKbpsPerPlayer <= 0 ||
			r.RateAchievedPct <= 0 || r.Loops < 1 || r.SocketBuffer <= 0 {
			t.Errorf("run of %d players: %+v", r.Players, r)
		}
	}
	for _, c := range charts {
		if st, err := os.Stat(filepath.Join(dir, c.file)); err != nil || st.Size() == 0 {
			t.Errorf("plot %s: %v", c.file, err)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-players", "0"},
		{"-sweep", "10,x"},
		{"-lag", "nowhere"},
		{"-rate", "0"},
		{"-loops", "65"},
		{"-sockbuf", "-2"},
	} {
		var out, errs strings.Builder
		if err := run(args, &out, &errs); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

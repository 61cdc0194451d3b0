// Command rewind-archive inspects and repairs a Rewind archive: the data
// directories of a durable authority.
//
//	rewind-archive verify [-parity M] DIR...   exit 0 clean, 1 recovered with a loss report, 2 unreadable
//	rewind-archive repair [-parity M] DIR...   rewrite what can be rebuilt, drop what cannot be read
//	rewind-archive stats  [-parity M] DIR...   what the archive holds
//	rewind-archive dump   [-parity M] DIR...   every value as a JSON line
//
// DIR... are the archive's directories in order (the authority's -data,
// or its -data-dirs), and -parity its parity count. verify, stats and dump
// never write.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/netcode"
)

// Exit statuses of verify (and of the other commands on failure).
const (
	exitClean      = 0
	exitRecovered  = 1
	exitUnreadable = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: rewind-archive verify|repair|stats|dump [-parity M] DIR...`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitUnreadable
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	parity := fs.Int("parity", 0, "parity shards of the archive (its -parity)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUnreadable
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, usage)
		return exitUnreadable
	}
	opts := archive.DefaultOptions(fs.Arg(0))
	opts.Dirs = fs.Args()
	opts.Parity = *parity
	opts.ReadOnly = true
	opts.Recover = archive.RecoverSkip
	for _, d := range opts.Dirs {
		if _, err := os.Stat(d); err != nil {
			fmt.Fprintf(stderr, "rewind-archive: %v\n", err)
			return exitUnreadable
		}
	}
	switch cmd {
	case "verify":
		return verify(opts, stdout, stderr)
	case "repair":
		rep, err := archive.Repair(opts)
		if rep != nil {
			fmt.Fprintln(stdout, rep)
		}
		if err != nil {
			fmt.Fprintf(stderr, "rewind-archive: repair: %v\n", err)
			return exitUnreadable
		}
		return verify(opts, stdout, stderr)
	case "stats":
		return stats(opts, stdout, stderr)
	case "dump":
		return dump(opts, stdout, stderr)
	}
	fmt.Fprintf(stderr, "rewind-archive: unknown command %q\n%s\n", cmd, usage)
	return exitUnreadable
}

// open opens the archive read-only and reads every block through, so a
// block that rebuilds but does not decode counts as damage.
func open(opts archive.Options) (*archive.Archive, uint64, error) {
	a, err := archive.Open(opts)
	if err != nil {
		return nil, 0, err
	}
	var n uint64
	err = a.Recovered().ScanFinals(func(netcode.PathValue) error { n++; return nil })
	if err != nil {
		a.Close()
		return nil, 0, err
	}
	return a, n, nil
}

func verify(opts archive.Options, stdout, stderr io.Writer) int {
	a, _, err := open(opts)
	if err != nil {
		fmt.Fprintf(stderr, "rewind-archive: unreadable: %v\n", err)
		return exitUnreadable
	}
	defer a.Close()
	rep := &a.Recovered().Report
	fmt.Fprintln(stdout, rep)
	if rep.Clean() {
		fmt.Fprintln(stdout, "clean")
		return exitClean
	}
	recs, bytes := rep.LostRecords()
	fmt.Fprintf(stdout, "recovered: at least %d log records (%d bytes) skipped, %d blocks lost, %d rebuilt from parity\n",
		recs, bytes, len(rep.LostBlocks), len(rep.Shards))
	return exitRecovered
}

func stats(opts archive.Options, stdout, stderr io.Writer) int {
	a, n, err := open(opts)
	if err != nil {
		fmt.Fprintf(stderr, "rewind-archive: %v\n", err)
		return exitUnreadable
	}
	defer a.Close()
	m := a.Manifest()
	st := a.Recovered()
	var lo, hi int64
	for i, b := range m.Blocks {
		if i == 0 || b.MinNanos < lo {
			lo = b.MinNanos
		}
		hi = max(hi, b.MaxNanos)
	}
	var values int
	var newest int64
	for _, e := range st.Entries {
		values += len(e.Values)
		newest = max(newest, e.Now)
	}
	out := map[string]any{
		"manifest_seq": m.Seq, "data_shards": m.Data, "parity_shards": m.Parity,
		"horizon": m.Horizon, "blocks": len(m.Blocks), "final_values": n,
		"final_min_nanos": lo, "final_max_nanos": hi,
		"log_segments": st.Report.Segments, "log_entries": len(st.Entries), "log_values": values,
		"log_newest_now": newest, "clean": st.Report.Clean(),
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return exitUnreadable
	}
	return exitClean
}

// dumpLine is one value of the dump.
type dumpLine struct {
	Path    string    `json:"path"`
	Time    dumpTime  `json:"time"`
	State   string    `json:"state"`
	Event   bool      `json:"event,omitempty"`
	Deleted bool      `json:"deleted,omitempty"`
	Floats  []float64 `json:"floats,omitempty"`
	Base64  *string   `json:"base64,omitempty"`
}

type dumpTime struct {
	Nanos   int64  `json:"nanos"`
	Version uint32 `json:"version"`
	Creator uint32 `json:"creator"`
}

// floats decodes v as little-endian float64s, if it is a whole number of
// them and each is finite.
func floats(v []byte) ([]float64, bool) {
	if len(v) == 0 || len(v)%8 != 0 {
		return nil, false
	}
	out := make([]float64, len(v)/8)
	for i := range out {
		f := math.Float64frombits(binary.LittleEndian.Uint64(v[8*i:]))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		out[i] = f
	}
	return out, true
}

func line(v netcode.PathValue, state string) dumpLine {
	l := dumpLine{Path: v.Path, Time: dumpTime{v.Time.Nanos, v.Time.Version, v.Time.Creator}, State: state,
		Event: v.Flags&netcode.FlagEvent != 0}
	switch fs, ok := floats(v.Value); {
	case v.Value == nil:
		l.Deleted = true
	case ok:
		l.Floats = fs
	default:
		s := base64.StdEncoding.EncodeToString(v.Value)
		l.Base64 = &s
	}
	return l
}

// dump writes the blocks' final values (state "final"), then the values of
// the log in log order (state "logged": accepted, not yet final; a value
// logged may since have turned invalid, which only a store replaying the
// log can tell).
func dump(opts archive.Options, stdout, stderr io.Writer) int {
	a, err := archive.Open(opts)
	if err != nil {
		fmt.Fprintf(stderr, "rewind-archive: %v\n", err)
		return exitUnreadable
	}
	defer a.Close()
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	st := a.Recovered()
	errOut := errors.New("output")
	err = st.ScanFinals(func(v netcode.PathValue) error {
		if enc.Encode(line(v, "final")) != nil {
			return errOut
		}
		return nil
	})
	if err == nil {
		for _, e := range st.Entries {
			for _, v := range e.Values {
				if err = enc.Encode(line(v, "logged")); err != nil {
					break
				}
			}
		}
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "rewind-archive: dump: %v\n", err)
		return exitUnreadable
	}
	if !st.Report.Clean() {
		fmt.Fprintf(stderr, "rewind-archive: %v\n", &st.Report)
		return exitRecovered
	}
	return exitClean
}

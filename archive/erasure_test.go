package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// erasureBase writes an archive over 5 directories, 3 data + 2 parity:
// snapshot blocks and a log. It returns the parent folder and the values
// and entry count to find again.
func erasureBase(t *testing.T) (string, []string, func(*testing.T, *State)) {
	parent := t.TempDir()
	var names []string
	for i := range 5 {
		names = append(names, fmt.Sprintf("d%d", i))
	}
	o := erasureOptions(parent, names)
	a := mustOpen(t, o)
	want := snapshotRounds(t, a, 3)
	appendEntries(t, a, 6000, 6100) // after the last snapshot
	a.Close()
	check := func(t *testing.T, st *State) {
		t.Helper()
		if d := cmp.Diff(want, collectFinals(t, st)); d != "" {
			t.Fatalf("finals (-want +got):\n%s", d)
		}
		idx := checkSubsequence(t, st.Entries)
		if len(idx) == 0 || idx[len(idx)-1] != 6099 {
			t.Fatalf("log entries end at %v", idx[len(idx)-1:])
		}
	}
	return parent, names, check
}

func erasureOptions(parent string, names []string) Options {
	var dirs []string
	for _, n := range names {
		dirs = append(dirs, filepath.Join(parent, n))
	}
	o := testOptions(dirs...)
	o.Parity = 2
	o.Chunk = 512
	return o
}

// damageDir flips bytes in every shard, log segment and manifest of dir.
func damageDir(t *testing.T, dir string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i := 0; i < len(b); i += 97 {
			b[i] ^= 0x5a
		}
		return os.WriteFile(p, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestErasureAnyTwo: with 2 parity shards, removing or corrupting any 2 of
// the 5 directories loses nothing; a third gives an error naming what is
// lost.
func TestErasureAnyTwo(t *testing.T) {
	base, names, check := erasureBase(t)
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			for _, how := range []string{"removed", "corrupted"} {
				t.Run(fmt.Sprintf("%s_%d_%d", how, i, j), func(t *testing.T) {
					parent := copyTree(t, base)
					for _, k := range []int{i, j} {
						d := filepath.Join(parent, names[k])
						if how == "removed" {
							os.RemoveAll(d)
						} else {
							damageDir(t, d)
						}
					}
					o := erasureOptions(parent, names)
					a := mustOpen(t, o)
					st := a.Recovered()
					check(t, st)
					if st.Report.Clean() || st.Report.Lost() {
						t.Fatalf("report says clean or lost: %v", &st.Report)
					}
					a.Close()
					if (i+j)%3 != 0 {
						return
					}
					// Opening rebuilt what was missing: clean now.
					a = mustOpen(t, o)
					st = a.Recovered()
					check(t, st)
					if len(st.Report.Shards) != 0 || len(st.Report.BadManifests) != 0 {
						t.Fatalf("not rebuilt: %v", &st.Report)
					}
					a.Close()
				})
			}
		}
	}
	t.Run("three_removed", func(t *testing.T) {
		parent := copyTree(t, base)
		for _, k := range []int{1, 3, 4} {
			os.RemoveAll(filepath.Join(parent, names[k]))
		}
		_, err := Open(erasureOptions(parent, names))
		if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "d3") || !strings.Contains(err.Error(), "block") {
			t.Fatalf("err %v, want ErrLost naming a block and the directories", err)
		}
	})
	t.Run("log_mirrors_removed", func(t *testing.T) {
		parent := copyTree(t, base)
		for _, k := range []int{0, 1, 2} {
			os.RemoveAll(filepath.Join(parent, names[k], walDir))
		}
		_, err := Open(erasureOptions(parent, names))
		if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "log") {
			t.Fatalf("err %v, want ErrLost naming the log", err)
		}
	})
}

// TestShardCodecChunks: damage in different chunks of more shards than
// the parity, as long as each stripe has at most M bad chunks, is
// recovered.
func TestShardCodecChunks(t *testing.T) {
	c, err := newShardCodec(3, 2, 512)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 20000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	files, err := c.encode(9, body)
	if err != nil {
		t.Fatal(err)
	}
	// Shards 0..3 each lose a different chunk; shard 4 loses chunk 0 too.
	for s := range 4 {
		h, _ := parseShard(files[s])
		files[s][h.dataStart+s*512+3] ^= 1
	}
	h, _ := parseShard(files[4])
	files[4][h.dataStart+3] ^= 1
	got, _, loss, err := c.decode(9, files)
	if err != nil || !cmp.Equal(got, body) {
		t.Fatalf("err %v, equal %v", err, cmp.Equal(got, body))
	}
	if len(loss.Damaged) != 5 {
		t.Fatalf("loss %+v", loss)
	}
	// Three bad chunks in stripe 0 (decode repaired the files above, so
	// damage them afresh): lost, and said so.
	for _, s := range []int{0, 1, 4} {
		h, _ := parseShard(files[s])
		files[s][h.dataStart+5] ^= 1
	}
	if _, _, _, err := c.decode(9, files); !errors.Is(err, ErrLost) {
		t.Fatalf("err %v, want ErrLost", err)
	}
}

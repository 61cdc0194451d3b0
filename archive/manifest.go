package archive

import (
	"encoding/json"
	"fmt"
	"path/filepath"
)

// The manifest names what is live: the snapshot blocks, the first log
// segment still needed, the horizon below which the blocks hold every
// final value, and the owner's metadata. It is one framed record (see
// AppendRecord) whose payload is JSON (the Manifest type), kept as two
// copies in every directory, MANIFEST.0 and MANIFEST.1. Each copy is
// replaced atomically: written to MANIFEST.n.tmp, synced, renamed over
// MANIFEST.n, and the directory synced. A reader takes the copy with the
// highest Seq that verifies.
const (
	manifestName   = "MANIFEST"
	manifestCopies = 2
	// FormatVersion is the version of the on-disk format this package
	// writes and reads.
	FormatVersion = 1
)

// Manifest is the archive's root.
type Manifest struct {
	Version int    `json:"version"`
	Seq     uint64 `json:"seq"`
	Data    int    `json:"data"`   // K: data shards per block
	Parity  int    `json:"parity"` // M: parity shards per block
	// Horizon: every final value with Nanos below it is in Blocks (or was
	// compacted away); the log's values below it are not needed.
	Horizon int64 `json:"horizon"`
	// FirstSegment is the index of the oldest log segment still needed.
	FirstSegment uint64      `json:"first_segment"`
	NextBlock    uint64      `json:"next_block"`
	Blocks       []BlockInfo `json:"blocks"`
	// Meta is the owner's own state as of Horizon (the authority keeps
	// its creator ids there).
	Meta []byte `json:"meta,omitempty"`
}

// BlockInfo describes a live block.
type BlockInfo struct {
	ID       uint64 `json:"id"`
	Length   uint64 `json:"length"` // bytes of the block before sharding
	Count    uint64 `json:"count"`  // values
	MinNanos int64  `json:"min_nanos"`
	MaxNanos int64  `json:"max_nanos"`
}

func manifestPath(dir string, copy int) string {
	return filepath.Join(dir, fmt.Sprintf("%s.%d", manifestName, copy))
}

func encodeManifest(m *Manifest) ([]byte, error) {
	p, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return AppendRecord(nil, p), nil
}

// DecodeManifest decodes one manifest copy.
func DecodeManifest(b []byte) (*Manifest, error) {
	p, size, ok := recordAt(b, 0)
	if !ok || size != len(b) {
		return nil, fmt.Errorf("%w: manifest does not verify", ErrCorrupt)
	}
	var m Manifest
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrCorrupt, err)
	}
	if m.Version != FormatVersion {
		return nil, fmt.Errorf("%w: manifest version %d, this program reads %d", ErrCorrupt, m.Version, FormatVersion)
	}
	return &m, nil
}

// manifestCopy is one copy's fate when the manifest was loaded.
type manifestCopy struct {
	path string
	seq  uint64
	err  error // nil: read and verified
}

// loadManifest reads every copy in every directory and returns the newest
// that verifies (nil when there is none), with what each copy was.
func loadManifest(fsys FS, dirs []string) (*Manifest, []manifestCopy) {
	var best *Manifest
	var copies []manifestCopy
	for _, d := range dirs {
		for i := range manifestCopies {
			p := manifestPath(d, i)
			b, err := fsys.ReadFile(p)
			if err != nil {
				copies = append(copies, manifestCopy{path: p, err: err})
				continue
			}
			m, err := DecodeManifest(b)
			if err != nil {
				copies = append(copies, manifestCopy{path: p, err: err})
				continue
			}
			copies = append(copies, manifestCopy{path: p, seq: m.Seq})
			if best == nil || m.Seq > best.Seq {
				best = m
			}
		}
	}
	return best, copies
}

// writeManifest replaces every copy in every directory, one at a time, so
// a crash leaves at least the previous manifest or the new one whole in
// each.
func writeManifest(fsys FS, dirs []string, m *Manifest) error {
	b, err := encodeManifest(m)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		for i := range manifestCopies {
			if err := writeFileAtomic(fsys, manifestPath(d, i), b); err != nil {
				return fmt.Errorf("archive: manifest: %w", err)
			}
		}
	}
	return nil
}

// writeFileAtomic writes name through a temporary file: write, sync,
// rename, sync the directory.
func writeFileAtomic(fsys FS, name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.Create(tmp)
	if err != nil {
		return err
	}
	if err := writeAll(f, b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

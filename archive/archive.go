package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/bits"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// ErrBadOptions is wrapped by Options.Validate's errors.
var ErrBadOptions = errors.New("archive: bad options")

// Defaults.
const (
	DefaultFlushEvery   = 20 * time.Millisecond
	DefaultSegmentSize  = 64 << 20
	DefaultMaxBuffered  = 64 << 20
	DefaultCompactFanIn = 4
	DefaultKeepHistory  = time.Hour
	blocksDir           = "blocks"
	shardSuffix         = ".shard"
	tmpSuffix           = ".tmp"
)

// Options configure an archive. Start from DefaultOptions.
type Options struct {
	// Dirs are the K+M directories (disks, volumes) the archive spreads
	// over, K = len(Dirs) - Parity. Block shard i lives in Dirs[i]; the
	// log is mirrored in Dirs[0..Parity], and the manifest kept in all.
	Dirs []string
	// Parity is M: any M of the directories can be lost or corrupted.
	Parity int
	// FlushEvery is the group-commit interval: the log is written and
	// fdatasync'ed this often, so a crash loses at most this much.
	FlushEvery time.Duration
	// SegmentSize bounds a log segment, bytes.
	SegmentSize int64
	// MaxBuffered bounds the log bytes appended but not yet written;
	// Append waits while the disk is this far behind.
	MaxBuffered int
	// Chunk is the checksummed unit of a block shard, bytes.
	Chunk int
	// Recover says what Open does about damage.
	Recover RecoveryMode
	// CompactFanIn: this many consecutive blocks of one size class are
	// merged into one.
	CompactFanIn int
	// KeepHistory: compaction drops a superseded final value once the
	// value after it is older than the horizon minus KeepHistory. A
	// path's latest value (a deletion too, as a tombstone) is kept.
	KeepHistory time.Duration
	// ReadOnly opens for reading: no log, nothing written or removed.
	ReadOnly bool
	// FS does the file I/O; nil is OSFS.
	FS FS
	// Logger receives the archive's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultOptions is one directory, no parity, a 20 ms group commit.
func DefaultOptions(dir string) Options {
	return Options{
		Dirs:         []string{dir},
		FlushEvery:   DefaultFlushEvery,
		SegmentSize:  DefaultSegmentSize,
		MaxBuffered:  DefaultMaxBuffered,
		Chunk:        DefaultChunk,
		CompactFanIn: DefaultCompactFanIn,
		KeepHistory:  DefaultKeepHistory,
	}
}

// Validate reports the first bad field; zero sizes and intervals take
// their defaults.
func (o *Options) Validate() error {
	if o.FlushEvery == 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.MaxBuffered == 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	if o.Chunk == 0 {
		o.Chunk = DefaultChunk
	}
	if o.CompactFanIn == 0 {
		o.CompactFanIn = DefaultCompactFanIn
	}
	switch {
	case len(o.Dirs) == 0:
		return fmt.Errorf("%w: no directory", ErrBadOptions)
	case o.Parity < 0 || o.Parity >= len(o.Dirs):
		return fmt.Errorf("%w: parity %d with %d directories (need at least one data directory)", ErrBadOptions, o.Parity, len(o.Dirs))
	case len(o.Dirs) > 255:
		return fmt.Errorf("%w: %d directories (at most 255)", ErrBadOptions, len(o.Dirs))
	case o.FlushEvery < 0 || o.FlushEvery > time.Minute:
		return fmt.Errorf("%w: FlushEvery %v", ErrBadOptions, o.FlushEvery)
	case o.SegmentSize < 1<<16:
		return fmt.Errorf("%w: SegmentSize %d (at least 64 KiB)", ErrBadOptions, o.SegmentSize)
	case o.MaxBuffered < 1<<16:
		return fmt.Errorf("%w: MaxBuffered %d (at least 64 KiB)", ErrBadOptions, o.MaxBuffered)
	case o.Chunk < 512 || o.Chunk > 1<<30:
		return fmt.Errorf("%w: Chunk %d", ErrBadOptions, o.Chunk)
	case o.CompactFanIn < 2:
		return fmt.Errorf("%w: CompactFanIn %d (at least 2)", ErrBadOptions, o.CompactFanIn)
	case o.KeepHistory < 0:
		return fmt.Errorf("%w: KeepHistory %v", ErrBadOptions, o.KeepHistory)
	case o.Recover > RecoverStrict:
		return fmt.Errorf("%w: %v", ErrBadOptions, o.Recover)
	}
	seen := map[string]bool{}
	for _, d := range o.Dirs {
		c := filepath.Clean(d)
		if d == "" || seen[c] {
			return fmt.Errorf("%w: directory %q empty or given twice", ErrBadOptions, d)
		}
		seen[c] = true
	}
	return nil
}

// Stats counts what an archive holds and has done.
type Stats struct {
	Log            WALStats
	DurableNow     int64  // Now of the newest durable log record
	DurableRecords uint64 // log records appended since Open that are durable (of Log.Records)
	Blocks         int
	BlockValues    uint64 // final values in live blocks
	Snapshots      uint64 // snapshots written
	Compactions    uint64
	SnapshotErrors uint64
	PendingFinal   int // final values waiting for the next snapshot
	// RecoverySkipped is the log bytes Open could not read back
	// (Report.SkippedBytes): damaged stretches skipped, a torn tail
	// among them.
	RecoverySkipped int64
}

// State is what Open recovered, for the owner to rebuild itself: the final
// values of the blocks (ScanFinals), the horizon they cover, the owner's
// metadata, and the log entries written after, in log order.
type State struct {
	Horizon int64
	Meta    []byte
	Entries []Entry
	Report  Report
	blocks  [][]byte // block bodies, oldest first
}

// ScanFinals calls fn with every final value of the blocks: block by
// block, oldest first, each sorted by path then time, so a path's values
// come in time order. Values alias the archive's buffers; they never
// change. It stops at fn's first error.
func (s *State) ScanFinals(fn func(netcode.PathValue) error) error {
	for _, b := range s.blocks {
		// The shards' chunk checksums verified the bytes when the block
		// was read; every other check is made.
		r, err := newBlockReader(b, false)
		if err != nil {
			return err
		}
		if err := r.each(math.MaxInt, fn); err != nil {
			return err
		}
	}
	return nil
}

// Archive is an open archive: the write-ahead log, the snapshot blocks and
// the manifest. Append, AddFinal and Snapshot are meant for one goroutine
// (the owner's); Stats, Durable and Err may be called from any. The log
// has one flusher goroutine, snapshots one writer goroutine.
type Archive struct {
	// immutable after construction
	opts  Options
	fs    FS
	log   *slog.Logger
	codec *shardCodec
	k     int
	wal   *wal // nil when read-only

	state *State

	mu       sync.Mutex // guards the fields below
	man      Manifest
	pending  [][]netcode.PathValue // final values for the next snapshot, as AddFinal got them
	req      *snapReq
	busy     bool
	closed   bool
	snapErr  error
	stats    Stats
	idle     sync.Cond // broadcast when a snapshot round ends
	snapWake chan struct{}
	snapDone chan struct{}
}

type snapReq struct {
	values  [][]netcode.PathValue
	horizon int64
	logCut  int64
	meta    []byte
}

// Open opens (creating if needed) the archive in opts.Dirs and recovers
// it as opts.Recover says: the newest manifest, the blocks it names
// (rebuilt from parity where shards are missing or damaged, and rewritten
// unless read-only), and the log since. Recovered returns what it found.
func Open(opts Options) (*Archive, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	a := &Archive{opts: opts, fs: opts.FS, log: opts.Logger, k: len(opts.Dirs) - opts.Parity,
		snapWake: make(chan struct{}, 1), snapDone: make(chan struct{})}
	if a.fs == nil {
		a.fs = OSFS{}
	}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a.idle.L = &a.mu
	codec, err := newShardCodec(a.k, opts.Parity, opts.Chunk)
	if err != nil {
		return nil, err
	}
	a.codec = codec
	// Which log mirrors exist, before anything is created: a mirror
	// directory gone with its disk is a loss to report (and to refuse
	// when every mirror is gone).
	var walGone []string
	for _, d := range a.walDirs() {
		if _, err := a.fs.ReadDir(d); notExist(err) {
			walGone = append(walGone, d)
		}
	}
	if !opts.ReadOnly {
		for _, d := range opts.Dirs {
			for _, sub := range []string{d, filepath.Join(d, blocksDir)} {
				if err := a.fs.MkdirAll(sub); err != nil {
					return nil, fmt.Errorf("archive: %w", err)
				}
			}
		}
		for _, d := range a.walDirs() {
			if err := a.fs.MkdirAll(d); err != nil {
				return nil, fmt.Errorf("archive: %w", err)
			}
		}
	}
	st, segs, last, err := a.recover(walGone)
	if err != nil {
		return nil, err
	}
	a.state = st
	a.stats.RecoverySkipped = st.Report.SkippedBytes()
	a.stats.Blocks = len(a.man.Blocks)
	for _, b := range a.man.Blocks {
		a.stats.BlockValues += b.Count
	}
	if opts.ReadOnly {
		close(a.snapDone)
		return a, nil
	}
	// A new manifest: every copy rewritten (a bad one is replaced), and
	// the log restarts at a new segment.
	a.man.Seq++
	if err := writeManifest(a.fs, opts.Dirs, &a.man); err != nil {
		return nil, err
	}
	var durNow int64
	for _, s := range segs {
		durNow = max(durNow, s.maxNow)
	}
	a.wal = openWAL(a.fs, a.walDirs(), opts.SegmentSize, opts.FlushEvery, opts.MaxBuffered, last, segs, durNow, a.log)
	go a.snapshotLoop()
	return a, nil
}

func (a *Archive) walDirs() []string {
	out := make([]string, a.opts.Parity+1)
	for i := range out {
		out[i] = filepath.Join(a.opts.Dirs[i], walDir)
	}
	return out
}

// Recovered returns what Open recovered. The owner rebuilds itself from
// it once; the archive keeps no other reference to it after Forget.
func (a *Archive) Recovered() *State { return a.state }

// Forget drops the recovered state, releasing its memory.
func (a *Archive) Forget() { a.state = nil }

// recover loads the manifest, the blocks and the log.
func (a *Archive) recover(walGone []string) (*State, []segInfo, uint64, error) {
	st := &State{}
	rep := &st.Report
	man, copies := loadManifest(a.fs, a.opts.Dirs)
	for _, c := range copies {
		if c.err != nil || (man != nil && c.seq != man.Seq) {
			why := "older"
			if c.err != nil {
				why = c.err.Error()
			}
			rep.BadManifests = append(rep.BadManifests, fmt.Sprintf("%s: %s", c.path, why))
		}
	}
	if man == nil {
		// A new archive, or one whose every manifest copy is gone: with
		// no copy at all but blocks or segments on disk, it cannot be
		// read safely.
		if err := a.checkEmpty(); err != nil {
			return nil, nil, 0, err
		}
		man = &Manifest{Version: FormatVersion, Data: a.k, Parity: a.opts.Parity, Horizon: math.MinInt64, FirstSegment: 1, NextBlock: 1}
		rep.BadManifests = nil
	}
	if man.Data != a.k || man.Parity != a.opts.Parity {
		return nil, nil, 0, fmt.Errorf("%w: the archive has %d data + %d parity shards, opened with %d + %d",
			ErrBadOptions, man.Data, man.Parity, a.k, a.opts.Parity)
	}
	a.man = *man
	rep.ManifestSeq = man.Seq
	st.Horizon, st.Meta = man.Horizon, man.Meta

	// The log's segments are read and decoded by a goroutine of their own
	// while the blocks are read; what is found is applied (the recovery
	// mode, repairs, the cut of a torn tail) below, in order, after the
	// blocks, as if it had been read then.
	wdirs := a.walDirs()
	logDone := make(chan *logScan, 1)
	go func() { logDone <- scanLog(a.fs, wdirs, man.FirstSegment) }()
	var ls *logScan
	waitLog := func() *logScan {
		if ls == nil {
			ls = <-logDone
		}
		return ls
	}
	defer waitLog() // nothing is read after Open returns

	// Blocks.
	for _, bi := range man.Blocks {
		body, loss, err := a.readBlock(bi.ID)
		if err != nil {
			rep.LostBlocks = append(rep.LostBlocks, err.Error())
			if a.opts.Recover != RecoverSkip {
				return nil, nil, 0, fmt.Errorf("archive: %w (blocks are in %s)", err, strings.Join(a.opts.Dirs, ", "))
			}
			continue
		}
		if len(loss.Missing)+len(loss.Damaged) > 0 {
			rep.Shards = append(rep.Shards, loss)
			if !a.opts.ReadOnly {
				if err := a.rewriteShards(bi.ID, body, loss); err != nil {
					return nil, nil, 0, err
				}
				rep.Repaired = append(rep.Repaired, fmt.Sprintf("block %016x shards %v", bi.ID, append(loss.Missing, loss.Damaged...)))
			}
		}
		st.blocks = append(st.blocks, body)
		rep.Blocks++
		rep.FinalValues += bi.Count
	}

	// The log.
	if man.Seq > 0 {
		for _, d := range walGone {
			rep.SegmentCopies = append(rep.SegmentCopies, fmt.Sprintf("%s: log mirror directory missing", d))
		}
		if len(walGone) == len(wdirs) && a.opts.Recover != RecoverSkip {
			return nil, nil, 0, fmt.Errorf("%w: the log is gone from every mirror (%s)", ErrLost, strings.Join(wdirs, ", "))
		}
	}
	ls = waitLog()
	if ls.err != nil {
		return nil, nil, 0, fmt.Errorf("archive: %w", ls.err)
	}
	idxs := ls.idxs
	var segs []segInfo
	last := man.FirstSegment - 1
	if len(idxs) > 0 {
		last = max(last, idxs[len(idxs)-1])
	}
	next := man.FirstSegment
	for k, idx := range idxs {
		if idx < man.FirstSegment {
			if !a.opts.ReadOnly {
				// Obsolete: a crash came between the manifest and the
				// removal.
				for _, d := range wdirs {
					if err := a.fs.Remove(filepath.Join(d, segName(idx))); err != nil && !notExist(err) {
						return nil, nil, 0, fmt.Errorf("archive: %w", err)
					}
				}
			}
			continue
		}
		for ; next < idx; next++ {
			rep.MissingSegments = append(rep.MissingSegments, next)
		}
		next = idx + 1
		isLast := k == len(idxs)-1
		info, err := a.recoverSegment(st, wdirs, ls.segs[idx], isLast)
		if err != nil {
			return nil, nil, 0, err
		}
		segs = append(segs, info)
		rep.Segments++
	}
	if len(rep.MissingSegments) > 0 && a.opts.Recover != RecoverSkip {
		return nil, nil, 0, fmt.Errorf("%w: log segments %v missing from every mirror (%s)", ErrLost, rep.MissingSegments, strings.Join(wdirs, ", "))
	}
	st.Entries = ls.entries
	rep.Entries = len(st.Entries)
	if !a.opts.ReadOnly {
		if err := a.removeOrphans(); err != nil {
			return nil, nil, 0, err
		}
	}
	return st, segs, last, nil
}

// checkEmpty refuses to start afresh over blocks or segments left without
// any manifest copy.
func (a *Archive) checkEmpty() error {
	for _, d := range a.opts.Dirs {
		names, err := a.fs.ReadDir(filepath.Join(d, blocksDir))
		if err == nil {
			for _, n := range names {
				if strings.HasSuffix(n, shardSuffix) {
					return fmt.Errorf("%w: no manifest copy verifies, but %s holds block shards", ErrLost, d)
				}
			}
		}
	}
	idxs, err := segmentIndexes(a.fs, a.walDirs())
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if len(idxs) > 0 && idxs[0] != 1 {
		return fmt.Errorf("%w: no manifest copy verifies, and the log starts at segment %d", ErrLost, idxs[0])
	}
	return nil
}

// logScan is the log as read and decoded, before the recovery mode is
// applied: the segments on disk and, for each from the first still needed,
// what its mirrors hold.
type logScan struct {
	idxs    []uint64
	segs    map[uint64]*segScan
	entries []Entry // every segment's, in order
	err     error
}

// segScan is one segment read from its mirrors and decoded.
type segScan struct {
	index   uint64
	sc      *segmentScan
	err     error
	entries int // how many of logScan.entries are this segment's
	dmg     []SegmentDamage
	maxNow  int64
}

// scanLog reads and decodes every segment from first on. It only reads.
func scanLog(fsys FS, wdirs []string, first uint64) *logScan {
	ls := &logScan{segs: map[uint64]*segScan{}}
	ls.idxs, ls.err = segmentIndexes(fsys, wdirs)
	if ls.err != nil {
		return ls
	}
	intern := map[string]string{}
	var ar arena
	for _, idx := range ls.idxs {
		if idx < first {
			continue
		}
		ls.segs[idx] = decodeSegment(fsys, wdirs, idx, &ls.entries, intern, &ar)
	}
	return ls
}

// decodeSegment scans segment idx in every mirror and decodes its entries
// onto *entries. What cannot be read or decoded is listed as damage.
func decodeSegment(fsys FS, wdirs []string, idx uint64, entries *[]Entry, intern map[string]string, ar *arena) *segScan {
	ss := &segScan{index: idx, maxNow: math.MinInt64}
	ss.sc, ss.err = scanSegment(fsys, wdirs, idx)
	if ss.err != nil {
		return ss
	}
	if ss.sc == nil { // gone from every mirror since it was listed
		ss.sc = &segmentScan{index: idx, whole: -1}
	}
	sc := ss.sc
	for _, d := range sc.damage {
		ss.dmg = append(ss.dmg, SegmentDamage{Segment: idx, Damage: d})
	}
	*entries = slices.Grow(*entries, len(sc.records))
	n0 := len(*entries)
	for i, r := range sc.records {
		p := sc.payload(r)
		if i == 0 && r.off == 0 && isSegHeader(p, idx) {
			continue
		}
		if len(p) < 8 {
			ss.dmg = append(ss.dmg, SegmentDamage{Segment: idx, Damage: Damage{Offset: int64(r.off), Bytes: int64(r.size()), Records: 1}, Decode: "shorter than its time"})
			continue
		}
		now := int64(binary.LittleEndian.Uint64(p))
		*entries = append(*entries, Entry{})
		e := &(*entries)[len(*entries)-1]
		if err := decodeEntryInto(e, p[8:], intern, ar); err != nil {
			*entries = (*entries)[:len(*entries)-1]
			ss.dmg = append(ss.dmg, SegmentDamage{Segment: idx, Damage: Damage{Offset: int64(r.off), Bytes: int64(r.size()), Records: 1}, Decode: err.Error()})
			continue
		}
		e.Now = now
		ss.maxNow = max(ss.maxNow, now)
	}
	ss.entries = len(*entries) - n0
	if len(sc.records) > 0 && (sc.records[0].off != 0 || !isSegHeader(sc.payload(sc.records[0]), idx)) {
		// (With no record at all, the scan's damage covers the segment.)
		ss.dmg = append(ss.dmg, SegmentDamage{Segment: idx, Damage: Damage{Records: 1}, Decode: "segment header missing or wrong"})
	}
	return ss
}

// recoverSegment applies the recovery mode to a scanned segment's damage,
// rewrites mirror copies that lack records another holds and cuts a torn
// tail off.
func (a *Archive) recoverSegment(st *State, wdirs []string, ss *segScan, isLast bool) (segInfo, error) {
	rep := &st.Report
	idx := ss.index
	if ss.err != nil {
		return segInfo{index: idx}, fmt.Errorf("archive: segment %d: %w", idx, ss.err)
	}
	info := segInfo{index: idx, maxNow: ss.maxNow}
	sc := ss.sc
	// A whole copy holding every record any copy holds can stand in for
	// the others.
	twin := -1
	if sc.whole >= 0 && (len(sc.records) == 0 || sc.records[len(sc.records)-1].off+sc.records[len(sc.records)-1].size() <= len(sc.copies[sc.whole])) {
		twin = sc.whole
	}
	rewritten := make([]bool, len(sc.copies))
	for i, c := range sc.copies {
		name := filepath.Join(wdirs[i], segName(idx))
		bad := ""
		switch {
		case c == nil:
			bad = "missing"
		case twin >= 0 && !bytes.Equal(c, sc.copies[twin]):
			bad = "damaged or short"
		default:
			continue
		}
		rep.SegmentCopies = append(rep.SegmentCopies, fmt.Sprintf("%s: %s", name, bad))
		if twin >= 0 && !a.opts.ReadOnly {
			if err := writeFileAtomic(a.fs, name, sc.copies[twin]); err != nil {
				return info, fmt.Errorf("archive: rewrite log copy: %w", err)
			}
			rewritten[i] = true
			rep.Repaired = append(rep.Repaired, name)
		}
	}
	dmg := ss.dmg
	rep.Damage = append(rep.Damage, dmg...)
	for _, d := range dmg {
		torn := isLast && d.Tail && d.Decode == ""
		switch {
		case a.opts.Recover == RecoverStrict:
			return info, fmt.Errorf("%w: log %v (recovery mode strict)", ErrCorrupt, d)
		case a.opts.Recover == RecoverTail && !torn:
			return info, fmt.Errorf("%w: log %v in the middle of the log: refusing to start (recovery mode skip would skip it)", ErrCorrupt, d)
		}
	}
	if a.opts.ReadOnly || !isLast {
		return info, nil
	}
	for i, c := range sc.copies {
		if c != nil && !rewritten[i] && int64(len(c)) > sc.ends[i] {
			if err := a.fs.Truncate(filepath.Join(wdirs[i], segName(idx)), sc.ends[i]); err != nil {
				return info, fmt.Errorf("archive: %w", err)
			}
			rep.Truncated = max(rep.Truncated, int64(len(c))-sc.ends[i])
			if err := a.fs.SyncDir(wdirs[i]); err != nil {
				return info, fmt.Errorf("archive: %w", err)
			}
		}
	}
	return info, nil
}

func shardPath(dir string, id uint64, index int) string {
	return filepath.Join(dir, blocksDir, fmt.Sprintf("%016x.%d%s", id, index, shardSuffix))
}

// readBlock reads and rebuilds block id from its shards.
func (a *Archive) readBlock(id uint64) ([]byte, ShardLoss, error) {
	files := make([][]byte, len(a.opts.Dirs))
	for i, d := range a.opts.Dirs {
		b, err := a.fs.ReadFile(shardPath(d, id, i))
		if err == nil {
			files[i] = b
		}
	}
	body, _, loss, err := a.codec.decode(id, files)
	if err != nil {
		var lost []string
		for _, i := range append(loss.Missing, loss.Damaged...) {
			lost = append(lost, a.opts.Dirs[i])
		}
		return nil, loss, fmt.Errorf("%w (unusable shards in %s)", err, strings.Join(lost, ", "))
	}
	if _, err := blockHeaderOf(body); err != nil {
		return nil, loss, fmt.Errorf("block %016x: %w", id, err)
	}
	return body, loss, nil
}

func blockHeaderOf(body []byte) (BlockHeader, error) {
	r, err := newBlockReader(body, true)
	if err != nil {
		return BlockHeader{}, err
	}
	return r.hdr, nil
}

// rewriteShards writes again the shards of a block that were missing or
// damaged.
func (a *Archive) rewriteShards(id uint64, body []byte, loss ShardLoss) error {
	files, err := a.codec.encode(id, body)
	if err != nil {
		return err
	}
	for _, i := range append(slices.Clone(loss.Missing), loss.Damaged...) {
		if err := writeFileAtomic(a.fs, shardPath(a.opts.Dirs[i], id, i), files[i]); err != nil {
			return fmt.Errorf("archive: rebuild shard %d of block %016x: %w", i, id, err)
		}
	}
	return nil
}

// removeOrphans removes shard files of blocks the manifest does not name
// and temporary files (left by a crash between writing and the manifest).
func (a *Archive) removeOrphans() error {
	live := map[uint64]bool{}
	for _, b := range a.man.Blocks {
		live[b.ID] = true
	}
	for _, d := range a.opts.Dirs {
		bd := filepath.Join(d, blocksDir)
		names, err := a.fs.ReadDir(bd)
		if err != nil {
			continue
		}
		removed := false
		for _, n := range names {
			drop := strings.HasSuffix(n, tmpSuffix)
			if base, ok := strings.CutSuffix(n, shardSuffix); ok {
				id, err := strconv.ParseUint(strings.SplitN(base, ".", 2)[0], 16, 64)
				drop = err == nil && !live[id]
			}
			if drop {
				if err := a.fs.Remove(filepath.Join(bd, n)); err != nil && !notExist(err) {
					return fmt.Errorf("archive: %w", err)
				}
				removed = true
			}
		}
		if removed {
			if err := a.fs.SyncDir(bd); err != nil {
				return fmt.Errorf("archive: %w", err)
			}
		}
	}
	return nil
}

// Append logs one entry, stamped now. It returns once the entry is in the
// log's buffer: durable within FlushEvery (see Durable). It fails once
// the log has failed (ErrLogFailed) or closed; then nothing more can be
// logged and the owner must refuse the writes it would have logged.
func (a *Archive) Append(now int64, e *Entry) error {
	if a.wal == nil {
		return ErrClosed
	}
	_, err := a.wal.appendEntry(now, e)
	return err
}

// AppendRaw logs an opaque payload stamped now (benchmarks and tools;
// Open reports such a record as undecodable).
func (a *Archive) AppendRaw(now int64, payload []byte) error {
	if a.wal == nil {
		return ErrClosed
	}
	_, err := a.wal.append(now, payload)
	return err
}

// Sync writes and syncs what was appended and waits for it.
func (a *Archive) Sync() error {
	if a.wal == nil {
		return ErrClosed
	}
	return a.wal.sync()
}

// Durable returns the Now of the newest entry on disk: the durable
// horizon.
func (a *Archive) Durable() int64 {
	if a.wal == nil {
		return 0
	}
	_, now := a.wal.durable()
	return now
}

// Err returns the log's failure, if it failed.
func (a *Archive) Err() error {
	if a.wal == nil {
		return nil
	}
	return a.wal.failure()
}

// AddFinal queues values that became final for the next snapshot (their
// locks and states are not stored: final values are valid). vs itself is
// kept, not copied, as are the values' bytes: neither may change after.
func (a *Archive) AddFinal(vs []netcode.PathValue) {
	if len(vs) == 0 {
		return
	}
	a.mu.Lock()
	a.pending = append(a.pending, vs)
	a.stats.PendingFinal += len(vs)
	a.mu.Unlock()
}

// Snapshot asks for the queued final values to be written as a block in
// the background, with a manifest saying the blocks now hold every final
// value below horizon, meta as the owner's state, and the log records
// stamped before logCut obsolete (their segments are then removed). A
// request made while one is being written is merged into the next.
func (a *Archive) Snapshot(horizon, logCut int64, meta []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.wal == nil {
		return
	}
	if a.req == nil {
		a.req = &snapReq{}
	}
	a.req.values = append(a.req.values, a.pending...)
	a.pending = nil
	a.stats.PendingFinal = 0
	a.req.horizon = max(a.req.horizon, horizon)
	a.req.logCut = max(a.req.logCut, logCut)
	a.req.meta = slices.Clone(meta)
	select {
	case a.snapWake <- struct{}{}:
	default:
	}
}

// WaitSnapshots waits until no snapshot is being written or waiting, and
// returns the last snapshot error (nil if the last succeeded).
func (a *Archive) WaitSnapshots() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.busy || (a.req != nil && !a.closed) {
		a.idle.Wait()
	}
	return a.snapErr
}

func (a *Archive) snapshotLoop() {
	defer close(a.snapDone)
	for range a.snapWake {
		a.mu.Lock()
		req := a.req
		a.req = nil
		if req == nil {
			a.mu.Unlock()
			continue
		}
		a.busy = true
		man := a.man
		man.Blocks = slices.Clone(a.man.Blocks)
		a.mu.Unlock()

		removeBlocks, err := a.writeSnapshot(&man, req)
		if err == nil {
			// The manifest without them is durable: the merged blocks
			// go before the round is over, so WaitSnapshots sees the
			// directories settled.
			a.removeShards(removeBlocks)
		}

		a.mu.Lock()
		a.busy = false
		a.snapErr = err
		if err != nil {
			a.stats.SnapshotErrors++
			a.log.Error("snapshot failed; its values wait for the next", "error", err)
			// Keep the values for the next attempt, in front.
			a.pending = append(req.values, a.pending...)
			a.stats.PendingFinal = 0
			for _, vs := range a.pending {
				a.stats.PendingFinal += len(vs)
			}
		} else {
			a.man = man
			a.stats.Snapshots++
			a.stats.Blocks = len(man.Blocks)
			a.stats.BlockValues = 0
			for _, b := range man.Blocks {
				a.stats.BlockValues += b.Count
			}
		}
		a.idle.Broadcast()
		closed := a.closed
		a.mu.Unlock()
		if closed {
			return
		}
	}
}

// writeSnapshot writes req's block, compacts, writes the manifest and
// removes the obsolete log segments. It returns the blocks to remove.
func (a *Archive) writeSnapshot(man *Manifest, req *snapReq) ([]uint64, error) {
	if vs := blockOrder(req.values); len(vs) > 0 {
		w := newBlockWriter(req.horizon, len(vs)*32)
		for _, v := range vs {
			if err := w.add(v); err != nil {
				return nil, err
			}
		}
		info, err := a.writeBlock(man, w.finish())
		if err != nil {
			return nil, err
		}
		man.Blocks = append(man.Blocks, info)
	}
	removed, err := a.compact(man, req.horizon)
	if err != nil {
		return nil, err
	}
	man.Horizon = max(man.Horizon, req.horizon)
	man.Meta = req.meta
	first := a.wal.obsoleteBefore(req.logCut)
	man.FirstSegment = max(man.FirstSegment, first)
	man.Seq++
	if err := writeManifest(a.fs, a.opts.Dirs, man); err != nil {
		return nil, err
	}
	if err := a.wal.removeBefore(man.FirstSegment); err != nil {
		a.log.Warn("removing obsolete log segments", "error", err)
	}
	return removed, nil
}

// writeBlock writes an encoded block's shards as block man.NextBlock.
func (a *Archive) writeBlock(man *Manifest, body []byte) (BlockInfo, error) {
	id := man.NextBlock
	man.NextBlock++
	files, err := a.codec.encode(id, body)
	if err != nil {
		return BlockInfo{}, err
	}
	for i, f := range files {
		if err := writeFileAtomic(a.fs, shardPath(a.opts.Dirs[i], id, i), f); err != nil {
			return BlockInfo{}, fmt.Errorf("archive: block %016x shard %d: %w", id, i, err)
		}
	}
	h, err := blockHeaderOf(body)
	if err != nil {
		return BlockInfo{}, err
	}
	return BlockInfo{ID: id, Length: uint64(len(body)), Count: h.Count, MinNanos: h.MinNanos, MaxNanos: h.MaxNanos}, nil
}

// sizeClass groups blocks for compaction: a quarter of a power of four.
func sizeClass(b BlockInfo) int { return bits.Len64(b.Length) / 2 }

// compact merges the newest run of CompactFanIn or more blocks of one size
// class into one block, as long as there is such a run, dropping history
// older than KeepHistory before horizon. It returns the merged blocks.
func (a *Archive) compact(man *Manifest, horizon int64) ([]uint64, error) {
	var removed []uint64
	cut := int64(math.MinInt64)
	if a.opts.KeepHistory > 0 && horizon > math.MinInt64+int64(a.opts.KeepHistory) {
		cut = horizon - int64(a.opts.KeepHistory)
	}
	for {
		n := len(man.Blocks)
		if n < a.opts.CompactFanIn {
			return removed, nil
		}
		cls := sizeClass(man.Blocks[n-1])
		j := n - 1
		for j > 0 && sizeClass(man.Blocks[j-1]) == cls {
			j--
		}
		if n-j < a.opts.CompactFanIn {
			return removed, nil
		}
		run := man.Blocks[j:]
		srcs := make([]valueSource, 0, len(run))
		h := int64(math.MinInt64)
		size := 0
		for _, bi := range run {
			body, _, err := a.readBlock(bi.ID)
			if err != nil {
				return nil, fmt.Errorf("archive: compaction: %w", err)
			}
			// The shards' chunk checksums verified the bytes.
			r, err := newBlockReader(body, false)
			if err != nil {
				return nil, fmt.Errorf("archive: compaction: block %016x: %w", bi.ID, err)
			}
			h = max(h, r.hdr.Horizon)
			srcs = append(srcs, &blockSource{r, bi.ID})
			size += len(body)
		}
		w := newBlockWriter(h, size)
		if err := mergeValues(srcs, cut, w.add); err != nil {
			return nil, fmt.Errorf("archive: compaction: %w", err)
		}
		info, err := a.writeBlock(man, w.finish())
		if err != nil {
			return nil, err
		}
		for _, bi := range run {
			removed = append(removed, bi.ID)
		}
		man.Blocks = append(man.Blocks[:j], info)
		a.mu.Lock()
		a.stats.Compactions++
		a.mu.Unlock()
	}
}

// removeShards removes the shard files of merged blocks (after the
// manifest that dropped them is durable).
func (a *Archive) removeShards(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	for i, d := range a.opts.Dirs {
		for _, id := range ids {
			if err := a.fs.Remove(shardPath(d, id, i)); err != nil && !notExist(err) {
				a.log.Warn("removing a compacted block", "error", err)
			}
		}
		if err := a.fs.SyncDir(filepath.Join(d, blocksDir)); err != nil {
			a.log.Warn("removing a compacted block", "error", err)
		}
	}
}

// Stats returns the archive's counters.
func (a *Archive) Stats() Stats {
	a.mu.Lock()
	st := a.stats
	a.mu.Unlock()
	if a.wal != nil {
		st.Log = a.wal.statsNow()
		st.DurableRecords, st.DurableNow = a.wal.durable()
	}
	return st
}

// Manifest returns a copy of the current manifest.
func (a *Archive) Manifest() Manifest {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.man
	m.Blocks = slices.Clone(m.Blocks)
	return m
}

// Close waits for the snapshot being written (a request not yet started
// is written too), flushes and syncs the log, and stops. It returns the
// log's failure, or the last snapshot's error.
func (a *Archive) Close() error {
	if a.wal == nil {
		return nil
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.mu.Unlock()
	snapErr := a.WaitSnapshots()
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	close(a.snapWake)
	<-a.snapDone
	if err := a.wal.close(); err != nil {
		return err
	}
	return snapErr
}

// blockSource is a block being merged; its errors name it.
type blockSource struct {
	*blockReader
	id uint64
}

func (b *blockSource) failure() error {
	if b.err != nil {
		return fmt.Errorf("block %016x: %w", b.id, b.err)
	}
	return nil
}

// blockOrder returns the values of chunks in block order — by path, then
// time —, a value given twice (same path and time) once. Values come from
// the store's finality in time order, so they are grouped by path as they
// come (a map lookup each) and only the paths are sorted; a path whose
// values did not come in time order is sorted on its own.
func blockOrder(chunks [][]netcode.PathValue) []*netcode.PathValue {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	if n == 0 {
		return nil
	}
	type group struct {
		path        string
		first, last int32
	}
	var groups []group
	index := make(map[string]int32)
	flat := make([]*netcode.PathValue, n)
	next := make([]int32, n)
	k := int32(0)
	for _, c := range chunks {
		for i := range c {
			v := &c[i]
			flat[k], next[k] = v, -1
			if g, ok := index[v.Path]; ok {
				next[groups[g].last] = k
				groups[g].last = k
			} else {
				index[v.Path] = int32(len(groups))
				groups = append(groups, group{v.Path, k, k})
			}
			k++
		}
	}
	slices.SortFunc(groups, func(a, b group) int { return strings.Compare(a.path, b.path) })
	out := make([]*netcode.PathValue, 0, n)
	for _, g := range groups {
		start := len(out)
		sorted := true
		for j := g.first; j >= 0; j = next[j] {
			if len(out) > start && !out[len(out)-1].Time.Before(flat[j].Time) {
				sorted = false
			}
			out = append(out, flat[j])
		}
		if sorted {
			continue
		}
		run := out[start:]
		slices.SortStableFunc(run, func(a, b *netcode.PathValue) int { return a.Time.Compare(b.Time) })
		run = slices.CompactFunc(run, func(a, b *netcode.PathValue) bool { return a.Time == b.Time })
		out = out[:start+len(run)]
	}
	return out
}

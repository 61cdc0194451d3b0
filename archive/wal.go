package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"
)

// Errors of the write-ahead log.
var (
	// ErrLogFailed is wrapped by every Append after the log failed to
	// write or sync (a full or failing disk): it refuses new records,
	// and what was durable before stays durable.
	ErrLogFailed = errors.New("archive: log failed")
	// ErrClosed is returned by operations on a closed archive or log.
	ErrClosed = errors.New("archive: closed")
)

// Segment files. A segment is named by its index, zero-padded, and starts
// with a header record whose payload is segMagic ‖ uint64 index.
const (
	walDir     = "wal"
	segSuffix  = ".log"
	segMagic   = "RWNDWAL1"
	segHdrSize = RecordHeader + 16 // the framed header record
)

func segName(index uint64) string { return fmt.Sprintf("%020d%s", index, segSuffix) }

func segHeader(index uint64) []byte {
	p := make([]byte, 16)
	copy(p, segMagic)
	binary.LittleEndian.PutUint64(p[8:], index)
	return AppendRecord(nil, p)
}

// WALStats counts what a log has done.
type WALStats struct {
	Records  uint64 // records appended
	Bytes    uint64 // framed bytes appended
	Flushes  uint64 // group commits (write + fdatasync of every mirror)
	Segments uint64 // segments created
	Removed  uint64 // segments removed as obsolete
	Refused  uint64 // appends refused because the log had failed
	Failures uint64 // write or sync failures (the first one stops the log)
	// SyncNanos sums how long the group commits took (writing every
	// mirror and fdatasync'ing it); Syncs counts them by that time, in
	// the buckets bounded by SyncBounds (the last holds the longer ones).
	SyncNanos int64
	Syncs     [len(SyncBounds) + 1]uint64
}

// SyncBounds are the upper bounds of WALStats.Syncs' buckets: a group
// commit on a local SSD takes tens of microseconds to a few milliseconds,
// on a network volume tens of milliseconds.
var SyncBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// kickBytes: a buffer this full is flushed at once rather than at the
// next tick, so a burst is written in pieces that overlap with appending.
const kickBytes = 4 << 20

// cut marks where, in the append buffer, the records of a new segment
// begin.
type cut struct {
	off   int
	index uint64
}

// segInfo is what the log knows of one segment: the latest Now of its
// records, for deciding when it is obsolete.
type segInfo struct {
	index  uint64
	maxNow int64
}

// wal is the write-ahead log: records appended to a buffer under a lock,
// written and fdatasync'ed to every mirror directory by one flusher
// goroutine every flushEvery (group commit: one sync for everything
// appended since the last).
type wal struct {
	// immutable after construction
	fs         FS
	dirs       []string // the wal directory of every mirror
	segSize    int64
	flushEvery time.Duration
	maxBuf     int
	log        *slog.Logger

	mu       sync.Mutex
	cond     sync.Cond // broadcast when the buffer is taken, durability advances, or the log fails
	buf      []byte    // framed records appended since the flusher last took the buffer
	spare    []byte
	cuts     []cut
	segIndex uint64 // segment the next record goes to
	segBytes int64  // that segment's size, counting what is buffered
	segs     []segInfo
	seq      uint64 // records appended
	lastNow  int64  // Now of the latest record
	err      error  // sticky failure
	closed   bool
	kick     bool
	durSeq   uint64 // records durable
	durNow   int64  // Now of the latest durable record
	stats    WALStats

	// owned by the flusher goroutine
	files     []File
	filesIdx  uint64
	wake      chan struct{}
	done      chan struct{}
	flushDone chan struct{}
}

// openWAL starts a log that appends to new segments after last (the index
// of the newest segment on disk, 0 when none). segs are the segments kept
// from before, oldest first.
func openWAL(fsys FS, dirs []string, segSize int64, flushEvery time.Duration, maxBuf int,
	last uint64, segs []segInfo, durNow int64, log *slog.Logger) *wal {
	w := &wal{
		fs: fsys, dirs: dirs, segSize: segSize, flushEvery: flushEvery, maxBuf: maxBuf, log: log,
		segIndex: last, segBytes: segSize, // the first append starts a new segment
		segs: segs, durNow: durNow, lastNow: durNow,
		wake: make(chan struct{}, 1), done: make(chan struct{}), flushDone: make(chan struct{}),
	}
	w.cond.L = &w.mu
	go w.flushLoop()
	return w
}

// append frames payload (preceded by now, as the record's first 8 bytes)
// into the buffer. It blocks while the buffer holds maxBuf bytes (the
// disk is behind) and fails once the log has failed or closed.
func (w *wal) append(now int64, payload []byte) (uint64, error) {
	return w.appendRecord(now, payload, nil)
}

// appendEntry is append of e's encoding, which it writes straight into
// the buffer (no copy of it is made first).
func (w *wal) appendEntry(now int64, e *Entry) (uint64, error) {
	return w.appendRecord(now, nil, e)
}

// appendRoom is the free room appendRecord keeps in the buffer.
const appendRoom = 4 << 10

// appendRecord appends one record stamped now holding e's encoding, or
// payload when e is nil.
func (w *wal) appendRecord(now int64, payload []byte, e *Entry) (uint64, error) {
	w.mu.Lock()
	for w.err == nil && !w.closed && len(w.buf) >= w.maxBuf {
		w.kickLocked()
		w.cond.Wait()
	}
	if err := w.usableLocked(); err != nil {
		w.mu.Unlock()
		return 0, err
	}
	start := len(w.buf)
	if cap(w.buf)-start < appendRoom {
		// Room for a typical entry, so it is encoded without growing
		// (and copying) the buffer on the way.
		nb := make([]byte, start, 2*cap(w.buf)+appendRoom+len(payload))
		copy(nb, w.buf)
		w.buf = nb
	}
	w.buf = append(w.buf, make([]byte, RecordHeader+8)...)
	binary.LittleEndian.PutUint64(w.buf[start+RecordHeader:], uint64(now))
	if e != nil {
		w.buf = AppendEntry(w.buf, e)
	} else {
		w.buf = append(w.buf, payload...)
	}
	n := len(w.buf) - start - RecordHeader
	if n > MaxRecord {
		w.buf = w.buf[:start]
		w.mu.Unlock()
		return 0, fmt.Errorf("archive: a %d-byte record is over the %d-byte limit", n, MaxRecord)
	}
	for len(w.buf)%RecordAlign != 0 {
		w.buf = append(w.buf, 0)
	}
	sealRecord(w.buf[start:], n)
	size := int64(len(w.buf) - start)
	if w.segBytes+size > w.segSize && w.segBytes > segHdrSize {
		// The record starts the next segment.
		w.segIndex++
		w.segBytes = segHdrSize
		w.cuts = append(w.cuts, cut{start, w.segIndex})
		w.segs = append(w.segs, segInfo{index: w.segIndex, maxNow: now})
	}
	w.segBytes += size
	if s := &w.segs[len(w.segs)-1]; now > s.maxNow {
		s.maxNow = now
	}
	if now > w.lastNow {
		w.lastNow = now
	}
	w.seq++
	w.stats.Records++
	w.stats.Bytes += uint64(size)
	seq := w.seq
	if len(w.buf) >= kickBytes {
		w.kickLocked()
	}
	w.mu.Unlock()
	return seq, nil
}

func (w *wal) usableLocked() error {
	switch {
	case w.err != nil:
		w.stats.Refused++
		return w.err
	case w.closed:
		return ErrClosed
	}
	return nil
}

// kickLocked asks the flusher to flush now rather than at its next tick.
func (w *wal) kickLocked() {
	if !w.kick {
		w.kick = true
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// sync flushes what was appended and waits until it is durable.
func (w *wal) sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	target := w.seq
	for w.durSeq < target && w.err == nil {
		if w.closed && w.flushed() {
			break
		}
		w.kickLocked()
		w.cond.Wait()
	}
	if w.err != nil {
		return w.err
	}
	if w.durSeq < target {
		return ErrClosed
	}
	return nil
}

func (w *wal) flushed() bool {
	select {
	case <-w.flushDone:
		return true
	default:
		return false
	}
}

// durable returns the number of records durable and the Now of the latest.
func (w *wal) durable() (uint64, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durSeq, w.durNow
}

func (w *wal) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *wal) statsNow() WALStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// close flushes what is buffered, stops the flusher and closes the files.
func (w *wal) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.flushDone
		return w.failure()
	}
	w.closed = true
	w.mu.Unlock()
	close(w.done)
	<-w.flushDone
	return w.failure()
}

func (w *wal) flushLoop() {
	defer close(w.flushDone)
	t := time.NewTicker(w.flushEvery)
	defer t.Stop()
	for {
		stop := false
		select {
		case <-t.C:
		case <-w.wake:
		case <-w.done:
			stop = true
		}
		w.flushOnce()
		if stop {
			for _, f := range w.files {
				f.Close()
			}
			w.files = nil
			w.mu.Lock()
			w.cond.Broadcast()
			w.mu.Unlock()
			return
		}
	}
}

// flushOnce takes the buffer, writes it to every mirror and syncs them.
func (w *wal) flushOnce() {
	w.mu.Lock()
	w.kick = false
	if w.err != nil || (len(w.buf) == 0 && len(w.cuts) == 0) {
		w.mu.Unlock()
		return
	}
	buf, cuts, seq, now := w.buf, w.cuts, w.seq, w.lastNow
	w.buf, w.spare = w.spare[:0], nil
	w.cuts = nil
	w.cond.Broadcast() // room in the buffer
	w.mu.Unlock()

	start := time.Now()
	err := w.writeOut(buf, cuts)
	took := time.Since(start)

	w.mu.Lock()
	if err != nil {
		w.err = fmt.Errorf("%w: %w", ErrLogFailed, err)
		w.stats.Failures++
		w.log.Error("write-ahead log failed: refusing new records", "error", err)
	} else {
		w.durSeq, w.durNow = seq, now
		w.stats.Flushes++
		w.stats.SyncNanos += int64(took)
		i := 0
		for i < len(SyncBounds) && took > SyncBounds[i] {
			i++
		}
		w.stats.Syncs[i]++
	}
	if w.spare == nil {
		w.spare = buf[:0]
	}
	w.cond.Broadcast()
	w.mu.Unlock()
}

// writeOut writes buf (whose segments begin at cuts) to every mirror and
// syncs. A new segment is created in every mirror, with its header, and
// the directories are synced before records go into it; the segment it
// follows is synced first.
func (w *wal) writeOut(buf []byte, cuts []cut) error {
	pos := 0
	for i := 0; i <= len(cuts); i++ {
		end := len(buf)
		if i < len(cuts) {
			end = cuts[i].off
		}
		if end > pos {
			if len(w.files) == 0 {
				return fmt.Errorf("archive: records before any segment")
			}
			for _, f := range w.files {
				if err := writeAll(f, buf[pos:end]); err != nil {
					return err
				}
			}
			pos = end
		}
		if i < len(cuts) {
			if err := w.newSegment(cuts[i].index); err != nil {
				return err
			}
		}
	}
	for _, f := range w.files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// newSegment syncs and closes the current segment's files and creates the
// next in every mirror.
func (w *wal) newSegment(index uint64) error {
	for _, f := range w.files {
		if err := f.Sync(); err != nil {
			return err
		}
		f.Close()
	}
	w.files = w.files[:0]
	hdr := segHeader(index)
	for _, d := range w.dirs {
		f, err := w.fs.Create(filepath.Join(d, segName(index)))
		if err != nil {
			return err
		}
		w.files = append(w.files, f)
		if err := writeAll(f, hdr); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := w.fs.SyncDir(d); err != nil {
			return err
		}
	}
	w.filesIdx = index
	w.mu.Lock()
	w.stats.Segments++
	w.mu.Unlock()
	return nil
}

func writeAll(f File, p []byte) error {
	n, err := f.Write(p)
	if err == nil && n < len(p) {
		err = fmt.Errorf("archive: short write (%d of %d bytes)", n, len(p))
	}
	return err
}

// obsoleteBefore returns the index of the first segment that holds a
// record with Now at or after cutNow (or the segment being written):
// every segment before it is obsolete.
func (w *wal) obsoleteBefore(cutNow int64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, s := range w.segs {
		if s.maxNow >= cutNow || i == len(w.segs)-1 {
			return s.index
		}
	}
	return w.segIndex + 1
}

// removeBefore deletes the segments whose index is below first from every
// mirror and syncs the directories.
func (w *wal) removeBefore(first uint64) error {
	w.mu.Lock()
	var drop []uint64
	k := 0
	for k < len(w.segs) && w.segs[k].index < first {
		drop = append(drop, w.segs[k].index)
		k++
	}
	w.segs = w.segs[k:]
	w.mu.Unlock()
	if len(drop) == 0 {
		return nil
	}
	for _, d := range w.dirs {
		for _, idx := range drop {
			if err := w.fs.Remove(filepath.Join(d, segName(idx))); err != nil && !notExist(err) {
				return err
			}
		}
		if err := w.fs.SyncDir(d); err != nil {
			return err
		}
	}
	w.mu.Lock()
	w.stats.Removed += uint64(len(drop))
	w.mu.Unlock()
	return nil
}

package archive

import (
	"fmt"
	"path/filepath"
)

// Repair rewrites an archive (closed, not in use) so that it reads clean:
// every log segment with damage is rewritten in every mirror from the
// records that verify (and decode), in order, so the damage is gone and
// later opens need no skip mode; then the archive is opened in skip mode,
// which rebuilds missing or damaged shards and log copies and rewrites
// every manifest copy. What was unreadable stays lost: the report of the
// first read says what that was. It returns that report.
func Repair(opts Options) (*Report, error) {
	opts.ReadOnly = true
	opts.Recover = RecoverSkip
	a, err := Open(opts)
	if err != nil {
		return nil, err
	}
	before := a.Recovered().Report
	fsys := a.fs
	wdirs := a.walDirs()
	a.Close()

	damaged := map[uint64]bool{}
	for _, d := range before.Damage {
		damaged[d.Segment] = true
	}
	for idx := range damaged {
		sc, err := scanSegment(fsys, wdirs, idx)
		if err != nil {
			return &before, fmt.Errorf("archive: repair segment %d: %w", idx, err)
		}
		if sc == nil {
			continue
		}
		out := segHeader(idx)
		for _, r := range sc.records {
			p := sc.payload(r)
			if r.off == 0 && isSegHeader(p, idx) {
				continue
			}
			if len(p) < 8 {
				continue
			}
			if _, err := DecodeEntry(p[8:]); err != nil {
				continue
			}
			out = AppendRecord(out, p)
		}
		for _, d := range wdirs {
			if err := fsys.MkdirAll(d); err != nil {
				return &before, err
			}
			if err := writeFileAtomic(fsys, filepath.Join(d, segName(idx)), out); err != nil {
				return &before, fmt.Errorf("archive: repair segment %d: %w", idx, err)
			}
		}
		before.Repaired = append(before.Repaired, fmt.Sprintf("log segment %d rewritten without its damage", idx))
	}
	opts.ReadOnly = false
	b, err := Open(opts)
	if err != nil {
		return &before, err
	}
	before.Repaired = append(before.Repaired, b.Recovered().Report.Repaired...)
	return &before, b.Close()
}

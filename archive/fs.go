package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// FS is the file I/O the archive does, so tests can inject faults (a
// failing fsync, a short write, a full disk) without a real disk failing.
// OSFS is the real one. Names are slash-separated paths as given to
// Options.Dirs joined with the archive's own names.
type FS interface {
	// Create creates (or truncates) a file for writing.
	Create(name string) (File, error)
	// OpenAppend opens an existing file for appending.
	OpenAppend(name string) (File, error)
	ReadFile(name string) ([]byte, error)
	// ReadDir lists the names in a directory, sorted; a missing
	// directory is an error wrapping fs.ErrNotExist.
	ReadDir(name string) ([]string, error)
	Rename(from, to string) error
	Remove(name string) error
	MkdirAll(name string) error
	// SyncDir makes the directory's entries (creations, renames,
	// removals) durable.
	SyncDir(name string) error
	Truncate(name string, size int64) error
}

// File is a file open for writing.
type File interface {
	Write(p []byte) (int, error)
	// Sync makes what was written durable (fdatasync on Linux).
	Sync() error
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

type osFile struct{ f *os.File }

func (f osFile) Write(p []byte) (int, error) { return f.f.Write(p) }
func (f osFile) Close() error                { return f.f.Close() }
func (f osFile) Sync() error                 { return fdatasync(f.f) }

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OSFS) OpenAppend(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (OSFS) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = e.Name()
	}
	return out, nil
}

func (OSFS) Rename(from, to string) error { return os.Rename(from, to) }
func (OSFS) Remove(name string) error     { return os.Remove(name) }
func (OSFS) MkdirAll(name string) error   { return os.MkdirAll(name, 0o755) }

func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", name, err)
	}
	return nil
}

func (OSFS) Truncate(name string, size int64) error { return os.Truncate(name, size) }

// Fault is an I/O fault a FaultFS injects.
type Fault uint8

const (
	// FaultSync makes Sync (and SyncDir) fail with an I/O error.
	FaultSync Fault = iota + 1
	// FaultShortWrite makes Write write half of what it is given and
	// fail.
	FaultShortWrite
	// FaultDiskFull makes Write write nothing and fail with ENOSPC, and
	// Create fail the same way.
	FaultDiskFull
)

// FaultFS wraps an FS and injects faults into the files whose names match
// a pattern (filepath.Match on the base name, "" for every file), from
// the moment Set is called until Clear. It counts the faults it injected.
// Safe for concurrent use.
type FaultFS struct {
	FS FS

	mu      sync.Mutex
	fault   Fault
	pattern string
	hits    int
}

// Set starts injecting f into files matching pattern.
func (ffs *FaultFS) Set(f Fault, pattern string) {
	ffs.mu.Lock()
	ffs.fault, ffs.pattern = f, pattern
	ffs.mu.Unlock()
}

// Clear stops injecting faults.
func (ffs *FaultFS) Clear() { ffs.Set(0, "") }

// Hits returns how many faults were injected.
func (ffs *FaultFS) Hits() int {
	ffs.mu.Lock()
	defer ffs.mu.Unlock()
	return ffs.hits
}

// active reports whether f is to be injected for name, counting it.
func (ffs *FaultFS) active(name string, fs ...Fault) bool {
	ffs.mu.Lock()
	defer ffs.mu.Unlock()
	if ffs.fault == 0 || !slices.Contains(fs, ffs.fault) {
		return false
	}
	if ffs.pattern != "" {
		if ok, _ := filepath.Match(ffs.pattern, filepath.Base(name)); !ok {
			return false
		}
	}
	ffs.hits++
	return true
}

func (ffs *FaultFS) current() Fault {
	ffs.mu.Lock()
	defer ffs.mu.Unlock()
	return ffs.fault
}

// ErrInjected is the cause of every fault FaultFS injects, besides ENOSPC.
var ErrInjected = errors.New("injected I/O error")

type faultFile struct {
	ffs  *FaultFS
	name string
	f    File
}

func (f faultFile) Write(p []byte) (int, error) {
	if f.ffs.active(f.name, FaultShortWrite, FaultDiskFull) {
		if f.ffs.current() == FaultDiskFull {
			return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
		n, _ := f.f.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: f.name, Err: ErrInjected}
	}
	return f.f.Write(p)
}

func (f faultFile) Sync() error {
	if f.ffs.active(f.name, FaultSync) {
		return &os.PathError{Op: "fdatasync", Path: f.name, Err: ErrInjected}
	}
	return f.f.Sync()
}

func (f faultFile) Close() error { return f.f.Close() }

func (ffs *FaultFS) Create(name string) (File, error) {
	if ffs.active(name, FaultDiskFull) {
		return nil, &os.PathError{Op: "create", Path: name, Err: syscall.ENOSPC}
	}
	f, err := ffs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return faultFile{ffs, name, f}, nil
}

func (ffs *FaultFS) OpenAppend(name string) (File, error) {
	f, err := ffs.FS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return faultFile{ffs, name, f}, nil
}

func (ffs *FaultFS) ReadFile(name string) ([]byte, error)  { return ffs.FS.ReadFile(name) }
func (ffs *FaultFS) ReadDir(name string) ([]string, error) { return ffs.FS.ReadDir(name) }
func (ffs *FaultFS) Rename(from, to string) error          { return ffs.FS.Rename(from, to) }
func (ffs *FaultFS) Remove(name string) error              { return ffs.FS.Remove(name) }
func (ffs *FaultFS) MkdirAll(name string) error            { return ffs.FS.MkdirAll(name) }
func (ffs *FaultFS) Truncate(name string, size int64) error {
	return ffs.FS.Truncate(name, size)
}

func (ffs *FaultFS) SyncDir(name string) error {
	if ffs.active(name, FaultSync) {
		return &os.PathError{Op: "sync", Path: name, Err: ErrInjected}
	}
	return ffs.FS.SyncDir(name)
}

// notExist reports whether err says a file is missing.
func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

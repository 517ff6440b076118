package file

import (
	"io"
	"os"
)

// FS is the part of a file system the storage uses. It exists for fault
// injection: tests wrap OSFS to fail writes after N bytes, return ENOSPC,
// or fail fsync. Paths are the storage directory joined with a file name.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	MkdirAll(path string, perm os.FileMode) error
	ReadDir(name string) ([]os.DirEntry, error)
}

// File is an open file. The storage uses positioned reads and writes
// only, so one handle serves both. Sync on a directory opened read-only
// must make its entries (creates, renames, removes) durable.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Truncate(size int64) error
	Sync() error
	Stat() (os.FileInfo, error)
}

// OSFS is the operating system's file system.
type OSFS struct{}

// OpenFile implements FS with os.OpenFile.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // a nil *os.File must not become a non-nil File
	}
	return f, nil
}

// Remove implements FS with os.Remove.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS with os.Rename.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// MkdirAll implements FS with os.MkdirAll.
func (OSFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

// ReadDir implements FS with os.ReadDir.
func (OSFS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }

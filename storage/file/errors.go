package file

import (
	"errors"
	"strconv"
)

// Errors returned by this package. Each is a sentinel usable with
// errors.Is; the returned error's text says which directory or file.
var (
	// ErrCorrupt: stored data fails validation somewhere a crash cannot
	// explain (see CorruptError). Open refuses the directory rather than
	// drop data that may have been acknowledged.
	ErrCorrupt = errors.New("storage/file: corrupt")
	// ErrWrongCluster: the directory belongs to another cluster.
	ErrWrongCluster = errors.New("storage/file: directory belongs to another cluster")
	// ErrWrongNode: the directory belongs to another node of the cluster.
	ErrWrongNode = errors.New("storage/file: directory belongs to another node")
	// ErrVersion: the directory was written by an unknown format version.
	ErrVersion = errors.New("storage/file: unsupported format version")
	// ErrNotStorageDir: the directory holds files but no META file, and
	// they are not the leftovers of an interrupted initialisation.
	ErrNotStorageDir = errors.New("storage/file: not a storage directory")
	// ErrFailed: an earlier write, truncate or fsync failed. The storage
	// refuses every later call (the node stops); reopening recovers the
	// durable state.
	ErrFailed = errors.New("storage/file: failed after an I/O error")
	// ErrInvalidEntries: Append was given entries that do not form a valid
	// log suffix (indexes not contiguous, terms decreasing, unknown type,
	// or a record over MaxRecordBytes). Nothing was written.
	ErrInvalidEntries = errors.New("storage/file: invalid entries")
	// ErrOptions: Open was given invalid Options.
	ErrOptions = errors.New("storage/file: invalid options")
)

// CorruptError reports damage that recovery must not repair silently: a
// bad record followed by valid ones, a bad record in a segment that is not
// the last, a missing segment, a damaged metadata file. errors.Is(err,
// ErrCorrupt) holds for it, and errors.Is/As also see Err.
type CorruptError struct {
	// File is the damaged file's path.
	File string
	// Offset is the byte offset of the damage within File (-1: the whole
	// file, e.g. missing or unreadable).
	Offset int64
	// Err says what is wrong.
	Err error
}

func (e *CorruptError) Error() string {
	at := ""
	if e.Offset >= 0 {
		at = " at offset " + strconv.FormatInt(e.Offset, 10)
	}
	return "storage/file: corrupt: " + e.File + at + ": " + e.Err.Error()
}

// Unwrap exposes both ErrCorrupt and the specific cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

func corrupt(file string, off int64, why string) error {
	return &CorruptError{File: file, Offset: off, Err: errors.New(why)}
}

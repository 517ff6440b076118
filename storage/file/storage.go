package file

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/wire"
)

// Defaults for Options fields left at zero.
const (
	DefaultSegmentBytes = 4 << 20
	DefaultMaxEntries   = 1 << 20
	DefaultCacheBytes   = 1 << 20
	// MinSegmentBytes is the smallest SegmentBytes accepted.
	MinSegmentBytes = 1 << 10
	// flushBytes is how much encoded data Append buffers before it writes
	// (no fsync) to the segment file, bounding the write buffer.
	flushBytes = 64 << 10
)

// Options configures Open.
type Options struct {
	// ClusterID and NodeID are recorded when the directory is created and
	// checked on every later Open (ErrWrongCluster, ErrWrongNode).
	ClusterID wire.ClusterID
	NodeID    raft.NodeID
	// SegmentBytes is the size at which the log moves to a new segment
	// file. A segment may exceed it by the entries of one Sync.
	SegmentBytes int
	// MaxEntries bounds the stored log (and so the in-memory index, 24
	// bytes per entry); Append beyond it fails with storage.ErrFull.
	MaxEntries int
	// CacheBytes bounds the cache of recently appended entries (payload
	// plus 48 bytes per entry) that serves Entries without reading files.
	// Negative disables the cache.
	CacheBytes int
	// FS is the file system (default OSFS); tests inject faults through it.
	FS FS
	// Logger receives recovery and failure events; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.NodeID == raft.None {
		return o, fmt.Errorf("%w: NodeID must not be 0", ErrOptions)
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes < MinSegmentBytes {
		return o, fmt.Errorf("%w: SegmentBytes %d is below %d", ErrOptions, o.SegmentBytes, MinSegmentBytes)
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// slot is the in-memory index entry of one log entry: 24 bytes. Terms
// answer from memory; data is read from the segment at off.
type slot struct {
	term    raft.Term
	off     int64  // offset of the frame in its segment
	seg     uint32 // segment id (see segment.id)
	dataLen uint32 // len(Entry.Data), for Entries' maxBytes without I/O
}

// segment is one open segment file. ids are consecutive across s.segs.
type segment struct {
	id    uint32
	first raft.Index // index of its first record (from name and header)
	path  string
	f     File
	size  int64 // bytes in the file (the active segment's buffer excluded)
}

// Storage is a durable storage.Storage in one directory. Like every
// storage, it is used by one goroutine (the node's) and is not safe for
// concurrent use.
type Storage struct {
	dir  string
	opts Options
	fs   FS
	log  *slog.Logger
	id   identity

	hs  raft.HardState // as last set
	hsf hardStateFile

	ci   raft.Index // compaction point: the entry before the first stored
	ct   raft.Term  // its term (from LOGSTART, or SNAPSHOT when it is ahead)
	idx  []slot     // idx[k] describes entry ci+1+k
	segs []*segment // in index order; the last is active (appended to)

	snap  raft.SnapshotMeta // the stored snapshot (SNAPSHOT); empty: none
	snapf File              // SNAPSHOT, open for ReadSnapshot
	snapd int64             // offset of the data in SNAPSHOT (after header and configuration)
	in    incoming          // the snapshot arriving from the leader

	wbuf      []byte // frames appended but not yet written to the active segment
	dirty     bool   // the active segment has writes not yet fsynced
	truncated bool   // the active segment was truncated and not yet fsynced
	dirDirty  bool   // directory entries changed and not yet fsynced
	cache     tailCache
	rec       Recovery
	stats     Stats
	err       error // sticky failure (ErrFailed)
	closed    bool
}

var _ storage.Storage = (*Storage)(nil)

// Stats counts the storage's I/O since Open.
type Stats struct {
	Syncs        uint64 // Sync calls
	Fsyncs       uint64 // fsync calls on files and the directory
	BytesWritten uint64 // bytes written to segment files
	Segments     int    // segment files now
}

// Recovery describes what Open found and repaired.
type Recovery struct {
	Segments        int    // segment files validated
	Entries         int    // entries in the log after recovery
	TornFile        string // segment whose torn tail was cut, if any
	TornBytes       int64  // bytes cut from it
	RemovedFiles    int    // temp files, torn new segments, compacted or discarded segments
	TermRaisedToLog bool   // hard state term was behind the log's (see Open)
	// Snapshot is the stored snapshot found (empty: none).
	Snapshot raft.SnapshotMeta
	// LogDiscarded: the log did not reach the snapshot (an InstallSnapshot
	// interrupted after its rename) and was discarded; it restarts after
	// Snapshot.Index.
	LogDiscarded bool
}

// Stats returns I/O counters.
func (s *Storage) Stats() Stats {
	st := s.stats
	st.Segments = len(s.segs)
	return st
}

// Recovery returns what Open found and repaired.
func (s *Storage) Recovery() Recovery { return s.rec }

// Dir returns the storage directory.
func (s *Storage) Dir() string { return s.dir }

func (s *Storage) path(name string) string { return filepath.Join(s.dir, name) }

// usable returns the error every call fails with once the storage is
// closed or failed.
func (s *Storage) usable() error {
	if s.closed {
		return storage.ErrClosed
	}
	return s.err
}

// fail makes the storage failed: an I/O error leaves the files in a state
// only recovery may interpret (a partial write, an fsync whose outcome is
// unknown), so nothing more is written and every later call returns err.
func (s *Storage) fail(op, file string, err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s %s: %w", ErrFailed, op, file, err)
		s.log.Error("storage failed", "err", s.err)
	}
	return s.err
}

func (s *Storage) lastIndex() raft.Index { return s.ci + raft.Index(len(s.idx)) }

func (s *Storage) active() *segment { return s.segs[len(s.segs)-1] }

// segByID returns the open segment with id.
func (s *Storage) segByID(id uint32) *segment { return s.segs[id-s.segs[0].id] }

// InitialState implements raft.Storage.
func (s *Storage) InitialState() (raft.HardState, error) {
	if err := s.usable(); err != nil {
		return raft.HardState{}, err
	}
	return s.hs, nil
}

// FirstIndex implements raft.Storage.
func (s *Storage) FirstIndex() (raft.Index, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	return s.ci + 1, nil
}

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (raft.Index, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	return s.lastIndex(), nil
}

// Term implements raft.Storage, from memory.
func (s *Storage) Term(i raft.Index) (raft.Term, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	switch {
	case i < s.ci:
		return 0, raft.ErrCompacted
	case i > s.lastIndex():
		return 0, raft.ErrUnavailable
	case i == s.ci:
		return s.ct, nil
	}
	return s.idx[i-s.ci-1].term, nil
}

// SetHardState implements storage.Storage. The state is written by the
// next Sync (or Close), after the entries it may refer to are durable.
func (s *Storage) SetHardState(hs raft.HardState) error {
	if err := s.usable(); err != nil {
		return err
	}
	s.hs = hs
	return nil
}

// syncDir makes directory entries durable (creates, renames, removes).
func (s *Storage) syncDir() error {
	d, err := s.fs.OpenFile(s.dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	s.stats.Fsyncs++
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

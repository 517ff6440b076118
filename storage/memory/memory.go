// Package memory is an in-memory storage.Storage: nothing survives the
// process, Sync is free. It backs tests, the simulator and the demo.
package memory

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// Defaults for Options fields left at zero.
const (
	// DefaultMaxEntries bounds the log held in memory.
	DefaultMaxEntries = 1 << 20
	// DefaultMaxSnapshotBytes bounds an incoming snapshot.
	DefaultMaxSnapshotBytes = 64 << 20
)

// ErrSnapshotTooLarge: an incoming snapshot announces more than
// Options.MaxSnapshotBytes. The error also matches raft.ErrSnapshotMismatch,
// so a caller that treats every refused snapshot alike needs no new case.
var ErrSnapshotTooLarge = errors.New("storage/memory: incoming snapshot exceeds MaxSnapshotBytes")

// Options configures a Storage.
type Options struct {
	// MaxEntries bounds the entries stored at once (those after the
	// compaction point); Append beyond it fails with storage.ErrFull.
	// Compact frees room, so a node that snapshots and compacts never
	// reaches it.
	MaxEntries int
	// MaxSnapshotBytes bounds the size an incoming snapshot may announce:
	// the whole snapshot is buffered in memory, so a leader must not be
	// able to make this node allocate without limit.
	MaxSnapshotBytes uint64
}

// Storage is an in-memory storage.Storage built on raft.MemoryStorage.
type Storage struct {
	*raft.MemoryStorage
	maxEntries int
	maxSnap    uint64
	inConf     raft.ConfState // the Conf the incoming snapshot's first chunk announced
	closed     bool
	syncs      uint64
}

var _ storage.Storage = (*Storage)(nil)

// New returns an empty Storage.
func New(opts Options) *Storage {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxSnapshotBytes == 0 {
		opts.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	return &Storage{MemoryStorage: raft.NewMemoryStorage(), maxEntries: opts.MaxEntries, maxSnap: opts.MaxSnapshotBytes}
}

// Append implements storage.Storage.
func (s *Storage) Append(ents []raft.Entry) error {
	if s.closed {
		return storage.ErrClosed
	}
	if len(ents) == 0 {
		return nil
	}
	first, _ := s.FirstIndex()
	if last := ents[len(ents)-1].Index; last >= first && int(last-first+1) > s.maxEntries {
		return storage.ErrFull
	}
	return s.MemoryStorage.Append(ents)
}

// SetHardState implements storage.Storage.
func (s *Storage) SetHardState(hs raft.HardState) error {
	if s.closed {
		return storage.ErrClosed
	}
	s.MemoryStorage.SetHardState(hs)
	return nil
}

// Sync implements storage.Storage; memory is as durable as it gets.
func (s *Storage) Sync() error {
	if s.closed {
		return storage.ErrClosed
	}
	s.syncs++
	return nil
}

// Syncs returns how many times Sync was called (group-commit accounting).
func (s *Storage) Syncs() uint64 { return s.syncs }

// Close implements storage.Storage.
func (s *Storage) Close() error {
	s.closed = true
	return nil
}

// Reopen makes a closed Storage usable again with its contents intact,
// standing in for a restart of a process whose memory survived (demos).
func (s *Storage) Reopen() { s.closed = false }

// CreateSnapshot implements storage.Storage: write fills a buffer that
// becomes the stored snapshot of meta.Index and meta.Term under meta.Conf
// (raft.MemoryStorage.SaveSnapshot, which keeps a copy of the Conf). An
// error from write leaves the previous snapshot in place.
func (s *Storage) CreateSnapshot(meta raft.SnapshotMeta, write func(io.Writer) error) (raft.SnapshotMeta, error) {
	if s.closed {
		return raft.SnapshotMeta{}, storage.ErrClosed
	}
	if err := checkConf(meta.Conf); err != nil {
		return raft.SnapshotMeta{}, err
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return raft.SnapshotMeta{}, fmt.Errorf("storage/memory: writing snapshot data: %w", err)
	}
	return s.SaveSnapshot(raft.SnapshotMeta{Index: meta.Index, Term: meta.Term, Conf: meta.Conf}, buf.Bytes())
}

// OpenSnapshot implements storage.Storage. The data is the stored buffer
// itself, which memory cannot damage, so the reader does not re-check its
// CRC.
func (s *Storage) OpenSnapshot() (raft.SnapshotMeta, io.ReadCloser, error) {
	if s.closed {
		return raft.SnapshotMeta{}, nil, storage.ErrClosed
	}
	meta, data := s.SnapshotData()
	if meta.IsEmpty() {
		return raft.SnapshotMeta{}, nil, storage.ErrNoSnapshot
	}
	return meta, io.NopCloser(bytes.NewReader(data)), nil
}

// Compact implements storage.Storage: index must not exceed the stored
// snapshot's (raft.ErrUnavailable). The freed entries stop counting
// against MaxEntries.
func (s *Storage) Compact(index raft.Index) error {
	if s.closed {
		return storage.ErrClosed
	}
	return s.MemoryStorage.Compact(index)
}

// WriteSnapshotChunk implements storage.Storage. A snapshot announcing
// more than MaxSnapshotBytes is refused at its first chunk
// (ErrSnapshotTooLarge, which also matches raft.ErrSnapshotMismatch), and
// so is one whose Conf is invalid (raft.ErrInvalidConf, which also matches
// raft.ErrSnapshotMismatch), as storage/file does.
func (s *Storage) WriteSnapshotChunk(c raft.SnapshotChunk) error {
	if s.closed {
		return storage.ErrClosed
	}
	if c.Meta.Size > s.maxSnap {
		return fmt.Errorf("%w: %d bytes announced, bound %d: %w", ErrSnapshotTooLarge, c.Meta.Size, s.maxSnap, raft.ErrSnapshotMismatch)
	}
	if c.Offset == 0 {
		if err := checkConf(c.Meta.Conf); err != nil {
			return fmt.Errorf("%w: %w", raft.ErrSnapshotMismatch, err)
		}
	}
	if err := s.MemoryStorage.WriteSnapshotChunk(c); err != nil {
		return err
	}
	if c.Offset == 0 {
		s.inConf = c.Meta.Conf.Clone()
	}
	return nil
}

// InstallSnapshot implements storage.Storage. As storage/file, it refuses
// a snapshot below the stored one or the commit index (raft.ErrCompacted:
// committed entries would be lost) and one whose Conf is not the one the
// first chunk announced (raft.ErrSnapshotMismatch), and raises the hard
// state's commit index to meta.Index: the snapshot's entries are
// committed. The stored snapshot keeps a copy of meta.Conf.
func (s *Storage) InstallSnapshot(meta raft.SnapshotMeta) error {
	if s.closed {
		return storage.ErrClosed
	}
	hs, _ := s.InitialState()
	if cur, _ := s.Snapshot(); meta.Index < cur.Index || meta.Index < hs.Commit {
		return fmt.Errorf("%w: snapshot at %d is behind the stored snapshot %d or the commit index %d", raft.ErrCompacted, meta.Index, cur.Index, hs.Commit)
	}
	if !meta.Conf.Equal(s.inConf) {
		return fmt.Errorf("%w: snapshot at %d has configuration %+v, its first chunk announced %+v", raft.ErrSnapshotMismatch, meta.Index, meta.Conf, s.inConf)
	}
	if err := s.MemoryStorage.InstallSnapshot(meta); err != nil {
		return err
	}
	s.inConf = raft.ConfState{}
	hs.Commit = meta.Index
	s.MemoryStorage.SetHardState(hs)
	return nil
}

// checkConf refuses a configuration storage/file could not store and read
// back: one that is not the zero ConfState (no configuration) must be
// valid (raft.DecodeConfState accepts its encoding), else
// raft.ErrInvalidConf.
func checkConf(cs raft.ConfState) error {
	if len(cs.Voters) == 0 && len(cs.VotersOutgoing) == 0 && len(cs.Learners) == 0 {
		return nil
	}
	if _, err := raft.DecodeConfState(raft.AppendConfState(nil, cs)); err != nil {
		return fmt.Errorf("storage/memory: snapshot configuration %+v: %w", cs, err)
	}
	return nil
}

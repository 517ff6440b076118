package mcu

import (
	"errors"
	"io"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// ErrSnapshotsUnsupported: FileStore keeps no snapshots. It also matches
// errors.ErrUnsupported. Why: a snapshot is only worth having with log
// compaction, and an installed snapshot restarts the log at a new segment;
// semihosting cannot list a directory to find it, and the firmware's
// restart rebuilds the kv store by replaying the whole log file, which it
// keeps anyway. The firmware disables automatic snapshots with this store.
var ErrSnapshotsUnsupported error = snapshotsUnsupported{}

type snapshotsUnsupported struct{}

func (snapshotsUnsupported) Error() string {
	return "mcu: the semihosting file store keeps no snapshots"
}

func (snapshotsUnsupported) Unwrap() error { return errors.ErrUnsupported }

// Snapshot implements raft.Storage: there is never a snapshot.
func (s *FileStore) Snapshot() (raft.SnapshotMeta, error) {
	return raft.SnapshotMeta{}, s.usable()
}

// ReadSnapshot implements raft.Storage: no snapshot, so any index names
// one that is not (or no longer) stored.
func (s *FileStore) ReadSnapshot(raft.Index, uint64, []byte) (int, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	return 0, raft.ErrSnapshotChanged
}

// CreateSnapshot implements storage.Storage: ErrSnapshotsUnsupported.
func (s *FileStore) CreateSnapshot(raft.SnapshotMeta, func(io.Writer) error) (raft.SnapshotMeta, error) {
	if err := s.usable(); err != nil {
		return raft.SnapshotMeta{}, err
	}
	return raft.SnapshotMeta{}, ErrSnapshotsUnsupported
}

// OpenSnapshot implements storage.Storage: storage.ErrNoSnapshot.
func (s *FileStore) OpenSnapshot() (raft.SnapshotMeta, io.ReadCloser, error) {
	if err := s.usable(); err != nil {
		return raft.SnapshotMeta{}, nil, err
	}
	return raft.SnapshotMeta{}, nil, storage.ErrNoSnapshot
}

// Compact implements storage.Storage. Without a snapshot nothing may be
// compacted beyond what the floor already dropped from RAM (a no-op);
// anything further is raft.ErrUnavailable.
func (s *FileStore) Compact(index raft.Index) error {
	if err := s.usable(); err != nil {
		return err
	}
	if index > s.w.ents[0].Index {
		return raft.ErrUnavailable
	}
	return nil
}

// WriteSnapshotChunk implements storage.Storage: ErrSnapshotsUnsupported
// (no leader has a snapshot to send when no store keeps one).
func (s *FileStore) WriteSnapshotChunk(raft.SnapshotChunk) error {
	if err := s.usable(); err != nil {
		return err
	}
	return ErrSnapshotsUnsupported
}

// InstallSnapshot implements storage.Storage: ErrSnapshotsUnsupported.
func (s *FileStore) InstallSnapshot(raft.SnapshotMeta) error {
	if err := s.usable(); err != nil {
		return err
	}
	return ErrSnapshotsUnsupported
}

// Package storage defines what a node persists: the read side the Raft core
// consumes (raft.Storage) plus the write side the runtime uses while
// handling a Ready. Implementations live in subpackages: memory (tests,
// demos) and, later, file (durable) and flash.
package storage

import (
	"errors"
	"io"

	"github.com/embraft/embraft/raft"
)

// Storage is a node's persistent state. The node's goroutine is its only
// user; implementations need not be safe for concurrent use.
type Storage interface {
	raft.Storage
	// Append stores entries, replacing any stored entries at the same or
	// later indexes (a conflicting suffix is truncated).
	Append(ents []raft.Entry) error
	// SetHardState stores the term, vote and commit index.
	SetHardState(hs raft.HardState) error
	// Sync makes everything written so far durable. The runtime calls it
	// once per Ready that requires it (group commit).
	Sync() error
	// Close releases the storage; later calls fail with ErrClosed.
	Close() error

	// CreateSnapshot stores a snapshot of the state after applying the
	// entries up to meta.Index (whose term is meta.Term), under the
	// configuration meta.Conf: write streams the data. The snapshot (its
	// Conf included) replaces the previous one atomically and durably (a
	// crash leaves one or the other, whole) and is returned with its size
	// and CRC. It does not drop entries; Compact does. A Conf that is not
	// the zero ConfState (no configuration) must be valid
	// (raft.DecodeConfState accepts its encoding), else raft.ErrInvalidConf.
	CreateSnapshot(meta raft.SnapshotMeta, write func(io.Writer) error) (raft.SnapshotMeta, error)
	// OpenSnapshot returns the stored snapshot and a reader of its data,
	// verified against its metadata as it is read (the reader fails with
	// raft.ErrSnapshotMismatch on damage). ErrNoSnapshot if there is none.
	OpenSnapshot() (raft.SnapshotMeta, io.ReadCloser, error)
	// Compact drops the stored entries up to and including index, which
	// must not exceed the stored snapshot's index.
	Compact(index raft.Index) error
	// WriteSnapshotChunk writes a chunk of a snapshot arriving from the
	// leader (raft.Ready.SnapshotChunks) beside the stored snapshot: Offset
	// 0 starts a new incoming snapshot, discarding any earlier partial
	// one, and its c.Meta.Conf is the incoming snapshot's configuration
	// (an invalid one is raft.ErrInvalidConf); later chunks continue it
	// exactly. Chunks need not be durable.
	WriteSnapshotChunk(c raft.SnapshotChunk) error
	// InstallSnapshot makes the incoming snapshot, complete and matching
	// meta (size and CRC, and meta.Conf equal to the Conf of the chunk at
	// offset 0, else raft.ErrSnapshotMismatch), the stored
	// snapshot and discards every stored entry, so that the log restarts
	// after meta.Index; durably (no Sync needed) and so that a crash at
	// any point leaves either the previous state or the new one.
	InstallSnapshot(meta raft.SnapshotMeta) error
}

var (
	// ErrClosed: the storage was closed.
	ErrClosed = errors.New("storage: closed")
	// ErrFull: a configured bound on stored entries was reached. It counts
	// the entries after the compaction point, so a node that snapshots and
	// compacts stays below it; one that does not is stopped by it.
	ErrFull = errors.New("storage: full")
	// ErrNoSnapshot: OpenSnapshot found no snapshot.
	ErrNoSnapshot = errors.New("storage: no snapshot")
)

// Package storage defines what a node persists: the read side the Raft core
// consumes (raft.Storage) plus the write side the runtime uses while
// handling a Ready. Implementations live in subpackages: memory (tests,
// demos) and, later, file (durable) and flash.
package storage

import (
	"errors"

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
}

var (
	// ErrClosed: the storage was closed.
	ErrClosed = errors.New("storage: closed")
	// ErrFull: a configured bound on stored entries was reached. Until
	// log compaction exists (snapshots), this stops the node.
	ErrFull = errors.New("storage: full")
)

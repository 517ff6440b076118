// Package memory is an in-memory storage.Storage: nothing survives the
// process, Sync is free. It backs tests, the simulator and the demo.
package memory

import (
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// DefaultMaxEntries bounds the log held in memory when Options leaves it 0.
const DefaultMaxEntries = 1 << 20

// Options configures a Storage.
type Options struct {
	// MaxEntries bounds the stored log; Append beyond it fails with
	// storage.ErrFull.
	MaxEntries int
}

// Storage is an in-memory storage.Storage built on raft.MemoryStorage.
type Storage struct {
	*raft.MemoryStorage
	maxEntries int
	closed     bool
	syncs      uint64
}

var _ storage.Storage = (*Storage)(nil)

// New returns an empty Storage.
func New(opts Options) *Storage {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	return &Storage{MemoryStorage: raft.NewMemoryStorage(), maxEntries: opts.MaxEntries}
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
	if last := ents[len(ents)-1].Index; int(last-first+1) > s.maxEntries {
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

package mcu

import (
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// MemStore is the firmware's in-memory storage.Storage: a hard state, a
// log window of at most max entries in RAM, and a snapshot (memsnap.go).
// The window is compacted by Compact (after a snapshot) and to the
// cluster's Floor, never past the snapshot (see compactTarget): a window
// that would overflow fails Append with storage.ErrFull, never drops an
// entry a restart needs. It stands for battery-backed RAM: a node "restarted"
// from it (Reopen) finds the state it had, snapshot included, as the
// seed's in-memory configuration did within one run; nothing survives a
// reset of the chip.
type MemStore struct {
	*memState
	closed bool
}

// memState is what survives a Reopen.
type memState struct {
	hs   raft.HardState
	w    window
	snap memSnapshot
	id   raft.NodeID
	prog *Progress
}

var _ storage.Storage = (*MemStore)(nil)

// NewMemStore returns an empty store for node id keeping at most max
// entries (DefaultWindowEntries if max <= 0), compacted to prog's floor
// (nil: never compacted).
func NewMemStore(id raft.NodeID, max int, prog *Progress) *MemStore {
	if max <= 0 {
		max = DefaultWindowEntries
	}
	return &MemStore{memState: &memState{w: newWindow(max, 0, 0, false), id: id, prog: prog}}
}

// Reopen returns a new handle on the same state, as a node restarting
// from battery-backed RAM would find it. The old handle stays closed.
func (s *MemStore) Reopen() *MemStore { return &MemStore{memState: s.memState} }

// InitialState implements raft.Storage.
func (s *MemStore) InitialState() (raft.HardState, error) {
	if s.closed {
		return raft.HardState{}, storage.ErrClosed
	}
	return s.hs, nil
}

// Entries implements raft.Storage.
func (s *MemStore) Entries(lo, hi raft.Index, maxBytes int) ([]raft.Entry, error) {
	if s.closed {
		return nil, storage.ErrClosed
	}
	return s.w.entries(lo, hi, maxBytes)
}

// Term implements raft.Storage.
func (s *MemStore) Term(i raft.Index) (raft.Term, error) {
	if s.closed {
		return 0, storage.ErrClosed
	}
	return s.w.term(i)
}

// FirstIndex implements raft.Storage.
func (s *MemStore) FirstIndex() (raft.Index, error) {
	if s.closed {
		return 0, storage.ErrClosed
	}
	return s.w.first(), nil
}

// LastIndex implements raft.Storage.
func (s *MemStore) LastIndex() (raft.Index, error) {
	if s.closed {
		return 0, storage.ErrClosed
	}
	return s.w.last(), nil
}

// Append implements storage.Storage. It first compacts the window to the
// floor if that is due; storage.ErrFull if the entries still do not fit.
func (s *MemStore) Append(ents []raft.Entry) error {
	if s.closed {
		return storage.ErrClosed
	}
	if len(ents) == 0 {
		return nil
	}
	if err := s.w.check(ents); err != nil {
		return err
	}
	s.w.maybeCompact(s.compactTarget(), len(ents))
	if err := s.w.room(ents[0].Index, len(ents)); err != nil {
		return err
	}
	s.w.put(cloneData(ents), nil)
	s.prog.Stored(s.id, s.w.last())
	return nil
}

// SetHardState implements storage.Storage.
func (s *MemStore) SetHardState(hs raft.HardState) error {
	if s.closed {
		return storage.ErrClosed
	}
	s.hs = hs
	return nil
}

// Sync implements storage.Storage (RAM: nothing to flush). It compacts the
// window when the floor has moved far enough.
func (s *MemStore) Sync() error {
	if s.closed {
		return storage.ErrClosed
	}
	s.w.maybeCompact(s.compactTarget(), 0)
	return nil
}

// Close implements storage.Storage.
func (s *MemStore) Close() error {
	s.closed = true
	return nil
}

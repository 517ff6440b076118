package sim

import (
	"slices"

	"github.com/embraft/embraft/raft"
)

// simStorage is one node's storage: a raft.MemoryStorage that the core
// reads (the OS page cache, so to speak), plus a record of what a crash
// would leave behind. Writes land in the MemoryStorage and in log, a mirror
// of the written entries; Sync makes everything written so far durable by
// remembering log's slice header and the hard state. A crash rebuilds the
// MemoryStorage from the durable state: writes since the last Sync are lost.
//
// log is only ever changed by appending at its end or, to replace a suffix,
// by copying the kept prefix into a fresh array, so the durable slice
// header taken at Sync keeps describing exactly the entries that were
// durable then.
type simStorage struct {
	*raft.MemoryStorage
	log []raft.Entry // log[i] has Index i+1
	// ph[i] is a hash of log[0..i] (a prefix hash), for the incremental
	// Log Matching check; it changes exactly like log.
	ph []uint64
	hs raft.HardState

	durLog []raft.Entry
	durPh  []uint64
	durHS  raft.HardState
	// unsynced counts writes (entry batches or hard states) since the
	// last Sync.
	unsynced int
	syncs    uint64
	// lies: Sync does nothing (a disk that acknowledges writes it loses).
	lies bool
}

func newSimStorage() *simStorage {
	return &simStorage{MemoryStorage: raft.NewMemoryStorage()}
}

// Append stores ents like raft.MemoryStorage.Append and mirrors them.
func (s *simStorage) Append(ents []raft.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	if err := s.MemoryStorage.Append(ents); err != nil {
		return err
	}
	first := int(ents[0].Index)
	if first == len(s.log)+1 {
		s.log = append(s.log, ents...)
	} else {
		kept := s.log[:first-1]
		fresh := make([]raft.Entry, len(kept), len(kept)+len(ents)+64)
		copy(fresh, kept)
		s.log = append(fresh, ents...)
		keptPh := s.ph[:first-1]
		freshPh := make([]uint64, len(keptPh), len(keptPh)+len(ents)+64)
		copy(freshPh, keptPh)
		s.ph = freshPh
	}
	h := uint64(fnvOffset)
	if first > 1 {
		h = s.ph[first-2]
	}
	for i := range ents {
		h = prefixHash(h, &ents[i])
		s.ph = append(s.ph, h)
	}
	s.unsynced++
	return nil
}

// prefixHash extends the hash of a log prefix by entry e.
func prefixHash(h uint64, e *raft.Entry) uint64 {
	h = (h ^ uint64(e.Term)) * fnvPrime
	h = (h ^ uint64(e.Type)) * fnvPrime
	h = (h ^ uint64(len(e.Data))) * fnvPrime
	for _, c := range e.Data {
		h = (h ^ uint64(c)) * fnvPrime
	}
	// Finalize (SplitMix64's mixer) so that similar prefixes spread.
	h ^= h >> 30
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 27
	h *= 0x94D049BB133111EB
	return h ^ h>>31
}

// SetHardState stores hs.
func (s *simStorage) SetHardState(hs raft.HardState) {
	s.MemoryStorage.SetHardState(hs)
	s.hs = hs
	s.unsynced++
}

// Sync makes every write so far durable.
func (s *simStorage) Sync() {
	if s.lies {
		return
	}
	s.durLog = s.log
	s.durPh = s.ph
	s.durHS = s.hs
	s.unsynced = 0
	s.syncs++
}

// crash drops the writes since the last Sync and returns how many writes
// were lost.
func (s *simStorage) crash() int {
	lost := s.unsynced
	s.log = slices.Clip(s.durLog) // the next append copies: durLog stays intact
	s.ph = slices.Clip(s.durPh)
	s.hs = s.durHS
	s.unsynced = 0
	s.MemoryStorage = nil
	return lost
}

// restore rebuilds the MemoryStorage from the durable state, as a process
// restarting on the same disk would find it.
func (s *simStorage) restore() error {
	ms := raft.NewMemoryStorage()
	if err := ms.Append(s.durLog); err != nil {
		return err
	}
	ms.SetHardState(s.durHS)
	s.MemoryStorage = ms
	return nil
}

// lastIndex is the index of the last written entry.
func (s *simStorage) lastIndex() raft.Index { return raft.Index(len(s.log)) }

// entry returns the written entry at index i (1-based), or false.
func (s *simStorage) entry(i raft.Index) (*raft.Entry, bool) {
	if i < 1 || int(i) > len(s.log) {
		return nil, false
	}
	return &s.log[i-1], true
}

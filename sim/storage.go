package sim

import (
	"fmt"
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
// Snapshots follow storage/file's durability: a snapshot the node saves
// (SaveSnapshot) and a snapshot it installs (InstallSnapshot, which also
// discards the log) are durable at once; Compact is durable and, like
// storage/file's (which never records a compaction point beyond its
// durable log), syncs the pending writes first; the chunks of an incoming
// snapshot are not durable, so a crash loses a partial transfer.
//
// log is the checker's memory, not the node's: it keeps every entry from
// index 1, compacted or not (after an install, the committed entries the
// snapshot covers), so that the checkers never read the compacted
// MemoryStorage. It is only ever changed by appending at its end or, to
// replace a suffix or the whole log, by copying into a fresh array, so the
// durable slice header taken at Sync keeps describing exactly the entries
// that were durable then.
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
	// durSnap / durSnapData: the durable snapshot; durCompact: the durable
	// compaction point (entries at or below it are gone from the disk).
	durSnap     raft.SnapshotMeta
	durSnapData []byte
	durCompact  raft.Index
	// inActive: the MemoryStorage holds a partial incoming snapshot (chunks
	// written, not installed); not durable.
	inActive bool
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

// crash drops the writes since the last Sync and the partial incoming
// snapshot; it returns how many writes were lost and whether a partial
// snapshot was.
func (s *simStorage) crash() (lost int, partial bool) {
	lost, partial = s.unsynced, s.inActive
	s.log = slices.Clip(s.durLog) // the next append copies: durLog stays intact
	s.ph = slices.Clip(s.durPh)
	s.hs = s.durHS
	s.unsynced = 0
	s.inActive = false
	s.MemoryStorage = nil
	return lost, partial
}

// How restore rebuilt the log around the durable snapshot.
const (
	rebuiltNoSnapshot = iota // no snapshot: the durable log from index 1
	rebuiltKeptLog           // the durable log holds the snapshot's entry: its entries after it are kept
	rebuiltAfterSnap         // it does not: the log is discarded and restarts after the snapshot
)

// restore rebuilds the MemoryStorage from the durable state, as a process
// restarting on the same disk would find it, and as storage/file's
// recovery does: the durable snapshot, whose index becomes the compaction
// point, then the durable entries after it if the durable log holds the
// snapshot's last entry with the snapshot's term, otherwise none (the log
// restarts after the snapshot: an install interrupted before it discarded
// the old log; the caller must then replace the mirror with replaceLog).
// The commit index is raised to the snapshot's index.
func (s *simStorage) restore() (how int, termRaised bool, err error) {
	ms := raft.NewMemoryStorage()
	snap := s.durSnap
	how = rebuiltNoSnapshot
	if snap.IsEmpty() {
		if err := ms.Append(s.durLog); err != nil {
			return 0, false, err
		}
	} else {
		if err := installInto(ms, snap, s.durSnapData); err != nil {
			return 0, false, err
		}
		how = rebuiltAfterSnap
		if e, ok := entryOf(s.durLog, snap.Index); ok && e.Term == snap.Term {
			how = rebuiltKeptLog
			if err := ms.Append(s.durLog[snap.Index:]); err != nil {
				return 0, false, err
			}
		}
		s.durCompact = snap.Index
		s.durHS.Commit = max(s.durHS.Commit, snap.Index)
	}
	// A snapshot is durable at once, the hard state only at the Ready's
	// sync: a crash right after installing the snapshot of a newer term
	// leaves a hard state whose term is behind the log's. As storage/file
	// does, the term is raised with no vote (none was acknowledged in it):
	// the core requires term >= last log term.
	raised := false
	if last, _ := ms.LastIndex(); last > 0 {
		if lt, _ := ms.Term(last); lt > s.durHS.Term {
			s.durHS = raft.HardState{Term: lt, Commit: s.durHS.Commit}
			raised = true
		}
	}
	s.hs = s.durHS
	ms.SetHardState(s.durHS)
	s.MemoryStorage = ms
	return how, raised, nil
}

// installInto installs data as meta's snapshot into a fresh MemoryStorage.
func installInto(ms *raft.MemoryStorage, meta raft.SnapshotMeta, data []byte) error {
	if meta.Size != uint64(len(data)) || meta.CRC != raft.SnapshotCRC(data) {
		return fmt.Errorf("durable snapshot data does not match %+v", meta)
	}
	if err := ms.WriteSnapshotChunk(raft.SnapshotChunk{Meta: meta, Data: data}); err != nil {
		return err
	}
	return ms.InstallSnapshot(meta)
}

// SaveSnapshot stores data as the snapshot of the state up to at.Index
// (configuration at.Conf), like raft.MemoryStorage.SaveSnapshot; durably
// at once.
func (s *simStorage) SaveSnapshot(at raft.SnapshotMeta, data []byte) (raft.SnapshotMeta, error) {
	meta, err := s.MemoryStorage.SaveSnapshot(at, data)
	if err != nil {
		return meta, err
	}
	s.durSnap, s.durSnapData = meta, data
	return meta, nil
}

// Compact drops the entries up to index, durably; like storage/file it
// first syncs the pending writes. It reports whether entries were dropped.
func (s *simStorage) Compact(index raft.Index) (bool, error) {
	if s.unsynced > 0 {
		s.Sync()
	}
	before, _ := s.MemoryStorage.FirstIndex()
	if err := s.MemoryStorage.Compact(index); err != nil {
		return false, err
	}
	after, _ := s.MemoryStorage.FirstIndex()
	s.durCompact = max(s.durCompact, after-1)
	return after > before, nil
}

// WriteSnapshotChunk writes a chunk of an incoming snapshot (not durable).
func (s *simStorage) WriteSnapshotChunk(c raft.SnapshotChunk) error {
	if err := s.MemoryStorage.WriteSnapshotChunk(c); err != nil {
		return err
	}
	s.inActive = true
	return nil
}

// InstallSnapshot installs the complete incoming snapshot and discards
// the log, durably at once. The caller replaces the mirror (replaceLog):
// the node's log is now the committed prefix the snapshot covers. torn
// stops the durable part half-way, where storage/file's InstallSnapshot
// has made the snapshot durable but not yet removed the old log: the
// caller crashes the node at once.
func (s *simStorage) InstallSnapshot(meta raft.SnapshotMeta, torn bool) error {
	if err := s.MemoryStorage.InstallSnapshot(meta); err != nil {
		return err
	}
	_, data := s.MemoryStorage.SnapshotData()
	s.durSnap, s.durSnapData = meta, data
	s.inActive = false
	if !torn {
		s.durCompact = meta.Index
	}
	return nil
}

// replaceLog replaces the mirror, durably, by ents (from index 1) and their
// prefix hashes: the committed prefix a snapshot covers, after an install
// or a restart whose log restarted after the snapshot.
func (s *simStorage) replaceLog(ents []raft.Entry, ph []uint64) {
	s.log = slices.Clip(ents)
	s.ph = slices.Clip(ph)
	s.durLog, s.durPh = s.log, s.ph
}

// storedLen is the number of entries the MemoryStorage holds, and the
// index before its first one.
func (s *simStorage) storedLen() (int, raft.Index) {
	first, _ := s.MemoryStorage.FirstIndex()
	last, _ := s.MemoryStorage.LastIndex()
	return int(last + 1 - first), first - 1
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

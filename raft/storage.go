package raft

// Storage is the core's read-only view of what the caller has persisted.
// The caller writes it (append entries, set hard state) while handling a
// Ready; the core only reads. Implementations must return ErrCompacted or
// ErrUnavailable for indexes outside [FirstIndex()-1, LastIndex()].
type Storage interface {
	// InitialState returns the HardState saved last.
	InitialState() (HardState, error)
	// Entries returns entries [lo, hi), stopping early once their payload
	// exceeds maxBytes, but always returning at least one entry if lo < hi.
	// The returned slice must stay unmodified while the core holds it:
	// implementations overwrite entries only by copying into a new array.
	Entries(lo, hi Index, maxBytes int) ([]Entry, error)
	// Term returns the term of entry i, for i in [FirstIndex()-1, LastIndex()].
	Term(i Index) (Term, error)
	// FirstIndex returns the index of the first entry still stored.
	FirstIndex() (Index, error)
	// LastIndex returns the index of the last entry stored.
	LastIndex() (Index, error)
	// Snapshot returns the metadata of the newest stored snapshot, or an
	// empty SnapshotMeta if there is none. Its Index is at least
	// FirstIndex()-1: storage never drops entries a snapshot does not cover.
	Snapshot() (SnapshotMeta, error)
	// ReadSnapshot copies the data of the stored snapshot whose Index is
	// index, from byte off, into p, returning the bytes copied (fewer than
	// len(p) only at the end of the data). ErrSnapshotChanged if that
	// snapshot has been replaced.
	ReadSnapshot(index Index, off uint64, p []byte) (int, error)
}

// MemoryStorage is a Storage held in memory, with the write methods a
// caller uses when handling a Ready. It is not safe for concurrent use: the
// goroutine that drives the core owns it.
type MemoryStorage struct {
	hs HardState
	// ents[0] is a dummy entry whose Index and Term are those of the entry
	// before the first stored one, so Term(FirstIndex()-1) always works.
	// Invariant: ents[i].Index == ents[0].Index + i.
	ents []Entry

	snap     SnapshotMeta
	snapData []byte
	// inMeta and inData are the incoming snapshot being received.
	inMeta SnapshotMeta
	inData []byte
}

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{ents: make([]Entry, 1, 64)}
}

// InitialState implements Storage.
func (s *MemoryStorage) InitialState() (HardState, error) { return s.hs, nil }

// SetHardState saves hs.
func (s *MemoryStorage) SetHardState(hs HardState) { s.hs = hs }

func (s *MemoryStorage) offset() Index { return s.ents[0].Index }

// FirstIndex implements Storage.
func (s *MemoryStorage) FirstIndex() (Index, error) { return s.offset() + 1, nil }

// LastIndex implements Storage.
func (s *MemoryStorage) LastIndex() (Index, error) { return s.lastIndex(), nil }

func (s *MemoryStorage) lastIndex() Index { return s.offset() + Index(len(s.ents)) - 1 }

// Term implements Storage.
func (s *MemoryStorage) Term(i Index) (Term, error) {
	switch {
	case i < s.offset():
		return 0, ErrCompacted
	case i > s.lastIndex():
		return 0, ErrUnavailable
	}
	return s.ents[i-s.offset()].Term, nil
}

// Entries implements Storage. It returns a subslice of the stored array.
func (s *MemoryStorage) Entries(lo, hi Index, maxBytes int) ([]Entry, error) {
	switch {
	case lo <= s.offset():
		return nil, ErrCompacted
	case hi > s.lastIndex()+1:
		return nil, ErrUnavailable
	case lo >= hi:
		return nil, nil
	}
	ents := s.ents[lo-s.offset() : hi-s.offset()]
	return limitSize(ents, maxBytes), nil
}

// Append stores entries, which must follow on from or overlap the stored
// log; overlapping stored entries are replaced (a conflicting suffix is
// truncated). Replacement copies into a fresh array so that slices handed
// out earlier stay valid.
func (s *MemoryStorage) Append(ents []Entry) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].Index
	switch {
	case first <= s.offset():
		return ErrCompacted
	case first > s.lastIndex()+1:
		return ErrUnavailable
	case first == s.lastIndex()+1:
		s.ents = append(s.ents, ents...)
	default:
		kept := s.ents[:first-s.offset()]
		fresh := make([]Entry, len(kept), len(kept)+len(ents)+64)
		copy(fresh, kept)
		s.ents = append(fresh, ents...)
	}
	return nil
}

// limitSize returns the longest prefix of ents whose payload fits maxBytes,
// but at least one entry.
func limitSize(ents []Entry, maxBytes int) []Entry {
	size := 0
	for i := range ents {
		size += len(ents[i].Data)
		if i > 0 && size > maxBytes {
			return ents[:i]
		}
	}
	return ents
}

// Snapshot implements Storage.
func (s *MemoryStorage) Snapshot() (SnapshotMeta, error) { return s.snap, nil }

// ReadSnapshot implements Storage.
func (s *MemoryStorage) ReadSnapshot(index Index, off uint64, p []byte) (int, error) {
	if s.snap.IsEmpty() || index != s.snap.Index {
		return 0, ErrSnapshotChanged
	}
	if off >= uint64(len(s.snapData)) {
		return 0, nil
	}
	return copy(p, s.snapData[off:]), nil
}

// SnapshotData returns the stored snapshot's data; the caller must not
// modify it.
func (s *MemoryStorage) SnapshotData() (SnapshotMeta, []byte) { return s.snap, s.snapData }

// SaveSnapshot stores data as the snapshot of the state after applying
// entries up to meta.Index, whose term must be meta.Term, under the
// configuration meta.Conf (Size and CRC are computed). It keeps the log:
// call Compact to drop entries. Snapshots never go backwards: ErrCompacted
// if the index is below the stored snapshot's index.
func (s *MemoryStorage) SaveSnapshot(meta SnapshotMeta, data []byte) (SnapshotMeta, error) {
	index, term := meta.Index, meta.Term
	switch {
	case index < s.snap.Index || index < s.offset():
		return SnapshotMeta{}, ErrCompacted
	case index > s.lastIndex():
		return SnapshotMeta{}, ErrUnavailable
	case index == 0 || s.ents[index-s.offset()].Term != term:
		return SnapshotMeta{}, ErrSnapshotMismatch
	}
	s.snap = SnapshotMeta{Index: index, Term: term, Size: uint64(len(data)), CRC: SnapshotCRC(data), Conf: meta.Conf.Clone()}
	s.snapData = data
	return s.snap, nil
}

// Compact drops the entries up to and including index, which must be
// covered by the stored snapshot. The kept entries move to a fresh array
// sized to fit, so that the memory of the dropped ones is released.
func (s *MemoryStorage) Compact(index Index) error {
	switch {
	case index <= s.offset():
		return nil // already compacted
	case index > s.snap.Index || index > s.lastIndex():
		return ErrUnavailable
	}
	kept := s.ents[index-s.offset():]
	fresh := make([]Entry, len(kept), len(kept)+64)
	copy(fresh, kept)
	fresh[0].Data = nil // the dummy entry keeps only Index and Term
	s.ents = fresh
	return nil
}

// WriteSnapshotChunk stores a chunk of an incoming snapshot (see
// SnapshotChunk): Offset 0 starts a new one; later chunks must continue the
// current one exactly.
func (s *MemoryStorage) WriteSnapshotChunk(c SnapshotChunk) error {
	meta := c.Meta
	meta.CRC = 0
	switch {
	case c.Offset == 0:
		s.inMeta, s.inData = meta, make([]byte, 0, min(meta.Size, 1<<20))
	case !SameSnapshot(meta, s.inMeta) || c.Offset != uint64(len(s.inData)):
		return ErrSnapshotMismatch
	}
	if uint64(len(s.inData))+uint64(len(c.Data)) > meta.Size {
		return ErrSnapshotMismatch
	}
	s.inData = append(s.inData, c.Data...)
	return nil
}

// InstallSnapshot makes the completely received incoming snapshot, which
// must match meta (size and checksum), the stored snapshot, and discards
// the whole log: the log restarts after meta.Index.
func (s *MemoryStorage) InstallSnapshot(meta SnapshotMeta) error {
	in := s.inMeta
	in.CRC = meta.CRC
	if !SameSnapshot(in, meta) || uint64(len(s.inData)) != meta.Size || SnapshotCRC(s.inData) != meta.CRC {
		return ErrSnapshotMismatch
	}
	meta.Conf = meta.Conf.Clone()
	s.snap, s.snapData = meta, s.inData
	s.inMeta, s.inData = SnapshotMeta{}, nil
	s.ents = append(make([]Entry, 0, 64), Entry{Index: meta.Index, Term: meta.Term})
	return nil
}

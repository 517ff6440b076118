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

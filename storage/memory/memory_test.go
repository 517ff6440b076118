package memory

import (
	"errors"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

func ents(lo, hi raft.Index) []raft.Entry {
	var out []raft.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, raft.Entry{Term: 1, Index: i})
	}
	return out
}

func TestMaxEntriesEdge(t *testing.T) {
	s := New(Options{MaxEntries: 4})
	if err := s.Append(ents(1, 4)); err != nil {
		t.Fatalf("4 entries within MaxEntries 4: %v", err)
	}
	if err := s.Append(ents(5, 5)); !errors.Is(err, storage.ErrFull) {
		t.Fatalf("5th entry: %v, want ErrFull", err)
	}
	if err := s.Append(ents(3, 4)); err != nil { // overwriting stays within bounds
		t.Fatalf("rewrite: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := New(Options{})
	_ = s.Close()
	if err := s.Append(ents(1, 1)); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := s.SetHardState(raft.HardState{Term: 1}); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("SetHardState after Close: %v", err)
	}
	if err := s.Sync(); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	s.Reopen()
	if err := s.Append(ents(1, 1)); err != nil {
		t.Fatalf("after Reopen: %v", err)
	}
}

func TestAppendTruncatesConflicts(t *testing.T) {
	s := New(Options{})
	_ = s.Append(ents(1, 5))
	_ = s.Append([]raft.Entry{{Term: 2, Index: 3}})
	last, _ := s.LastIndex()
	term, _ := s.Term(3)
	if last != 3 || term != 2 {
		t.Fatalf("after conflicting append: last %d term(3) %d, want 3 and 2", last, term)
	}
}

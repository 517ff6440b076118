package file_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
)

func wantIndexes(t *testing.T, s *file.Storage, first, last raft.Index, compactTerm raft.Term) {
	t.Helper()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		t.Fatalf("first %d last %d, want %d %d", f, l, first, last)
	}
	if tm, err := s.Term(first - 1); err != nil || tm != compactTerm {
		t.Fatalf("Term(%d) = %d, %v; want %d", first-1, tm, err, compactTerm)
	}
	if first > 1 {
		if _, err := s.Term(first - 2); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Term(%d): %v, want ErrCompacted", first-2, err)
		}
		if _, err := s.Entries(first-1, last+1, 1<<20); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Entries(%d): %v, want ErrCompacted", first-1, err)
		}
	}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, opts())
	_ = s.SetHardState(raft.HardState{Term: 3, Commit: 150})
	for i := raft.Index(1); i <= 200; i += 10 {
		tm := raft.Term(1 + i/100) // terms 1 then 2 then 3
		mustAppendSync(t, s, mkEnts(i, i+9, tm, 0))
	}
	before := len(segments(t, dir))
	mustSnapshot(t, s, 150, snapData(1, 100))
	if err := s.Compact(150); err != nil {
		t.Fatal(err)
	}
	wantIndexes(t, s, 151, 200, 2)
	segs := segments(t, dir)
	if len(segs) >= before {
		t.Fatalf("%d segments after Compact, %d before", len(segs), before)
	}
	if err := s.Compact(120); err != nil { // at or below the point: no-op
		t.Fatal(err)
	}
	if err := s.Compact(201); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact beyond the log: %v", err)
	}
	if err := s.Append(mkEnts(150, 150, 3, 0)); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Append at the compaction point: %v", err)
	}
	mustClose(t, s)

	s = mustOpen(t, dir, opts())
	wantIndexes(t, s, 151, 200, 2)
	checkLog(t, s, 200)
	mustAppendSync(t, s, mkEnts(201, 210, 3, 0))
	// Compact everything: an empty log that still knows its last term.
	mustSnapshot(t, s, 210, snapData(2, 100))
	if err := s.Compact(210); err != nil {
		t.Fatal(err)
	}
	wantIndexes(t, s, 211, 210, 3)
	mustClose(t, s)
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	wantIndexes(t, s, 211, 210, 3)
	mustAppendSync(t, s, mkEnts(211, 215, 4, 0))
	checkLog(t, s, 215)
}

// removeFailFS fails Remove, as a crash right after LOGSTART's rename
// would leave the compacted segments in place.
type removeFailFS struct{ *faultFS }

func (removeFailFS) Remove(string) error { return errors.New("injected remove failure") }

func TestCompactInterrupted(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 100, 100)
	n := len(segments(t, dir))
	s := mustOpen(t, dir, opts(func(o *file.Options) { o.FS = removeFailFS{newFaultFS()} }))
	mustSnapshot(t, s, 80, snapData(1, 100))
	if err := s.Compact(80); err == nil {
		t.Fatal("Compact with failing removes succeeded")
	}
	_ = s.Close()
	if len(segments(t, dir)) != n {
		t.Fatal("segments were removed")
	}
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	wantIndexes(t, s, 81, 100, 1)
	if s.Recovery().RemovedFiles == 0 || len(segments(t, dir)) >= n {
		t.Fatalf("recovery %+v did not finish the compaction", s.Recovery())
	}
	if _, err := os.Stat(filepath.Join(dir, "LOGSTART")); err != nil {
		t.Fatal(err)
	}
}

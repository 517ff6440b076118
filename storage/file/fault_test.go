package file_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/storage/file"
)

// frameOffsets returns the offset of every frame in a segment file.
func frameOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := 40; off+8 <= len(b); off += 8 + int(binary.LittleEndian.Uint32(b[off:])) {
		offs = append(offs, int64(off))
	}
	return offs
}

// buildLog writes entries 1..n of term 1 with the given commit index and
// closes the storage.
func buildLog(t *testing.T, dir string, n raft.Index, commit raft.Index) {
	t.Helper()
	s := mustOpen(t, dir, opts())
	_ = s.SetHardState(raft.HardState{Term: 1, Vote: testNode, Commit: commit})
	for i := raft.Index(1); i <= n; i += 10 {
		mustAppendSync(t, s, mkEnts(i, min(i+9, n), 1, 0))
	}
	mustClose(t, s)
}

func checkLog(t *testing.T, s *file.Storage, wantLast raft.Index) {
	t.Helper()
	if last, _ := s.LastIndex(); last != wantLast {
		t.Fatalf("last index %d, want %d", last, wantLast)
	}
	for _, e := range allEntries(t, s) {
		if _, err := checkPayload(e); err != nil {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
	}
}

// TestTornTailEveryOffset cuts the last segment at every byte offset of its
// last record: Open must drop exactly that record and keep all others.
func TestTornTailEveryOffset(t *testing.T) {
	dir := t.TempDir()
	const n = 60
	buildLog(t, dir, n, n-1)
	segs := segments(t, dir)
	last := segs[len(segs)-1]
	orig, _ := os.ReadFile(last)
	offs := frameOffsets(t, last)
	start := offs[len(offs)-1]
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	for cut := start; cut < int64(len(orig)); cut++ {
		if err := os.WriteFile(last, orig[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, dir, opts())
		checkLog(t, s, n-1)
		if got := s.Recovery().TornBytes; got != cut-start {
			t.Fatalf("cut at %d: torn bytes %d, want %d", cut, got, cut-start)
		}
		mustClose(t, s)
		if st, _ := os.Stat(last); st.Size() != start {
			t.Fatalf("cut at %d: file is %d bytes after recovery, want %d", cut, st.Size(), start)
		}
	}
}

// TestTornTailGarbage: zeros or random bytes after the last record (space
// the file system allocated, a tear) are cut.
func TestTornTailGarbage(t *testing.T) {
	for name, junk := range map[string][]byte{"zeros": make([]byte, 300), "bytes": []byte("\x07\x00\x00\x00junk that is no frame at all")} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			buildLog(t, dir, 30, 30)
			segs := segments(t, dir)
			f, _ := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
			_, _ = f.Write(junk)
			_ = f.Close()
			s := mustOpen(t, dir, opts())
			defer mustClose(t, s)
			checkLog(t, s, 30)
			if s.Recovery().TornBytes != int64(len(junk)) {
				t.Fatalf("torn bytes %d, want %d", s.Recovery().TornBytes, len(junk))
			}
		})
	}
}

// TestTornTailBelowCommit: a damaged last record the hard state says was
// committed was acknowledged, so it is corruption, not a tear.
func TestTornTailBelowCommit(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 30, 30)
	segs := segments(t, dir)
	last := segs[len(segs)-1]
	offs := frameOffsets(t, last)
	if err := os.Truncate(last, offs[len(offs)-1]+5); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, dir, last, offs[len(offs)-1])
}

func wantCorrupt(t *testing.T, dir, file_ string, off int64) {
	t.Helper()
	_, err := file.Open(dir, opts())
	var ce *file.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, file.ErrCorrupt) {
		t.Fatalf("Open: %v, want a *CorruptError", err)
	}
	if ce.File != file_ || ce.Offset != off {
		t.Fatalf("CorruptError names %s at %d, want %s at %d (%v)", ce.File, ce.Offset, file_, off, err)
	}
	if !strings.Contains(err.Error(), file_) {
		t.Fatalf("error text %q does not name the file", err)
	}
}

// TestFlippedByte: a flipped byte in a record followed by valid records,
// in an early segment or in the last one, fails Open naming the place.
func TestFlippedByte(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seg    int // index into segments; -1: last
		record int
		at     int64 // byte within the frame
	}{
		{"early segment payload", 0, 2, 12},
		{"early segment length", 0, 0, 1},
		{"early segment last record", 0, -1, 9},
		{"last segment, mid", -1, 1, 10},
		{"last segment checksum", -1, 0, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			buildLog(t, dir, 60, 0)
			segs := segments(t, dir)
			path := segs[(tc.seg+len(segs))%len(segs)]
			offs := frameOffsets(t, path)
			off := offs[(tc.record+len(offs))%len(offs)]
			b, _ := os.ReadFile(path)
			b[off+tc.at] ^= 0x40
			_ = os.WriteFile(path, b, 0o644)
			wantCorrupt(t, dir, path, off)
		})
	}
}

// TestMissingSegment: a segment removed from the middle or the start of
// the log is detected at the segment after the gap.
func TestMissingSegment(t *testing.T) {
	for _, which := range []int{0, 1} {
		dir := t.TempDir()
		buildLog(t, dir, 60, 0)
		segs := segments(t, dir)
		_ = os.Remove(segs[which])
		wantCorrupt(t, dir, segs[which+1], 0)
	}
}

// TestTornNewSegment: a segment whose creation a crash interrupted (no
// valid header, no record) is removed; with records behind a bad header it
// is corruption.
func TestTornNewSegment(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 30, 30)
	next := filepath.Join(dir, "000000000000001f.log")
	_ = os.WriteFile(next, []byte("EMBRAFTL\x01\x00"), 0o644)
	s := mustOpen(t, dir, opts())
	checkLog(t, s, 30)
	if s.Recovery().RemovedFiles != 1 {
		t.Fatalf("recovery %+v, want the torn segment removed", s.Recovery())
	}
	mustAppendSync(t, s, mkEnts(31, 40, 1, 0))
	mustClose(t, s)
	// Now damage that segment's header: its records make it corruption.
	segs := segments(t, dir)
	last := segs[len(segs)-1]
	b, _ := os.ReadFile(last)
	b[3] ^= 1
	_ = os.WriteFile(last, b, 0o644)
	wantCorrupt(t, dir, last, 0)
}

// TestHardStateSlots: a torn newest slot falls back to the older one; two
// bad slots are corruption.
func TestHardStateSlots(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, opts())
	for term := raft.Term(1); term <= 4; term++ {
		_ = s.SetHardState(raft.HardState{Term: term, Vote: 2})
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, s)
	path := filepath.Join(dir, "HARDSTATE")
	b, _ := os.ReadFile(path)
	newest := 0 // terms 1..4 went to slots 1,0,1,0 after init's slot 0
	b[newest*4096+20] ^= 0xff
	_ = os.WriteFile(path, b, 0o644)
	s = mustOpen(t, dir, opts())
	if hs, _ := s.InitialState(); hs.Term != 3 {
		t.Fatalf("after tearing the newest slot: %+v, want term 3", hs)
	}
	mustClose(t, s)
	b, _ = os.ReadFile(path)
	b[4096+20] ^= 0xff // slot 0 is still torn: now both are bad
	_ = os.WriteFile(path, b, 0o644)
	wantCorrupt(t, dir, path, 0)
}

// TestTermRaisedToLog: entries whose term the hard state never reached
// (crash between the log's fsync and HARDSTATE's) raise the term, no vote.
func TestTermRaisedToLog(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, opts())
	_ = s.SetHardState(raft.HardState{Term: 3, Vote: 2})
	mustAppendSync(t, s, mkEnts(1, 5, 5, 0))
	mustClose(t, s)
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	if hs, _ := s.InitialState(); hs != (raft.HardState{Term: 5}) || !s.Recovery().TermRaisedToLog {
		t.Fatalf("hard state %+v, recovery %+v; want term 5, no vote", hs, s.Recovery())
	}
}

// TestIOErrors injects a failing write (ENOSPC after N bytes, a partial
// write) and a failing fsync: the storage reports the error, stays failed,
// and reopening with the real file system finds every acknowledged entry
// and no corruption.
func TestIOErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget int64
		err    error
		sync   bool
	}{
		{"ENOSPC at once", 0, syscall.ENOSPC, false},
		{"ENOSPC mid-frame", 13, syscall.ENOSPC, false},
		{"ENOSPC after frames", 700, syscall.ENOSPC, false},
		{"EIO after frames", 2500, syscall.EIO, false},
		{"fsync EIO", -1, syscall.EIO, true},
	} {
		t.Run(tc.name, func(t *testing.T) { testIOError(t, tc.budget, tc.err, tc.sync) })
	}
}

func testIOError(t *testing.T, budget int64, injected error, sync bool) {
	dir := t.TempDir()
	fs := newFaultFS()
	fs.writeErr = injected
	s := mustOpen(t, dir, opts(func(o *file.Options) { o.FS = fs }))
	durable := raft.Index(0)
	for i := raft.Index(1); i <= 40; i += 10 {
		mustAppendSync(t, s, mkEnts(i, i+9, 2, 0))
		durable = i + 9
	}
	if sync {
		fs.setSyncErr(injected)
	} else {
		fs.setBudget(budget)
	}
	var err error
	for i := durable + 1; err == nil; i += 10 {
		_ = s.SetHardState(raft.HardState{Term: raft.Term(i), Commit: durable})
		if err = s.Append(mkEnts(i, i+9, raft.Term(i), 0)); err == nil {
			if err = s.Sync(); err == nil {
				durable = i + 9
			}
		}
	}
	if !errors.Is(err, injected) || !errors.Is(err, file.ErrFailed) {
		t.Fatalf("error %v, want %v and ErrFailed", err, injected)
	}
	checkFailed(t, s, err)
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	last, _ := s.LastIndex()
	t.Logf("acknowledged %d, recovered %d, recovery %+v", durable, last, s.Recovery())
	if last < durable {
		t.Fatalf("last index %d after reopen, but %d was acknowledged", last, durable)
	}
	checkLog(t, s, last)
}

// checkFailed: every call of a failed storage returns its error.
func checkFailed(t *testing.T, s *file.Storage, want error) {
	t.Helper()
	_, e1 := s.Term(1)
	_, e2 := s.Entries(1, 2, 100)
	_, e3 := s.LastIndex()
	for i, err := range []error{s.Append(mkEnts(1, 1, 9, 0)), s.Sync(), s.SetHardState(raft.HardState{}), e1, e2, e3, s.Compact(1), s.Close()} {
		if err != want {
			t.Fatalf("call %d after failure: %v, want %v", i, err, want)
		}
	}
}

func TestWrongClusterOrNode(t *testing.T) {
	dir := t.TempDir()
	mustClose(t, mustOpen(t, dir, opts()))
	_, err := file.Open(dir, opts(func(o *file.Options) { o.ClusterID = 8 }))
	if !errors.Is(err, file.ErrWrongCluster) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "cluster 7") {
		t.Fatalf("other cluster: %v", err)
	}
	_, err = file.Open(dir, opts(func(o *file.Options) { o.NodeID = 4 }))
	if !errors.Is(err, file.ErrWrongNode) || !strings.Contains(err.Error(), "node 3") || !strings.Contains(err.Error(), "node 4") {
		t.Fatalf("other node: %v", err)
	}
	// A segment copied in from another node's directory is refused too.
	other := t.TempDir()
	o := mustOpen(t, other, opts(func(o *file.Options) { o.NodeID = 4 }))
	mustAppendSync(t, o, mkEnts(1, 3, 1, 0))
	mustClose(t, o)
	b, _ := os.ReadFile(filepath.Join(other, "0000000000000001.log"))
	_ = os.WriteFile(filepath.Join(dir, "0000000000000001.log"), b, 0o644)
	if _, err := file.Open(dir, opts()); !errors.Is(err, file.ErrWrongNode) {
		t.Fatalf("foreign segment: %v", err)
	}
}

func TestDirectoryStates(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	if _, err := file.Open(dir, opts()); !errors.Is(err, file.ErrNotStorageDir) {
		t.Fatalf("foreign directory: %v", err)
	}
	// Leftovers of an interrupted initialisation are replaced.
	dir = t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "HARDSTATE"), []byte("partial"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "0000000000000001.log"), nil, 0o644)
	_ = os.WriteFile(filepath.Join(dir, "META.tmp"), []byte("partial"), 0o644)
	s := mustOpen(t, dir, opts())
	mustAppendSync(t, s, mkEnts(1, 3, 1, 0))
	mustClose(t, s)
	// Temp files of interrupted atomic replacements are removed.
	for _, n := range []string{"LOGSTART.tmp", "SNAPSHOT.tmp", "META.tmp"} {
		_ = os.WriteFile(filepath.Join(dir, n), []byte("partial"), 0o644)
	}
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	checkLog(t, s, 3)
	if s.Recovery().RemovedFiles != 3 {
		t.Fatalf("recovery %+v, want 3 temp files removed", s.Recovery())
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
	// META missing while a log exists: refused, not re-initialised.
	mustClose(t, s)
	_ = os.Remove(filepath.Join(dir, "META"))
	if _, err := file.Open(dir, opts()); !errors.Is(err, file.ErrCorrupt) {
		t.Fatalf("missing META: %v", err)
	}
	// Nor when only a vote would be forgotten.
	dir = t.TempDir()
	s = mustOpen(t, dir, opts())
	_ = s.SetHardState(raft.HardState{Term: 4, Vote: 2})
	mustClose(t, s)
	_ = os.Remove(filepath.Join(dir, "META"))
	if _, err := file.Open(dir, opts()); !errors.Is(err, file.ErrCorrupt) {
		t.Fatalf("missing META with a vote: %v", err)
	}
}

func TestAppendValidation(t *testing.T) {
	s := mustOpen(t, t.TempDir(), opts(func(o *file.Options) { o.MaxEntries = 10 }))
	defer mustClose(t, s)
	mustAppendSync(t, s, mkEnts(1, 5, 2, 0))
	bad := mkEnts(6, 8, 2, 0)
	bad[2].Index = 9
	for name, tc := range map[string]struct {
		ents []raft.Entry
		want error
	}{
		"gap":            {mkEnts(7, 7, 2, 0), raft.ErrUnavailable},
		"not contiguous": {bad, file.ErrInvalidEntries},
		"term decreases": {mkEnts(6, 6, 1, 0), file.ErrInvalidEntries},
		"unknown type":   {[]raft.Entry{{Index: 6, Term: 2, Type: 9}}, file.ErrInvalidEntries},
		"full":           {mkEnts(6, 11, 2, 0), storage.ErrFull},
		"index 0":        {mkEnts(0, 0, 2, 0), raft.ErrCompacted},
	} {
		if err := s.Append(tc.ents); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	checkLog(t, s, 5) // refused appends wrote nothing and did not fail the storage
	mustAppendSync(t, s, mkEnts(3, 10, 3, 0))
}

// TestAppendConfChange: membership entries are stored like any other and
// come back with their type and data after a reopen.
func TestAppendConfChange(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, opts())
	ents := mkEnts(1, 3, 1, 0)
	ents[1].Type, ents[1].Data = raft.EntryConfChange, raft.AppendConfState(nil, jointConf())
	mustAppendSync(t, s, ents)
	mustClose(t, s)
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	got, err := s.Entries(2, 3, 1<<20)
	if err != nil || len(got) != 1 || got[0].Type != raft.EntryConfChange || !bytes.Equal(got[0].Data, ents[1].Data) {
		t.Fatalf("Entries(2, 3): %+v %v", got, err)
	}
}

func TestClosed(t *testing.T) {
	s := mustOpen(t, t.TempDir(), opts())
	mustClose(t, s)
	_, err := s.LastIndex()
	for i, e := range []error{s.Append(mkEnts(1, 1, 1, 0)), s.Sync(), s.SetHardState(raft.HardState{}), err} {
		if !errors.Is(e, storage.ErrClosed) {
			t.Fatalf("call %d after Close: %v", i, e)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestTruncateAcrossSegments: an append that replaces a suffix spanning
// several segments removes the later files and rewrites the earlier one.
func TestTruncateAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 100, 0)
	before := len(segments(t, dir))
	s := mustOpen(t, dir, opts())
	_ = s.SetHardState(raft.HardState{Term: 2})
	held, _ := s.Entries(10, 30, 1<<20)
	heldCopy := cloneEnts(held)
	mustAppendSync(t, s, mkEnts(15, 20, 2, 1))
	sameEnts(t, "entries held across the truncation", held, heldCopy)
	checkLog(t, s, 20)
	mustClose(t, s)
	if after := len(segments(t, dir)); after >= before {
		t.Fatalf("%d segments after truncating to 20, %d before", after, before)
	}
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	checkLog(t, s, 20)
	if tm, _ := s.Term(15); tm != 2 {
		t.Fatalf("term(15) = %d, want 2", tm)
	}
	mustAppendSync(t, s, mkEnts(21, 120, 2, 1))
	checkLog(t, s, 120)
}

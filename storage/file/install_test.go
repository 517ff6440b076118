package file_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
)

// sendSnapshot writes data as the incoming snapshot (index, term) in
// chunks of n bytes and returns its metadata with the CRC.
func sendSnapshot(t testing.TB, s *file.Storage, index raft.Index, term raft.Term, data []byte, n int) raft.SnapshotMeta {
	t.Helper()
	return sendSnapshotConf(t, s, raft.SnapshotMeta{Index: index, Term: term}, data, n)
}

// sendSnapshotConf is sendSnapshot of meta's index, term and Conf.
func sendSnapshotConf(t testing.TB, s *file.Storage, meta raft.SnapshotMeta, data []byte, n int) raft.SnapshotMeta {
	t.Helper()
	meta.Size, meta.CRC = uint64(len(data)), 0
	for off := 0; off == 0 || off < len(data); off += n {
		c := raft.SnapshotChunk{Meta: meta, Offset: uint64(off), Data: data[off:min(off+n, len(data))]}
		if err := s.WriteSnapshotChunk(c); err != nil {
			t.Fatalf("WriteSnapshotChunk at %d: %v", off, err)
		}
	}
	meta.CRC = raft.SnapshotCRC(data)
	return meta
}

// snapLogDir builds the directory the install and crash-point tests start
// from: entries 1..100 in many segments (terms 1, 2, 3 from indexes 1, 40,
// 80), a snapshot at 30 (configuration plainConf) compacted to 20, commit
// 70, term 3.
func snapLogDir(t testing.TB, dir string) {
	t.Helper()
	s := mustOpen(t, dir, opts())
	_ = s.SetHardState(raft.HardState{Term: 3, Vote: 1, Commit: 70})
	for i := raft.Index(1); i <= 100; i += 10 {
		for k := i; k < i+10; k++ {
			mustAppendSync(t, s, mkEnts(k, k, snapLogTerm(k), 0))
		}
	}
	mustSnapshotConf(t, s, 30, plainConf(), snapData(30, 3000))
	if err := s.Compact(20); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
}

func snapLogTerm(i raft.Index) raft.Term { return 1 + raft.Term(i/40) }

func TestInstallSnapshot(t *testing.T) {
	cases := []struct {
		name  string
		index raft.Index
		term  raft.Term
	}{
		{"beyond the log", 150, 5},
		{"inside the log, other term", 80, 9},
		{"inside the log, same term", 80, snapLogTerm(80)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			snapLogDir(t, dir)
			s := mustOpen(t, dir, opts())
			data := snapData(uint64(c.index), 70000)
			meta := sendSnapshotConf(t, s, raft.SnapshotMeta{Index: c.index, Term: c.term, Conf: jointConf()}, data, 4096)
			if err := s.InstallSnapshot(meta); err != nil {
				t.Fatal(err)
			}
			checkInstalled(t, s, meta, data)
			mustAppendSync(t, s, mkEnts(c.index+1, c.index+5, c.term, 0))
			mustClose(t, s)
			s = mustOpen(t, dir, opts())
			defer mustClose(t, s)
			if got, _ := s.Snapshot(); !sameMeta(got, meta) || s.Recovery().LogDiscarded {
				t.Fatalf("after reopen: snapshot %+v, recovery %+v", got, s.Recovery())
			}
			wantIndexes(t, s, c.index+1, c.index+5, c.term)
			checkLog(t, s, c.index+5)
			if segs := segments(t, dir); len(segs) != 1 {
				t.Fatalf("segments %v", segs)
			}
		})
	}
}

func checkInstalled(t *testing.T, s *file.Storage, meta raft.SnapshotMeta, data []byte) {
	t.Helper()
	wantIndexes(t, s, meta.Index+1, meta.Index, meta.Term)
	if got, _ := s.Snapshot(); !sameMeta(got, meta) {
		t.Fatalf("Snapshot() = %+v, want %+v", got, meta)
	}
	if hs, _ := s.InitialState(); hs.Commit < meta.Index {
		t.Fatalf("commit %d below the snapshot %d", hs.Commit, meta.Index)
	}
	if m, got := readSnap(t, s); !sameMeta(m, meta) || !bytes.Equal(got, data) {
		t.Fatalf("installed snapshot %+v, %d bytes", m, len(got))
	}
	checkReadSnapshot(t, s, meta, data)
}

func TestInstallSnapshotRefusals(t *testing.T) {
	dir := t.TempDir()
	snapLogDir(t, dir)
	s := mustOpen(t, dir, opts())
	defer mustClose(t, s)
	data := snapData(7, 1000)
	meta := raft.SnapshotMeta{Index: 150, Term: 5, Size: 1000, CRC: raft.SnapshotCRC(data)}
	chunk := func(m raft.SnapshotMeta, off int, n int) error {
		return s.WriteSnapshotChunk(raft.SnapshotChunk{Meta: m, Offset: uint64(off), Data: data[off : off+n]})
	}
	mismatch := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, raft.ErrSnapshotMismatch) {
			t.Fatalf("%s: %v, want ErrSnapshotMismatch", what, err)
		}
	}
	mismatch("install with nothing received", s.InstallSnapshot(meta))
	mismatch("chunk without offset 0", chunk(meta, 10, 10))
	if err := chunk(meta, 0, 400); err != nil {
		t.Fatal(err)
	}
	mismatch("chunk at a gap", chunk(meta, 500, 10))
	mismatch("chunk overlapping", chunk(meta, 300, 10))
	other := meta
	other.Term = 6
	mismatch("chunk of another snapshot", chunk(other, 400, 10))
	mismatch("install incomplete", s.InstallSnapshot(meta))
	big := meta
	big.Size = 10
	mismatch("chunk beyond the size", s.WriteSnapshotChunk(raft.SnapshotChunk{Meta: big, Data: data[:11]}))
	sendSnapshot(t, s, 150, 5, data, 300)
	bad := meta
	bad.CRC ^= 1
	mismatch("install with another CRC", s.InstallSnapshot(bad))
	mismatch("install after a CRC mismatch discarded the file", s.InstallSnapshot(meta))
	if _, err := os.Stat(filepath.Join(dir, "SNAPSHOT.incoming")); !os.IsNotExist(err) {
		t.Fatalf("incoming file kept after a CRC mismatch: %v", err)
	}
	// Below the commit index (70): committed entries would be lost.
	old := sendSnapshot(t, s, 60, 2, data, 1000)
	if err := s.InstallSnapshot(old); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("install below the commit index: %v", err)
	}
	checkLog(t, s, 100)
	// The storage is still usable and installs a good snapshot.
	if err := s.InstallSnapshot(sendSnapshot(t, s, 150, 5, data, 999)); err != nil {
		t.Fatal(err)
	}
	wantIndexes(t, s, 151, 150, 5)
}

// TestOpenLeftovers: the temp and incoming files a crash leaves are
// removed at Open, which never fails because of them.
func TestOpenLeftovers(t *testing.T) {
	dir := t.TempDir()
	snapLogDir(t, dir)
	for _, name := range []string{"SNAPSHOT.tmp", "SNAPSHOT.incoming", "LOGSTART.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := mustOpen(t, dir, opts())
	defer mustClose(t, s)
	if rec := s.Recovery(); rec.RemovedFiles != 3 || rec.Snapshot.Index != 30 {
		t.Fatalf("recovery %+v", rec)
	}
	wantIndexes(t, s, 21, 100, snapLogTerm(20))
}

// TestOpenSnapshotAheadOfLog builds the states an InstallSnapshot
// interrupted after its rename leaves (the new SNAPSHOT beside the old
// log) and checks Open's rule: a log holding the snapshot's last entry
// with its term is kept, any other is discarded. A second Open repairs
// nothing.
func TestOpenSnapshotAheadOfLog(t *testing.T) {
	cases := []struct {
		name    string
		index   raft.Index
		term    raft.Term
		discard bool
	}{
		{"log ends before", 150, 5, true},
		{"other term", 80, 9, true},
		{"same term", 80, snapLogTerm(80), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			snapLogDir(t, dir)
			snapshotFileFor(t, dir, c.index, c.term)
			s := mustOpen(t, dir, opts())
			defer func() { mustClose(t, s) }()
			rec := s.Recovery()
			// A kept log keeps its entries from LOGSTART (20) on.
			first, last, term := raft.Index(21), raft.Index(100), snapLogTerm(20)
			if c.discard {
				first, last, term = c.index+1, c.index, c.term
			}
			if rec.LogDiscarded != c.discard || rec.Snapshot.Index != c.index {
				t.Fatalf("recovery %+v", rec)
			}
			wantIndexes(t, s, first, last, term)
			checkLog(t, s, last)
			if hs, _ := s.InitialState(); hs.Commit != max(70, c.index) {
				t.Fatalf("commit %d", hs.Commit)
			}
			mustClose(t, s)
			s = mustOpen(t, dir, opts())
			if rec := s.Recovery(); rec.RemovedFiles != 0 || rec.LogDiscarded {
				t.Fatalf("second open repaired again: %+v", rec)
			}
			wantIndexes(t, s, first, last, term)
		})
	}
}

// snapshotFileFor puts a SNAPSHOT for (index, term) into dir, as if an
// InstallSnapshot had been interrupted right after its rename: it is
// made in another directory of the same node and copied.
func snapshotFileFor(t *testing.T, dir string, index raft.Index, term raft.Term) {
	t.Helper()
	other := t.TempDir()
	s := mustOpen(t, other, opts())
	meta := raft.SnapshotMeta{Index: index, Term: term, Conf: jointConf()}
	if err := s.InstallSnapshot(sendSnapshotConf(t, s, meta, snapData(9, 5000), 5000)); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	b, err := os.ReadFile(filepath.Join(other, "SNAPSHOT"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "SNAPSHOT"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

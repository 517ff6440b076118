package memory

import (
	"bytes"
	"errors"
	"io"
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

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

func TestSnapshotCreateOpenCompact(t *testing.T) {
	s := New(Options{MaxEntries: 10})
	_ = s.Append(ents(1, 10))
	if _, _, err := s.OpenSnapshot(); !errors.Is(err, storage.ErrNoSnapshot) {
		t.Fatalf("OpenSnapshot with none: %v", err)
	}
	if err := s.Compact(5); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact beyond the snapshot: %v", err)
	}
	data := []byte("state at 8")
	meta, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 8, Term: 1}, writeBytes(data))
	if err != nil || !sameMeta(meta, raft.SnapshotMeta{Index: 8, Term: 1, Size: uint64(len(data)), CRC: raft.SnapshotCRC(data)}) {
		t.Fatalf("CreateSnapshot: %+v, %v", meta, err)
	}
	if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 7, Term: 1}, writeBytes(nil)); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("older snapshot: %v", err)
	}
	if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 9, Term: 1}, func(io.Writer) error { return io.ErrClosedPipe }); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("failing writer: %v", err)
	}
	got, rc, err := s.OpenSnapshot()
	if err != nil || !sameMeta(got, meta) {
		t.Fatalf("OpenSnapshot: %+v %v", got, err)
	}
	if b, _ := io.ReadAll(rc); !bytes.Equal(b, data) {
		t.Fatalf("snapshot data %q", b)
	}
	p := make([]byte, 4)
	if n, err := s.ReadSnapshot(8, 6, p); n != 4 || err != nil || string(p) != string(data[6:10]) {
		t.Fatalf("ReadSnapshot: %d %v %q", n, err, p[:n])
	}
	if _, err := s.ReadSnapshot(7, 0, p); !errors.Is(err, raft.ErrSnapshotChanged) {
		t.Fatalf("ReadSnapshot of another index: %v", err)
	}
	if err := s.Append(ents(11, 11)); !errors.Is(err, storage.ErrFull) {
		t.Fatalf("11th entry before compaction: %v", err)
	}
	if err := s.Compact(8); err != nil {
		t.Fatal(err)
	}
	// MaxEntries counts the entries kept after the compaction point.
	if err := s.Append(ents(11, 18)); err != nil {
		t.Fatalf("after compaction: %v", err)
	}
	if err := s.Append(ents(19, 19)); !errors.Is(err, storage.ErrFull) {
		t.Fatalf("beyond the bound after compaction: %v", err)
	}
	if first, _ := s.FirstIndex(); first != 9 {
		t.Fatalf("FirstIndex %d after Compact(8)", first)
	}
	if term, err := s.Term(8); term != 1 || err != nil {
		t.Fatalf("Term(8) = %d, %v", term, err)
	}
}

func TestInstallSnapshot(t *testing.T) {
	s := New(Options{})
	_ = s.Append(ents(1, 3))
	_ = s.SetHardState(raft.HardState{Term: 1, Commit: 3})
	old := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 2, Term: 1, Size: 1}, Data: []byte{1}}
	_ = s.WriteSnapshotChunk(old)
	old.Meta.CRC = raft.SnapshotCRC(old.Data)
	if err := s.InstallSnapshot(old.Meta); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("install below the commit index: %v", err)
	}
	data := []byte("0123456789")
	meta := raft.SnapshotMeta{Index: 20, Term: 3, Size: uint64(len(data))}
	for off := 0; off < len(data); off += 4 {
		c := raft.SnapshotChunk{Meta: meta, Offset: uint64(off), Data: data[off:min(off+4, len(data))]}
		if err := s.WriteSnapshotChunk(c); err != nil {
			t.Fatal(err)
		}
	}
	meta.CRC = raft.SnapshotCRC(data) ^ 1
	if err := s.InstallSnapshot(meta); !errors.Is(err, raft.ErrSnapshotMismatch) {
		t.Fatalf("wrong CRC: %v", err)
	}
	meta.CRC ^= 1
	if err := s.InstallSnapshot(meta); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	term, _ := s.Term(20)
	hs, _ := s.InitialState()
	if first != 21 || last != 20 || term != 3 || hs.Commit != 20 {
		t.Fatalf("after install: first %d last %d term %d commit %d", first, last, term, hs.Commit)
	}
	if err := s.Append([]raft.Entry{{Index: 21, Term: 3}}); err != nil {
		t.Fatal(err)
	}
}

// TestMaxSnapshotBytesEdge: an incoming snapshot of exactly the bound is
// accepted, one byte more is refused at its first chunk.
func TestMaxSnapshotBytesEdge(t *testing.T) {
	s := New(Options{MaxSnapshotBytes: 8})
	ok := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 5, Term: 1, Size: 8}, Data: make([]byte, 8)}
	if err := s.WriteSnapshotChunk(ok); err != nil {
		t.Fatalf("snapshot of exactly the bound: %v", err)
	}
	big := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 5, Term: 1, Size: 9}, Data: make([]byte, 1)}
	err := s.WriteSnapshotChunk(big)
	if !errors.Is(err, ErrSnapshotTooLarge) || !errors.Is(err, raft.ErrSnapshotMismatch) {
		t.Fatalf("snapshot one byte over the bound: %v", err)
	}
	if New(Options{}).maxSnap != DefaultMaxSnapshotBytes {
		t.Fatal("default bound not applied")
	}
}

func TestSnapshotClosed(t *testing.T) {
	s := New(Options{})
	_ = s.Close()
	_, err1 := s.CreateSnapshot(raft.SnapshotMeta{Index: 1, Term: 1}, writeBytes(nil))
	_, _, err2 := s.OpenSnapshot()
	for i, err := range []error{err1, err2, s.Compact(1), s.WriteSnapshotChunk(raft.SnapshotChunk{}), s.InstallSnapshot(raft.SnapshotMeta{})} {
		if !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("call %d after Close: %v", i, err)
		}
	}
}

// sameMeta compares two snapshot metadata, Conf included.
func sameMeta(a, b raft.SnapshotMeta) bool { return raft.SameSnapshot(a, b) && a.Conf.Equal(b.Conf) }

// jointConf is a joint configuration with learners: voters {1,2,4}
// leaving {1,2,3}, learners {7,9}.
func jointConf() raft.ConfState {
	return raft.ConfState{Voters: []raft.NodeID{1, 2, 4}, VotersOutgoing: []raft.NodeID{1, 2, 3}, Learners: []raft.NodeID{7, 9}}
}

// TestSnapshotConf: the Conf given to CreateSnapshot and InstallSnapshot
// comes back from Snapshot and OpenSnapshot (a copy: the caller's slices
// may change afterwards), and survives Close and Reopen; an invalid Conf
// is refused before anything changes.
func TestSnapshotConf(t *testing.T) {
	s := New(Options{})
	_ = s.Append(ents(1, 10))
	_ = s.SetHardState(raft.HardState{Term: 1, Commit: 10})
	conf := jointConf()
	meta, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 5, Term: 1, Conf: conf}, writeBytes([]byte("five")))
	if err != nil || !meta.Conf.Equal(jointConf()) {
		t.Fatalf("CreateSnapshot: %+v %v", meta, err)
	}
	conf.Voters[0], conf.Learners[1] = 99, 98 // the caller reuses its slices
	check := func(what string, want raft.SnapshotMeta) {
		t.Helper()
		got, _ := s.Snapshot()
		om, rc, err := s.OpenSnapshot()
		if err != nil || !sameMeta(got, want) || !sameMeta(om, want) {
			t.Fatalf("%s: Snapshot %+v, OpenSnapshot %+v %v, want %+v", what, got, om, err, want)
		}
		_ = rc.Close()
	}
	check("after CreateSnapshot", raft.SnapshotMeta{Index: 5, Term: 1, Size: 4, CRC: raft.SnapshotCRC([]byte("five")), Conf: jointConf()})
	_ = s.Close()
	s.Reopen()
	check("after Reopen", meta)
	// Without a configuration, and leaving the joint one.
	plain, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 6, Term: 1}, writeBytes(nil))
	if err != nil || plain.Conf.Joint() || !plain.Conf.Equal(raft.ConfState{}) {
		t.Fatalf("CreateSnapshot without Conf: %+v %v", plain, err)
	}
	left := raft.ConfState{Voters: []raft.NodeID{1, 2, 4}, Learners: []raft.NodeID{7, 9}}
	if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 7, Term: 1, Conf: left}, writeBytes(nil)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []raft.ConfState{
		{Voters: []raft.NodeID{2, 1}},                                   // unsorted
		{Voters: []raft.NodeID{1, 2}, Learners: []raft.NodeID{2}},       // a learner that votes
		{Learners: []raft.NodeID{3}},                                    // no voter
		{Voters: []raft.NodeID{0, 1}},                                   // node 0
		{Voters: []raft.NodeID{1}, VotersOutgoing: []raft.NodeID{1, 1}}, // duplicate
	} {
		if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 8, Term: 1, Conf: bad}, writeBytes(nil)); !errors.Is(err, raft.ErrInvalidConf) {
			t.Fatalf("CreateSnapshot with Conf %+v: %v", bad, err)
		}
		c := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 20, Term: 2, Size: 1, Conf: bad}, Data: []byte{1}}
		if err := s.WriteSnapshotChunk(c); !errors.Is(err, raft.ErrInvalidConf) || !errors.Is(err, raft.ErrSnapshotMismatch) {
			t.Fatalf("chunk with Conf %+v: %v", bad, err)
		}
	}
	if got, _ := s.Snapshot(); got.Index != 7 || !got.Conf.Equal(left) {
		t.Fatalf("after refusals: %+v", got)
	}
	// Installed from a leader: the Conf the chunks announced.
	data := []byte("state at 20")
	in := raft.SnapshotMeta{Index: 20, Term: 2, Size: uint64(len(data)), Conf: jointConf()}
	for off := 0; off < len(data); off += 5 {
		c := raft.SnapshotChunk{Meta: in, Offset: uint64(off), Data: data[off:min(off+5, len(data))]}
		if err := s.WriteSnapshotChunk(c); err != nil {
			t.Fatal(err)
		}
	}
	in.CRC = raft.SnapshotCRC(data)
	other := in
	other.Conf = left
	if err := s.InstallSnapshot(other); !errors.Is(err, raft.ErrSnapshotMismatch) {
		t.Fatalf("install with another Conf than the chunks': %v", err)
	}
	if err := s.InstallSnapshot(in); err != nil {
		t.Fatal(err)
	}
	check("after InstallSnapshot", in)
}

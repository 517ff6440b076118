package mcu

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

func seqEnts(lo, hi raft.Index, term raft.Term) []raft.Entry {
	var out []raft.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, raft.Entry{Index: i, Term: term, Data: []byte{byte(i)}})
	}
	return out
}

func writeAll(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

// sameMeta compares snapshot metadata, Conf included.
func sameMeta(a, b raft.SnapshotMeta) bool { return raft.SameSnapshot(a, b) && a.Conf.Equal(b.Conf) }

// jointConf is a joint configuration with learners.
func jointConf() raft.ConfState {
	return raft.ConfState{Voters: []raft.NodeID{1, 2, 4}, VotersOutgoing: []raft.NodeID{1, 2, 3}, Learners: []raft.NodeID{5}}
}

// TestMemStoreSnapshots: create (with a configuration), read, compact;
// the floor never compacts past the snapshot; a Reopen keeps it.
func TestMemStoreSnapshots(t *testing.T) {
	prog := NewProgress(1)
	st := NewMemStore(1, 128, prog)
	if err := st.Append(seqEnts(1, 100, 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.OpenSnapshot(); !errors.Is(err, storage.ErrNoSnapshot) {
		t.Fatalf("OpenSnapshot with none: %v", err)
	}
	if err := st.Compact(5); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact without a snapshot: %v", err)
	}
	data := []byte("state at 50")
	conf := jointConf()
	meta, err := st.CreateSnapshot(raft.SnapshotMeta{Index: 50, Term: 1, Conf: conf}, writeAll(data))
	want := raft.SnapshotMeta{Index: 50, Term: 1, Size: uint64(len(data)), CRC: raft.SnapshotCRC(data), Conf: jointConf()}
	if err != nil || !sameMeta(meta, want) {
		t.Fatalf("CreateSnapshot: %+v %v", meta, err)
	}
	conf.Voters[0] = 9 // the caller reuses its slices: the store kept a copy
	if got, _ := st.Snapshot(); !sameMeta(got, want) {
		t.Fatalf("Snapshot: %+v", got)
	}
	bad := raft.ConfState{Voters: []raft.NodeID{2, 1}}
	if _, err := st.CreateSnapshot(raft.SnapshotMeta{Index: 60, Term: 1, Conf: bad}, writeAll(nil)); !errors.Is(err, raft.ErrInvalidConf) {
		t.Fatalf("CreateSnapshot with an invalid Conf: %v", err)
	}
	for _, c := range []struct {
		i    raft.Index
		term raft.Term
		want error
	}{{49, 1, raft.ErrCompacted}, {101, 1, raft.ErrUnavailable}, {60, 2, raft.ErrSnapshotMismatch}} {
		if _, err := st.CreateSnapshot(raft.SnapshotMeta{Index: c.i, Term: c.term}, writeAll(nil)); !errors.Is(err, c.want) {
			t.Fatalf("CreateSnapshot(%d, %d): %v, want %v", c.i, c.term, err, c.want)
		}
	}
	p := make([]byte, 5)
	if n, err := st.ReadSnapshot(50, 6, p); err != nil || string(p[:n]) != "at 50" {
		t.Fatalf("ReadSnapshot: %q %v", p[:n], err)
	}
	if _, err := st.ReadSnapshot(49, 0, p); !errors.Is(err, raft.ErrSnapshotChanged) {
		t.Fatalf("ReadSnapshot of another index: %v", err)
	}
	// Every node applied 100, but the floor compacts only to the snapshot.
	prog.Applied(1, 100)
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	if first, _ := st.FirstIndex(); first != 51 {
		t.Fatalf("floor compaction to %d, want the snapshot's 50", first-1)
	}
	if err := st.Compact(51); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact past the snapshot: %v", err)
	}
	if err := st.Compact(40); err != nil { // already compacted: no-op
		t.Fatal(err)
	}
	st = st.Reopen()
	if got, rc, err := st.OpenSnapshot(); err != nil || !sameMeta(got, want) {
		t.Fatalf("after Reopen: %+v %v", got, err)
	} else if b, _ := io.ReadAll(rc); !bytes.Equal(b, data) {
		t.Fatalf("after Reopen: data %q", b)
	}
}

func TestMemStoreInstallSnapshot(t *testing.T) {
	prog := NewProgress(1)
	st := NewMemStore(1, 64, prog)
	_ = st.Append(seqEnts(1, 10, 1))
	_ = st.SetHardState(raft.HardState{Term: 1, Commit: 8})
	data := bytes.Repeat([]byte("kv"), 100)
	bad := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 90, Term: 3, Size: 4, Conf: raft.ConfState{Learners: []raft.NodeID{2}}}}
	if err := st.WriteSnapshotChunk(bad); !errors.Is(err, raft.ErrSnapshotMismatch) || !errors.Is(err, raft.ErrInvalidConf) {
		t.Fatalf("chunk with an invalid Conf: %v", err)
	}
	meta := raft.SnapshotMeta{Index: 90, Term: 3, Size: uint64(len(data)), Conf: jointConf()}
	for off := 0; off < len(data); off += 64 {
		c := raft.SnapshotChunk{Meta: meta, Offset: uint64(off), Data: data[off:min(off+64, len(data))]}
		if err := st.WriteSnapshotChunk(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.WriteSnapshotChunk(raft.SnapshotChunk{Meta: meta, Offset: 7}); !errors.Is(err, raft.ErrSnapshotMismatch) {
		t.Fatalf("chunk at a wrong offset: %v", err)
	}
	meta.CRC = raft.SnapshotCRC(data) ^ 1
	if err := st.InstallSnapshot(meta); !errors.Is(err, raft.ErrSnapshotMismatch) {
		t.Fatalf("wrong CRC: %v", err)
	}
	meta.CRC ^= 1
	other := meta
	other.Conf = raft.ConfState{Voters: []raft.NodeID{1, 2, 3}}
	if err := st.InstallSnapshot(other); !errors.Is(err, raft.ErrSnapshotMismatch) {
		t.Fatalf("install with another Conf than the first chunk's: %v", err)
	}
	if err := st.InstallSnapshot(meta); err != nil {
		t.Fatal(err)
	}
	if got, rc, err := st.Reopen().OpenSnapshot(); err != nil || !sameMeta(got, meta) {
		t.Fatalf("installed snapshot after Reopen: %+v %v", got, err)
	} else {
		_ = rc.Close()
	}
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	term, _ := st.Term(90)
	hs, _ := st.InitialState()
	if first != 91 || last != 90 || term != 3 || hs.Commit != 90 || prog.Floor() != 90 {
		t.Fatalf("after install: first %d last %d term %d commit %d floor %d", first, last, term, hs.Commit, prog.Floor())
	}
	if err := st.Append(seqEnts(91, 95, 3)); err != nil {
		t.Fatal(err)
	}
}

// TestMemStoreMaxSnapshotBytes: an incoming snapshot of exactly the bound
// is accepted, one byte more is refused at its first chunk.
func TestMemStoreMaxSnapshotBytes(t *testing.T) {
	st := NewMemStore(1, 8, nil)
	ok := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 5, Term: 1, Size: MaxSnapshotBytes}}
	if err := st.WriteSnapshotChunk(ok); err != nil {
		t.Fatalf("snapshot of exactly the bound: %v", err)
	}
	big := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 5, Term: 1, Size: MaxSnapshotBytes + 1}}
	if err := st.WriteSnapshotChunk(big); !errors.Is(err, ErrSnapshotTooLarge) || !errors.Is(err, raft.ErrSnapshotMismatch) {
		t.Fatalf("one byte over the bound: %v", err)
	}
	_ = st.Close()
	_, err := st.CreateSnapshot(raft.SnapshotMeta{Index: 1, Term: 1}, writeAll(nil))
	if !errors.Is(err, storage.ErrClosed) || !errors.Is(st.Compact(1), storage.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestFileStoreNoSnapshots: the semihosting store refuses snapshots with
// a sentinel the runtime can recognise, and reports none.
func TestFileStoreNoSnapshots(t *testing.T) {
	st := writeLog(t, t.TempDir(), 10, 10)
	defer st.Close()
	_, err := st.CreateSnapshot(raft.SnapshotMeta{Index: 10, Term: 2, Conf: jointConf()}, writeAll(nil))
	if !errors.Is(err, ErrSnapshotsUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if m, err := st.Snapshot(); err != nil || !m.IsEmpty() {
		t.Fatalf("Snapshot: %+v %v", m, err)
	}
	if _, _, err := st.OpenSnapshot(); !errors.Is(err, storage.ErrNoSnapshot) {
		t.Fatalf("OpenSnapshot: %v", err)
	}
	if err := st.InstallSnapshot(raft.SnapshotMeta{Index: 20}); !errors.Is(err, ErrSnapshotsUnsupported) {
		t.Fatalf("InstallSnapshot: %v", err)
	}
	if err := st.Compact(5); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact: %v", err)
	}
}

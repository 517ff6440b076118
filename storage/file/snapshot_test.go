package file_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/storage/file"
)

func snapData(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeData returns a CreateSnapshot writer of b, in uneven pieces.
func writeData(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		for len(b) > 0 {
			k := min(len(b), 1+len(b)%7919)
			if _, err := w.Write(b[:k]); err != nil {
				return err
			}
			b = b[k:]
		}
		return nil
	}
}

func readSnap(t *testing.T, s *file.Storage) (raft.SnapshotMeta, []byte) {
	t.Helper()
	meta, rc, err := s.OpenSnapshot()
	if err != nil {
		t.Fatalf("OpenSnapshot: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading the snapshot: %v", err)
	}
	return meta, data
}

func mustSnapshot(t testing.TB, s *file.Storage, i raft.Index, data []byte) raft.SnapshotMeta {
	t.Helper()
	return mustSnapshotConf(t, s, i, raft.ConfState{}, data)
}

// mustSnapshotConf makes a snapshot of i under the configuration conf.
func mustSnapshotConf(t testing.TB, s *file.Storage, i raft.Index, conf raft.ConfState, data []byte) raft.SnapshotMeta {
	t.Helper()
	term, err := s.Term(i)
	if err != nil {
		t.Fatalf("Term(%d): %v", i, err)
	}
	meta, err := s.CreateSnapshot(raft.SnapshotMeta{Index: i, Term: term, Conf: conf}, writeData(data))
	if err != nil {
		t.Fatalf("CreateSnapshot(%d): %v", i, err)
	}
	return meta
}

// sameMeta compares snapshot metadata, Conf included.
func sameMeta(a, b raft.SnapshotMeta) bool { return raft.SameSnapshot(a, b) && a.Conf.Equal(b.Conf) }

// Configurations the tests store: a joint one with learners, a plain
// one, and one of raft.MaxMembers members with the largest IDs (the
// longest encoding).
func jointConf() raft.ConfState {
	return raft.ConfState{Voters: []raft.NodeID{1, 2, 4, 5}, VotersOutgoing: []raft.NodeID{1, 2, 3}, Learners: []raft.NodeID{6, 9}}
}

func plainConf() raft.ConfState { return raft.ConfState{Voters: []raft.NodeID{1, 2, 3}} }

func largestConf() raft.ConfState {
	var cs raft.ConfState
	for k := range raft.MaxMembers {
		id := ^raft.NodeID(0) - raft.NodeID(raft.MaxMembers-1-k) // ascending, 10-byte uvarints
		switch {
		case k < 20:
			cs.VotersOutgoing = append(cs.VotersOutgoing, id)
		case k < 40:
			cs.Voters = append(cs.Voters, id)
		default:
			cs.Learners = append(cs.Learners, id)
		}
	}
	return cs
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 200, 200)
	s := mustOpen(t, dir, opts())
	if _, _, err := s.OpenSnapshot(); !errors.Is(err, storage.ErrNoSnapshot) {
		t.Fatalf("no snapshot yet: %v", err)
	}
	confs := []raft.ConfState{jointConf(), {}, plainConf()}
	for k, n := range []int{0, 1, 300 << 10} {
		data := snapData(uint64(k), n)
		i := raft.Index(100 + 10*k)
		want := raft.SnapshotMeta{Index: i, Term: 1, Size: uint64(n), CRC: raft.SnapshotCRC(data), Conf: confs[k]}
		if got := mustSnapshotConf(t, s, i, confs[k], data); !sameMeta(got, want) {
			t.Fatalf("CreateSnapshot: %+v, want %+v", got, want)
		}
		mustClose(t, s)
		s = mustOpen(t, dir, opts())
		if got, _ := s.Snapshot(); !sameMeta(got, want) || !sameMeta(s.Recovery().Snapshot, want) {
			t.Fatalf("after reopen: %+v, want %+v", got, want)
		}
		if meta, got := readSnap(t, s); !sameMeta(meta, want) || !bytes.Equal(got, data) {
			t.Fatalf("snapshot %d: %+v and %d bytes", k, meta, len(got))
		}
		if hs, _ := s.InitialState(); hs.Commit != 200 {
			t.Fatalf("commit %d", hs.Commit)
		}
		checkReadSnapshot(t, s, want, data)
	}
	mustClose(t, s)
	// A flipped data byte is not read at Open; the reader reports it at
	// the end, as a mismatch naming the file.
	path := filepath.Join(dir, "SNAPSHOT")
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	_ = os.WriteFile(path, b, 0o644)
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	_, rc, err := s.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	var ce *file.CorruptError
	if !errors.Is(err, raft.ErrSnapshotMismatch) || !errors.As(err, &ce) || ce.File != path {
		t.Fatalf("damaged snapshot: %v", err)
	}
}

// checkReadSnapshot reads the snapshot through ReadSnapshot in odd pieces.
func checkReadSnapshot(t *testing.T, s *file.Storage, meta raft.SnapshotMeta, data []byte) {
	t.Helper()
	var got []byte
	p := make([]byte, 4093)
	for {
		n, err := s.ReadSnapshot(meta.Index, uint64(len(got)), p)
		if err != nil {
			t.Fatalf("ReadSnapshot at %d: %v", len(got), err)
		}
		if n == 0 {
			break
		}
		got = append(got, p[:n]...)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("ReadSnapshot returned %d bytes, want %d", len(got), len(data))
	}
	if _, err := s.ReadSnapshot(meta.Index+1, 0, p); !errors.Is(err, raft.ErrSnapshotChanged) {
		t.Fatalf("ReadSnapshot of another index: %v", err)
	}
}

// failingReader returns some data, then an error.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("source failed")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestCreateSnapshotRefusals(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, opts())
	defer mustClose(t, s)
	_ = s.SetHardState(raft.HardState{Term: 2, Commit: 50})
	mustAppendSync(t, s, mkEnts(1, 30, 1, 0))
	mustAppendSync(t, s, mkEnts(31, 60, 2, 0))
	if err := s.Compact(10); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact without a snapshot: %v", err)
	}
	old := snapData(1, 5000)
	mustSnapshot(t, s, 40, old)
	if err := s.Append(mkEnts(35, 35, 3, 0)); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Append replacing entries the snapshot covers: %v", err)
	}
	cases := []struct {
		i    raft.Index
		term raft.Term
		want error
	}{{39, 2, raft.ErrCompacted}, {61, 2, raft.ErrUnavailable}, {45, 1, raft.ErrSnapshotMismatch}}
	for _, c := range cases {
		if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: c.i, Term: c.term}, writeData(nil)); !errors.Is(err, c.want) {
			t.Fatalf("CreateSnapshot(%d, %d): %v, want %v", c.i, c.term, err, c.want)
		}
	}
	// A failing source leaves the previous snapshot, no temp file, and a
	// usable storage.
	_, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 50, Term: 2}, func(w io.Writer) error { _, err := io.Copy(w, &failingReader{n: 100000}); return err })
	if err == nil {
		t.Fatal("CreateSnapshot with a failing source succeeded")
	}
	if meta, data := readSnap(t, s); meta.Index != 40 || !bytes.Equal(data, old) {
		t.Fatalf("previous snapshot lost: %+v", meta)
	}
	if _, err := os.Stat(filepath.Join(dir, "SNAPSHOT.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
	if err := s.Compact(41); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact beyond the snapshot: %v", err)
	}
	if err := s.Compact(40); err != nil {
		t.Fatal(err)
	}
	wantIndexes(t, s, 41, 60, 2)
	mustAppendSync(t, s, mkEnts(61, 61, 2, 0))
}

// TestReadSnapshotChanged: a new snapshot turns reads of the old one into
// ErrSnapshotChanged, but a reader opened before keeps reading the old
// data whole.
func TestReadSnapshotChanged(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 50, 50)
	s := mustOpen(t, dir, opts())
	defer mustClose(t, s)
	old := snapData(3, 100000)
	m1 := mustSnapshot(t, s, 20, old)
	_, rc, err := s.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	mustSnapshot(t, s, 30, snapData(4, 10))
	if _, err := s.ReadSnapshot(m1.Index, 0, make([]byte, 10)); !errors.Is(err, raft.ErrSnapshotChanged) {
		t.Fatalf("ReadSnapshot of the replaced snapshot: %v", err)
	}
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("reader of the replaced snapshot: %d bytes, %v", len(got), err)
	}
}

// TestSnapshotFileDamage: SNAPSHOT appears only by rename after an fsync,
// so a bad header, configuration or length is damage, reported with the
// file and offset (0: the header, 40: the configuration's length, 48: the
// configuration, -1: the file's length).
func TestSnapshotFileDamage(t *testing.T) {
	cases := []struct {
		name   string
		damage func([]byte) []byte
		want   error
		off    int64
	}{
		{"header byte", func(b []byte) []byte { b[13] ^= 1; return b }, file.ErrCorrupt, 0},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, file.ErrCorrupt, 0},
		{"short", func(b []byte) []byte { return b[:len(b)-1] }, file.ErrCorrupt, -1},
		{"long", func(b []byte) []byte { return append(b, 0) }, file.ErrCorrupt, -1},
		{"empty", func(b []byte) []byte { return nil }, file.ErrCorrupt, 0},
		{"version 1", func(b []byte) []byte { b[8] = 1; return b }, file.ErrVersion, 0},
		{"version 2", func(b []byte) []byte { b[8] = 2; return b }, file.ErrVersion, 0},
		// The configuration (jointConf: 12 bytes at 48) and its length at 40.
		{"config length beyond the bound", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[40:], 4097); return b }, file.ErrCorrupt, 40},
		{"config length huge", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[40:], 1<<31); return b }, file.ErrCorrupt, 40},
		{"config length changed", func(b []byte) []byte { b[40]++; return b }, file.ErrCorrupt, 0},
		{"config length zeroed", func(b []byte) []byte { b[40] = 0; return b }, file.ErrCorrupt, 0},
		{"config byte", func(b []byte) []byte { b[50] ^= 1; return b }, file.ErrCorrupt, 0},
		{"config cut", func(b []byte) []byte { return b[:55] }, file.ErrCorrupt, 48},
		{"config invalid, checksum valid", func(b []byte) []byte {
			bad := raft.AppendConfState(nil, raft.ConfState{Voters: []raft.NodeID{2, 1, 4, 5}, VotersOutgoing: []raft.NodeID{1, 2, 3}, Learners: []raft.NodeID{6, 9}})
			copy(b[48:60], bad)
			sum := crc32.Update(crc32.Checksum(b[:44], crc32.MakeTable(crc32.Castagnoli)), crc32.MakeTable(crc32.Castagnoli), b[48:60])
			binary.LittleEndian.PutUint32(b[44:], sum)
			return b
		}, file.ErrCorrupt, 48},
		{"data moved into the config", func(b []byte) []byte { return append(b[:48], b[60:]...) }, file.ErrCorrupt, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			buildLog(t, dir, 20, 20)
			s := mustOpen(t, dir, opts())
			mustSnapshotConf(t, s, 10, jointConf(), snapData(5, 300))
			mustClose(t, s)
			path := filepath.Join(dir, "SNAPSHOT")
			b, _ := os.ReadFile(path)
			_ = os.WriteFile(path, c.damage(b), 0o644)
			_, err := file.Open(dir, opts())
			var ce *file.CorruptError
			if !errors.Is(err, c.want) || (c.want == file.ErrCorrupt && (!errors.As(err, &ce) || ce.File != path || ce.Offset != c.off)) {
				t.Fatalf("Open: %v, want %v at offset %d", err, c.want, c.off)
			}
		})
	}
}

const snapChildEnv = "EMBRAFT_SNAPSHOT_CHILD"

// slowWriter writes data slowly so that the parent kills the child while
// SNAPSHOT.tmp is being written.
func slowWriter(w io.Writer) error {
	p := make([]byte, 4096)
	for i := range p {
		p[i] = byte(i)
	}
	for {
		time.Sleep(time.Millisecond)
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
}

// snapshotChild creates a snapshot that never finishes.
func snapshotChild() int {
	s, err := file.Open(os.Getenv(crashDirEnv), opts())
	if err != nil {
		return 2
	}
	os.Stdout.WriteString("R\n")
	_, _ = s.CreateSnapshot(raft.SnapshotMeta{Index: 15, Term: 1, Conf: plainConf()}, slowWriter)
	return 3
}

// TestSnapshotCrash kills a process in the middle of CreateSnapshot: the
// previous snapshot survives and Open removes the temp file.
func TestSnapshotCrash(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 20, 20)
	s := mustOpen(t, dir, opts())
	old := snapData(2, 70000)
	want := mustSnapshotConf(t, s, 5, jointConf(), old)
	mustClose(t, s)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+snapChildEnv, crashDirEnv+"="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() { readLines(out, ready) }()
	<-ready
	tmp := filepath.Join(dir, "SNAPSHOT.tmp")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if st, err := os.Stat(tmp); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never wrote SNAPSHOT.tmp")
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("no temp file after the kill: %v", err)
	}
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	if meta, data := readSnap(t, s); !sameMeta(meta, want) || !bytes.Equal(data, old) {
		t.Fatalf("previous snapshot not intact: %+v", meta)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temp file not removed: %v", err)
	}
}

// TestSnapshotConf: the configuration given to CreateSnapshot, or announced
// by an incoming snapshot's first chunk, is stored in SNAPSHOT between the
// header and the data, and comes back from Snapshot, OpenSnapshot and
// Recovery after reopens; the data around it reads back whole. An invalid
// configuration is refused before anything is written.
func TestSnapshotConf(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 200, 200)
	s := mustOpen(t, dir, opts())
	defer func() { mustClose(t, s) }()
	check := func(what string, want raft.SnapshotMeta, data []byte) {
		t.Helper()
		got, _ := s.Snapshot()
		meta, d := readSnap(t, s)
		if !sameMeta(got, want) || !sameMeta(meta, want) || !bytes.Equal(d, data) {
			t.Fatalf("%s: Snapshot %+v, OpenSnapshot %+v (%d bytes), want %+v", what, got, meta, len(d), want)
		}
		checkReadSnapshot(t, s, want, data)
		var confLen int
		if !want.Conf.IsEmpty() {
			confLen = len(raft.AppendConfState(nil, want.Conf))
		}
		if st, err := os.Stat(filepath.Join(dir, "SNAPSHOT")); err != nil || st.Size() != int64(48+confLen)+int64(len(data)) {
			t.Fatalf("%s: SNAPSHOT of %d bytes (%v), want 48 + %d + %d", what, st.Size(), err, confLen, len(data))
		}
	}
	reopen := func(what string, want raft.SnapshotMeta, data []byte) {
		t.Helper()
		mustClose(t, s)
		s = mustOpen(t, dir, opts())
		if !sameMeta(s.Recovery().Snapshot, want) {
			t.Fatalf("%s: Recovery().Snapshot %+v, want %+v", what, s.Recovery().Snapshot, want)
		}
		check(what+", reopened", want, data)
	}
	var last raft.SnapshotMeta
	var lastData []byte
	for k, conf := range []raft.ConfState{largestConf(), jointConf(), {}, plainConf()} {
		data := snapData(uint64(k), 5000+k)
		i := raft.Index(100 + 10*k)
		c := conf.Clone()
		meta := mustSnapshotConf(t, s, i, c, data)
		if len(c.Voters) > 0 {
			c.Voters[0] = 77 // the caller reuses its slices: the storage kept a copy
		}
		want := raft.SnapshotMeta{Index: i, Term: 1, Size: uint64(len(data)), CRC: raft.SnapshotCRC(data), Conf: conf}
		if !sameMeta(meta, want) {
			t.Fatalf("CreateSnapshot: %+v, want %+v", meta, want)
		}
		check(fmt.Sprintf("snapshot %d", k), want, data)
		reopen(fmt.Sprintf("snapshot %d", k), want, data)
		last, lastData = want, data
	}
	if n := len(raft.AppendConfState(nil, largestConf())); n < 600 || n > 4096 {
		t.Fatalf("the largest configuration encodes in %d bytes", n)
	}

	// Refused configurations: nothing changes, no file is left.
	var overfull raft.ConfState
	for id := range raft.NodeID(raft.MaxMembers + 1) {
		overfull.Voters = append(overfull.Voters, id+1)
	}
	for _, bad := range []raft.ConfState{
		{Voters: []raft.NodeID{2, 1}},
		{Voters: []raft.NodeID{1, 2}, Learners: []raft.NodeID{2}},
		{Voters: []raft.NodeID{1}, VotersOutgoing: []raft.NodeID{3}, Learners: []raft.NodeID{3}},
		{Learners: []raft.NodeID{3}},
		{Voters: []raft.NodeID{0, 1}},
		{Voters: []raft.NodeID{1, 2, 3}, VotersOutgoing: []raft.NodeID{4, 3}},
		overfull, // raft.MaxMembers + 1
	} {
		_, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 190, Term: 1, Conf: bad}, writeData(nil))
		if !errors.Is(err, raft.ErrInvalidConf) {
			t.Fatalf("CreateSnapshot with %+v: %v", bad, err)
		}
		c := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 300, Term: 2, Size: 10, Conf: bad}, Data: make([]byte, 5)}
		if err := s.WriteSnapshotChunk(c); !errors.Is(err, raft.ErrInvalidConf) || !errors.Is(err, raft.ErrSnapshotMismatch) {
			t.Fatalf("WriteSnapshotChunk with %+v: %v", bad, err)
		}
	}
	for _, name := range []string{"SNAPSHOT.tmp", "SNAPSHOT.incoming"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Fatalf("%s left after a refusal: %v", name, err)
		}
	}
	check("after refusals", last, lastData)

	// Installed from a leader: the Conf the first chunk announced. Later
	// chunks' Conf is not looked at; the install's must be the same.
	data := snapData(77, 30000)
	in := raft.SnapshotMeta{Index: 300, Term: 2, Size: uint64(len(data)), Conf: jointConf()}
	for off := 0; off < len(data); off += 7000 {
		m := in
		if off > 0 {
			m.Conf = raft.ConfState{}
		}
		if err := s.WriteSnapshotChunk(raft.SnapshotChunk{Meta: m, Offset: uint64(off), Data: data[off:min(off+7000, len(data))]}); err != nil {
			t.Fatal(err)
		}
	}
	in.CRC = raft.SnapshotCRC(data)
	for _, other := range []raft.ConfState{{}, plainConf(), largestConf()} {
		m := in
		m.Conf = other
		if err := s.InstallSnapshot(m); !errors.Is(err, raft.ErrSnapshotMismatch) {
			t.Fatalf("install with Conf %+v, chunks announced %+v: %v", other, in.Conf, err)
		}
	}
	if err := s.InstallSnapshot(in); err != nil {
		t.Fatal(err)
	}
	check("installed", in, data)
	reopen("installed", in, data)
	wantIndexes(t, s, 301, 300, 2)
}

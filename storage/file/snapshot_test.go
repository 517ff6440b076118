package file_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/embraft/embraft/raft"
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

func readSnap(t *testing.T, s *file.Storage) (file.SnapshotMeta, []byte) {
	t.Helper()
	meta, rc, err := s.OpenSnapshot()
	if err != nil {
		t.Fatalf("OpenSnapshot: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return meta, data
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, opts())
	if _, _, err := s.OpenSnapshot(); !errors.Is(err, file.ErrNoSnapshot) {
		t.Fatalf("no snapshot yet: %v", err)
	}
	for k, n := range []int{0, 1, 300 << 10} {
		want := file.SnapshotMeta{Index: raft.Index(100 + 10*k), Term: 7, Config: []byte("1,2,3")}
		data := snapData(uint64(k), n)
		if err := s.SaveSnapshot(want, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		mustClose(t, s)
		s = mustOpen(t, dir, opts())
		meta, got := readSnap(t, s)
		if meta.Index != want.Index || meta.Term != want.Term || string(meta.Config) != string(want.Config) || !bytes.Equal(got, data) {
			t.Fatalf("snapshot %d: got %+v and %d bytes", k, meta, len(got))
		}
	}
	mustClose(t, s)
	// A flipped data byte is caught before any data is handed out.
	path := filepath.Join(dir, "SNAPSHOT")
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	_ = os.WriteFile(path, b, 0o644)
	s = mustOpen(t, dir, opts())
	defer mustClose(t, s)
	if _, _, err := s.OpenSnapshot(); !errors.Is(err, file.ErrCorrupt) {
		t.Fatalf("damaged snapshot: %v", err)
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

// TestSnapshotReaderError: a failing source leaves the previous snapshot
// and the storage usable, and no temp file.
func TestSnapshotReaderError(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, opts())
	defer mustClose(t, s)
	old := snapData(1, 5000)
	if err := s.SaveSnapshot(file.SnapshotMeta{Index: 5, Term: 1}, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(file.SnapshotMeta{Index: 9, Term: 2}, &failingReader{n: 100000}); err == nil {
		t.Fatal("SaveSnapshot with a failing reader succeeded")
	}
	if meta, data := readSnap(t, s); meta.Index != 5 || !bytes.Equal(data, old) {
		t.Fatalf("previous snapshot lost: %+v", meta)
	}
	if _, err := os.Stat(filepath.Join(dir, "SNAPSHOT.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
	mustAppendSync(t, s, mkEnts(1, 3, 1, 0))
}

const snapChildEnv = "EMBRAFT_SNAPSHOT_CHILD"

// slowReader yields data slowly so that the parent kills the child while
// SNAPSHOT.tmp is being written.
type slowReader struct{}

func (slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// snapshotChild saves a snapshot that never finishes.
func snapshotChild() int {
	s, err := file.Open(os.Getenv(crashDirEnv), opts())
	if err != nil {
		return 2
	}
	os.Stdout.WriteString("R\n")
	_ = s.SaveSnapshot(file.SnapshotMeta{Index: 99, Term: 9}, slowReader{})
	return 3
}

// TestSnapshotCrash kills a process in the middle of SaveSnapshot: the
// previous snapshot survives and Open removes the temp file.
func TestSnapshotCrash(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, opts())
	old := snapData(2, 70000)
	if err := s.SaveSnapshot(file.SnapshotMeta{Index: 5, Term: 1, Config: []byte("c")}, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
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
	if meta, data := readSnap(t, s); meta.Index != 5 || string(meta.Config) != "c" || !bytes.Equal(data, old) {
		t.Fatalf("previous snapshot not intact: %+v", meta)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temp file not removed: %v", err)
	}
}

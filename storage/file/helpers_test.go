package file_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
)

func TestMain(m *testing.M) {
	switch os.Getenv(crashChildEnv) {
	case "":
	case snapChildEnv:
		os.Exit(snapshotChild())
	default:
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

const (
	testCluster = 7
	testNode    = 3
)

func opts(mut ...func(*file.Options)) file.Options {
	o := file.Options{ClusterID: testCluster, NodeID: testNode, SegmentBytes: file.MinSegmentBytes}
	for _, f := range mut {
		f(&o)
	}
	return o
}

func mustOpen(t testing.TB, dir string, o file.Options) *file.Storage {
	t.Helper()
	s, err := file.Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// payload derives an entry's data from its index, term and a round number,
// so that a reader can check an entry without knowing what was written.
func payload(i raft.Index, t raft.Term, round int) []byte {
	n := int((uint64(i)*7919 + uint64(t)*31 + uint64(round)) % 160)
	b := binary.AppendUvarint(nil, uint64(i))
	b = binary.AppendUvarint(b, uint64(t))
	b = binary.AppendUvarint(b, uint64(round))
	for k := range n {
		b = append(b, byte(uint64(i)*131+uint64(k)*17+uint64(t)*7+uint64(round)*3))
	}
	return b
}

// checkPayload returns the round an entry was written in, or an error if
// its data is not payload(e.Index, e.Term, round).
func checkPayload(e raft.Entry) (int, error) {
	b := e.Data
	var v [3]uint64
	for k := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errors.New("payload header unreadable")
		}
		v[k], b = x, b[n:]
	}
	if raft.Index(v[0]) != e.Index || raft.Term(v[1]) != e.Term {
		return 0, errors.New("payload names another index or term")
	}
	if string(payload(e.Index, e.Term, int(v[2]))) != string(e.Data) {
		return 0, errors.New("payload bytes differ")
	}
	return int(v[2]), nil
}

func mkEnts(lo, hi raft.Index, t raft.Term, round int) []raft.Entry {
	var out []raft.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, raft.Entry{Index: i, Term: t, Data: payload(i, t, round)})
	}
	return out
}

func mustAppendSync(t testing.TB, s *file.Storage, ents []raft.Entry) {
	t.Helper()
	if err := s.Append(ents); err != nil {
		t.Fatalf("Append [%d..]: %v", ents[0].Index, err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func mustClose(t testing.TB, s *file.Storage) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// allEntries reads the whole stored log.
func allEntries(t testing.TB, s *file.Storage) []raft.Entry {
	t.Helper()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	ents, err := s.Entries(first, last+1, 1<<62)
	if err != nil {
		t.Fatalf("Entries(%d, %d): %v", first, last+1, err)
	}
	if len(ents) != int(last+1-first) {
		t.Fatalf("Entries returned %d entries, want %d", len(ents), last+1-first)
	}
	return ents
}

// segments lists the segment files of dir, oldest first.
func segments(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// faultFS wraps the OS file system with injectable faults.
type faultFS struct {
	file.OSFS
	mu sync.Mutex
	// budget is how many more bytes writes may store; below 0, unlimited.
	// A write that exceeds it stores the bytes that fit and fails.
	budget   int64
	writeErr error
	// syncErr, when set, fails every Sync from then on.
	syncErr error
	// chunk > 0 splits every write into pieces of at most chunk bytes
	// (one syscall each), so that a killed process leaves torn records.
	chunk  int
	writes int
}

func newFaultFS() *faultFS { return &faultFS{budget: -1, writeErr: syscall.ENOSPC} }

func (fs *faultFS) OpenFile(name string, flag int, perm os.FileMode) (file.File, error) {
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) setBudget(n int64) {
	fs.mu.Lock()
	fs.budget = n
	fs.mu.Unlock()
}

func (fs *faultFS) setSyncErr(err error) {
	fs.mu.Lock()
	fs.syncErr = err
	fs.mu.Unlock()
}

type faultFile struct {
	file.File
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	allowed, failErr := len(p), error(nil)
	if f.fs.budget >= 0 && int64(len(p)) > f.fs.budget {
		allowed, failErr = int(f.fs.budget), f.fs.writeErr
	}
	if f.fs.budget >= 0 {
		f.fs.budget -= int64(allowed)
	}
	chunk := f.fs.chunk
	f.fs.writes++
	seed := f.fs.writes
	f.fs.mu.Unlock()
	n, err := f.writeChunks(p[:allowed], off, chunk, seed)
	if err == nil {
		err = failErr
	}
	return n, err
}

func (f *faultFile) writeChunks(p []byte, off int64, chunk, seed int) (int, error) {
	if chunk <= 0 {
		return f.File.WriteAt(p, off)
	}
	done := 0
	for done < len(p) {
		k := min(len(p)-done, 1+(seed*7919+done*31)%chunk)
		n, err := f.File.WriteAt(p[done:done+k], off+int64(done))
		done += n
		if err != nil {
			return done, err
		}
		if (seed+done)%61 == 0 {
			time.Sleep(20 * time.Microsecond) // widen the window for a kill mid-record
		}
	}
	return done, nil
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	err := f.fs.syncErr
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Sync()
}

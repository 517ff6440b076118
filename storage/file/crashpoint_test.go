package file_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
)

// crashFS simulates a process crash at a chosen mutating call (a create,
// write, truncate, fsync, rename or remove): that call panics instead
// (a write first stores half its bytes, like a write torn by a kill), and
// every earlier call is complete. That is exactly what a killed process
// leaves, since the page cache survives it; power loss is out of scope, as
// for TestCrashRecovery. Enumerating the crash point over every mutating
// call of an operation tests every step of it deterministically.
type crashFS struct {
	file.OSFS
	left  int // mutating calls that complete before the crash; < 0: none
	files []file.File
}

// crashNow is the panic value of a simulated crash.
type crashNow struct{}

func (fs *crashFS) step() {
	if fs.left == 0 {
		panic(crashNow{})
	}
	if fs.left > 0 {
		fs.left--
	}
}

func (fs *crashFS) OpenFile(name string, flag int, perm os.FileMode) (file.File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		fs.step()
	}
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	fs.files = append(fs.files, f)
	return &crashFile{File: f, fs: fs}, nil
}

func (fs *crashFS) Remove(name string) error { fs.step(); return fs.OSFS.Remove(name) }

func (fs *crashFS) Rename(from, to string) error { fs.step(); return fs.OSFS.Rename(from, to) }

// closeAll closes what the crashed storage left open.
func (fs *crashFS) closeAll() {
	for _, f := range fs.files {
		_ = f.Close()
	}
}

type crashFile struct {
	file.File
	fs *crashFS
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.left == 0 {
		_, _ = f.File.WriteAt(p[:len(p)/2], off)
	}
	f.fs.step()
	return f.File.WriteAt(p, off)
}

func (f *crashFile) Truncate(n int64) error { f.fs.step(); return f.File.Truncate(n) }

func (f *crashFile) Sync() error { f.fs.step(); return f.File.Sync() }

// crashPoints runs op on a copy of template once for every crash point, k
// = 0, 1, ... mutating calls, until op completes; after each run it
// reopens the directory, hands it to check (done: op completed), and
// reopens it once more, which must repair nothing. It returns the number
// of crash points.
func crashPoints(t *testing.T, template string, op func(*file.Storage) error, check func(t *testing.T, s *file.Storage, done bool)) int {
	t.Helper()
	for k := 0; k < 10000; k++ {
		dir := t.TempDir()
		copyDir(t, template, dir)
		fs := &crashFS{left: -1}
		s := mustOpen(t, dir, opts(func(o *file.Options) { o.FS = fs }))
		fs.left = k
		done := runToCrash(t, func() error { return op(s) })
		fs.closeAll()
		t.Run("", func(t *testing.T) {
			s := mustOpen(t, dir, opts())
			defer mustClose(t, s)
			check(t, s, done)
			mustAppendSync(t, s, mkEnts(lastIndex(s)+1, lastIndex(s)+1, 20, 0))
		})
		s = mustOpen(t, dir, opts())
		if rec := s.Recovery(); rec.RemovedFiles != 0 || rec.TornBytes != 0 || rec.LogDiscarded {
			t.Fatalf("crash after %d calls: second open repaired again: %+v", k, rec)
		}
		mustClose(t, s)
		if done {
			return k
		}
	}
	t.Fatal("the operation never completed")
	return 0
}

// runToCrash runs f, reporting whether it completed (false: it crashed).
func runToCrash(t *testing.T, f func() error) (done bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crashNow); !ok {
				panic(r)
			}
			done = false
		}
	}()
	if err := f(); err != nil {
		t.Fatalf("operation failed: %v", err)
	}
	return true
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	des, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(from, de.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(to, de.Name()), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func lastIndex(s *file.Storage) raft.Index {
	l, _ := s.LastIndex()
	return l
}

// wantLog checks that the log is first..last, every entry intact and of
// the term snapLogDir gave it.
func wantLog(t *testing.T, s *file.Storage, first, last raft.Index) {
	t.Helper()
	wantIndexes(t, s, first, last, snapLogTerm(first-1))
	for _, e := range allEntries(t, s) {
		if _, err := checkPayload(e); err != nil || e.Term != snapLogTerm(e.Index) {
			t.Fatalf("entry %d (term %d): %v", e.Index, e.Term, err)
		}
	}
}

func wantSnapshot(t *testing.T, s *file.Storage, meta raft.SnapshotMeta, data []byte) {
	t.Helper()
	if got, d := readSnap(t, s); !sameMeta(got, meta) || !bytes.Equal(d, data) {
		t.Fatalf("snapshot %+v (%d bytes), want %+v", got, len(d), meta)
	}
	if hs, _ := s.InitialState(); hs.Commit < meta.Index {
		t.Fatalf("commit %d below the snapshot's index %d", hs.Commit, meta.Index)
	}
}

var oldSnap = raft.SnapshotMeta{Index: 30, Term: snapLogTerm(30), Size: 3000, CRC: raft.SnapshotCRC(snapData(30, 3000)), Conf: plainConf()}

// TestCrashPointsCreateSnapshot: a crash anywhere in CreateSnapshot leaves
// the old snapshot or the new one, whole (its configuration included), and
// the log untouched.
func TestCrashPointsCreateSnapshot(t *testing.T) {
	tmpl := t.TempDir()
	snapLogDir(t, tmpl)
	data := snapData(60, 50000)
	meta := raft.SnapshotMeta{Index: 60, Term: snapLogTerm(60), Size: 50000, CRC: raft.SnapshotCRC(data), Conf: jointConf()}
	n := crashPoints(t, tmpl, func(s *file.Storage) error {
		_, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 60, Term: snapLogTerm(60), Conf: jointConf()}, writeData(data))
		return err
	}, func(t *testing.T, s *file.Storage, done bool) {
		if got, _ := s.Snapshot(); sameMeta(got, meta) {
			wantSnapshot(t, s, meta, data)
		} else if done {
			t.Fatalf("completed, but the snapshot is %+v", got)
		} else {
			wantSnapshot(t, s, oldSnap, snapData(30, 3000))
		}
		wantLog(t, s, 21, 100)
	})
	t.Logf("%d crash points", n)
}

// TestCrashPointsCompact: a crash anywhere in Compact leaves the old or the
// new compaction point, every entry after it intact.
func TestCrashPointsCompact(t *testing.T) {
	tmpl := t.TempDir()
	snapLogDir(t, tmpl)
	s := mustOpen(t, tmpl, opts())
	mustSnapshot(t, s, 60, snapData(60, 500))
	mustClose(t, s)
	n := crashPoints(t, tmpl, func(s *file.Storage) error { return s.Compact(55) },
		func(t *testing.T, s *file.Storage, done bool) {
			first, _ := s.FirstIndex()
			if first != 56 && (done || first != 21) {
				t.Fatalf("first index %d (done %v)", first, done)
			}
			wantLog(t, s, first, 100)
		})
	t.Logf("%d crash points", n)
}

// TestCrashPointsInstallSnapshot: a crash anywhere in receiving and
// installing a snapshot (in a chunk, after the incoming file, after the
// rename, during the log's removal) leaves the old state, or the new
// snapshot with the log restarted after it, or — only if the old log holds
// the snapshot's last entry with its term — the new snapshot beside that
// log (or a prefix of it: segments go newest first), never anything else.
func TestCrashPointsInstallSnapshot(t *testing.T) {
	cases := []struct {
		name  string
		index raft.Index
		term  raft.Term
	}{
		{"beyond the log", 150, 5},
		{"inside the log, other term", 80, 9},
		{"inside the log, same term", 80, snapLogTerm(80)},
	}
	tmpl := t.TempDir()
	snapLogDir(t, tmpl)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := snapData(uint64(c.index), 20000)
			meta := raft.SnapshotMeta{Index: c.index, Term: c.term, Size: 20000, CRC: raft.SnapshotCRC(data), Conf: largestConf()}
			kept := 0
			n := crashPoints(t, tmpl, func(s *file.Storage) error {
				return s.InstallSnapshot(sendSnapshotConf(t, s, meta, data, 7000))
			}, func(t *testing.T, s *file.Storage, done bool) {
				got, _ := s.Snapshot()
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				switch {
				case sameMeta(got, oldSnap) && !done:
					wantSnapshot(t, s, oldSnap, snapData(30, 3000))
					wantLog(t, s, 21, 100)
				case !sameMeta(got, meta):
					t.Fatalf("snapshot %+v", got)
				case first == c.index+1 && last == c.index:
					wantSnapshot(t, s, meta, data)
					wantIndexes(t, s, first, last, c.term)
				case c.term == snapLogTerm(c.index) && !done && last >= c.index:
					wantSnapshot(t, s, meta, data)
					wantLog(t, s, 21, last)
					kept++
				default:
					t.Fatalf("new snapshot with the log %d..%d (done %v)", first, last, done)
				}
			})
			t.Logf("%d crash points, %d with the old log kept", n, kept)
		})
	}
}

// TestCrashPointsOpenDiscard: a crash while Open discards a log that does
// not reach the snapshot leaves a directory the next Open finishes.
func TestCrashPointsOpenDiscard(t *testing.T) {
	tmpl := t.TempDir()
	snapLogDir(t, tmpl)
	snapshotFileFor(t, tmpl, 150, 5)
	for k := 0; ; k++ {
		dir := t.TempDir()
		copyDir(t, tmpl, dir)
		fs := &crashFS{left: k}
		done := runToCrash(t, func() error {
			s, err := file.Open(dir, opts(func(o *file.Options) { o.FS = fs }))
			if err == nil {
				err = s.Close()
			}
			return err
		})
		fs.closeAll()
		s := mustOpen(t, dir, opts())
		wantIndexes(t, s, 151, 150, 5)
		mustClose(t, s)
		if done {
			t.Logf("%d crash points", k)
			return
		}
	}
}

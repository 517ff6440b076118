package mcu

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/storage/file"
)

// testStore is what both firmware stores offer.
type testStore interface {
	storage.Storage
}

// randomAppend returns a batch that follows on from, or overlaps, a log
// whose last index is last, with terms not below the entry it follows.
func randomAppend(rng *rand.Rand, ref *raft.MemoryStorage, lo raft.Index, term *raft.Term) []raft.Entry {
	last, _ := ref.LastIndex()
	first := last + 1
	if last >= lo && rng.IntN(4) == 0 {
		first = lo + raft.Index(rng.IntN(int(last-lo)+1)) // overlap: replace a suffix
	}
	if rng.IntN(5) == 0 {
		*term++
	}
	prev, _ := ref.Term(first - 1)
	t := max(*term, prev)
	n := 1 + rng.IntN(6)
	ents := make([]raft.Entry, n)
	for i := range ents {
		data := []byte("e" + strconv.Itoa(int(first)+i) + "t" + strconv.Itoa(int(t)))
		typ := raft.EntryNormal
		if rng.IntN(8) == 0 {
			typ, data = raft.EntryNoop, nil
		}
		ents[i] = raft.Entry{Index: first + raft.Index(i), Term: t, Type: typ, Data: data}
	}
	return ents
}

// compare checks st against the reference over st's window.
func compare(t *testing.T, st testStore, ref *raft.MemoryStorage) {
	t.Helper()
	l1, _ := st.LastIndex()
	l2, _ := ref.LastIndex()
	if l1 != l2 {
		t.Fatalf("LastIndex %d, want %d", l1, l2)
	}
	first, _ := st.FirstIndex()
	for i := first - 1; i <= l1; i++ {
		a, err1 := st.Term(i)
		b, err2 := ref.Term(i)
		if a != b || (err1 == nil) != (err2 == nil) {
			t.Fatalf("Term(%d) = %d, %v; want %d, %v", i, a, err1, b, err2)
		}
	}
	if first <= l1 {
		for _, maxBytes := range []int{0, 10, 1 << 20} {
			a, err := st.Entries(first, l1+1, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := ref.Entries(first, l1+1, maxBytes)
			if len(a) != len(b) {
				t.Fatalf("Entries(%d, %d, %d): %d entries, want %d", first, l1+1, maxBytes, len(a), len(b))
			}
			for k := range a {
				if a[k].Index != b[k].Index || a[k].Term != b[k].Term || a[k].Type != b[k].Type || !bytes.Equal(a[k].Data, b[k].Data) {
					t.Fatalf("entry %d = %+v, want %+v", a[k].Index, a[k], b[k])
				}
			}
		}
	}
	if _, err := st.Entries(first-1, l1+1, 0); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries below the window: %v, want ErrCompacted", err)
	}
	if _, err := st.Entries(first, l1+2, 0); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries past the end: %v, want ErrUnavailable", err)
	}
}

// TestStoresMatchMemoryStorage drives both stores and raft.MemoryStorage
// through the same random appends (with suffix replacement), reopening
// the file store now and then, and compares what they answer.
func TestStoresMatchMemoryStorage(t *testing.T) {
	for _, kind := range []string{"memory", "file"} {
		t.Run(kind, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			ref := raft.NewMemoryStorage()
			prog := NewProgress(1)
			dir := t.TempDir()
			var st testStore
			reopen := func() {
				if kind == "memory" {
					if st == nil {
						st = NewMemStore(1, 64, prog)
					}
					return
				}
				if st != nil {
					if err := st.Close(); err != nil {
						t.Fatal(err)
					}
				}
				fs, _, err := OpenFile(FileOptions{Dir: dir, NodeID: 1, MaxEntries: 64, Progress: prog})
				if err != nil {
					t.Fatal(err)
				}
				st = fs
			}
			reopen()
			term := raft.Term(1)
			commit := raft.Index(0)
			for step := range 400 {
				ents := randomAppend(rng, ref, commit+1, &term)
				if err := st.Append(ents); err != nil {
					t.Fatalf("step %d: Append(%d..): %v", step, ents[0].Index, err)
				}
				_ = ref.Append(ents)
				last, _ := ref.LastIndex()
				lt, _ := ref.Term(last)
				if rng.IntN(3) == 0 {
					commit = last // commit everything: the floor may pass it
					prog.Applied(1, commit)
				}
				hs := raft.HardState{Term: max(term, lt), Vote: 1, Commit: commit}
				ref.SetHardState(hs)
				if err := st.SetHardState(hs); err != nil {
					t.Fatal(err)
				}
				if err := st.Sync(); err != nil {
					t.Fatal(err)
				}
				if rng.IntN(20) == 0 {
					reopen()
					got, _ := st.InitialState()
					if got != hs {
						t.Fatalf("after reopen: hard state %+v, want %+v", got, hs)
					}
				}
				compare(t, st, ref)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWindowBound(t *testing.T) {
	st := NewMemStore(1, 8, nil) // no progress: never compacted
	ents := make([]raft.Entry, 8)
	for i := range ents {
		ents[i] = raft.Entry{Index: raft.Index(i + 1), Term: 1}
	}
	if err := st.Append(ents); err != nil {
		t.Fatal(err)
	}
	err := st.Append([]raft.Entry{{Index: 9, Term: 1}})
	if !errors.Is(err, storage.ErrFull) {
		t.Fatalf("Append beyond the window: %v, want storage.ErrFull", err)
	}
	prog := NewProgress(2)
	st = NewMemStore(1, 8, prog)
	_ = st.Append(ents)
	prog.Applied(1, 8)
	if err := st.Append([]raft.Entry{{Index: 9, Term: 1}}); !errors.Is(err, storage.ErrFull) {
		t.Fatalf("the floor is the minimum over all nodes: %v, want storage.ErrFull", err)
	}
	prog.Applied(2, 5)
	if err := st.Append([]raft.Entry{{Index: 9, Term: 1}}); err != nil {
		t.Fatalf("after the floor rose to 5: %v", err)
	}
	if fi, _ := st.FirstIndex(); fi != 6 {
		t.Fatalf("FirstIndex = %d, want 6", fi)
	}
	if tm, err := st.Term(5); err != nil || tm != 1 {
		t.Fatalf("Term(FirstIndex-1) = %d, %v", tm, err)
	}
	if err := st.Append([]raft.Entry{{Index: 11, Term: 1}}); !errors.Is(err, ErrInvalidEntries) {
		t.Fatalf("gap: %v", err)
	}
	if err := st.Append([]raft.Entry{{Index: 10, Term: 0}}); !errors.Is(err, ErrInvalidEntries) {
		t.Fatalf("decreasing term: %v", err)
	}
	if err := st.Append([]raft.Entry{{Index: 3, Term: 2}}); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("below the window: %v", err)
	}
}

func writeLog(t *testing.T, dir string, n int, commit raft.Index) *FileStore {
	t.Helper()
	st, rec, err := OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Created {
		t.Fatal("a fresh directory was not reported created")
	}
	for i := 1; i <= n; i++ {
		e := raft.Entry{Index: raft.Index(i), Term: raft.Term(1 + i/10), Data: []byte("cmd-" + strconv.Itoa(i))}
		if err := st.Append([]raft.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetHardState(raft.HardState{Term: raft.Term(1 + n/10), Vote: 2, Commit: commit}); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFileStoreRecovery(t *testing.T) {
	dir := t.TempDir()
	st := writeLog(t, dir, 30, 20)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var replayed []raft.Index
	st, rec, err := OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 2, MaxEntries: 16,
		Replay: func(e *raft.Entry) {
			if string(e.Data) != "cmd-"+strconv.Itoa(int(e.Index)) {
				t.Fatalf("replayed %q at %d", e.Data, e.Index)
			}
			replayed = append(replayed, e.Index)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Created || rec.Records != 30 || rec.Replayed != 20 || rec.LastIndex != 30 || rec.HardState.Commit != 20 {
		t.Fatalf("recovery %+v", rec)
	}
	if len(replayed) != 20 || replayed[19] != 20 {
		t.Fatalf("replayed %v", replayed)
	}
	if rec.FirstIndex < 15 || rec.FirstIndex > 21 {
		t.Fatalf("window starts at %d: want the last <=16 entries, and nothing uncommitted dropped", rec.FirstIndex)
	}
	// Replace a suffix that was written: the file is cut and rewritten.
	if err := st.Append([]raft.Entry{{Index: 25, Term: 9, Data: []byte("new")}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetHardState(raft.HardState{Term: 9, Commit: 25}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, rec, err = OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rec.LastIndex != 25 || rec.HardState != (raft.HardState{Term: 9, Commit: 25}) {
		t.Fatalf("after the suffix replacement: %+v", rec)
	}
	if ents, _ := st.Entries(25, 26, 100); len(ents) != 1 || string(ents[0].Data) != "new" || ents[0].Term != 9 {
		t.Fatalf("entry 25 = %+v", ents)
	}
	_ = st.Close()
	if _, err := os.Stat(filepath.Join(dir, segmentName+tmpSuffix)); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

// TestFileStoreTornTailAndCorruption: a bad last frame above the commit
// index is cut; any other damage refuses to open.
func TestFileStoreTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	_ = writeLog(t, dir, 12, 10).Close()
	seg := filepath.Join(dir, segmentName)
	good, _ := os.ReadFile(seg)

	// A torn tail: half of a 13th frame.
	var e13 []byte
	e13 = appendFrame(e13, &raft.Entry{Index: 13, Term: 2, Data: []byte("torn")})
	_ = os.WriteFile(seg, append(append([]byte{}, good...), e13[:len(e13)/2]...), 0o644)
	st, rec, err := OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rec.TornBytes != int64(len(e13)/2) || rec.LastIndex != 12 {
		t.Fatalf("torn tail not cut: %+v", rec)
	}
	_ = st.Close()
	if b, _ := os.ReadFile(seg); !bytes.Equal(b, good) {
		t.Fatal("the file was not cut back to its last good frame")
	}

	// The last frame damaged: above the commit index (12 > 10) it is a
	// torn tail and is cut...
	bad := append([]byte{}, good...)
	bad[len(bad)-2] ^= 0xFF
	_ = os.WriteFile(seg, bad, 0o644)
	if st, rec, err := OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 2}); err != nil || rec.LastIndex != 11 {
		t.Fatalf("damaged last uncommitted frame: %v %+v (want it cut)", err, rec)
	} else {
		_ = st.Close()
	}
	_ = os.WriteFile(seg, good, 0o644)
	// ... at or below it, an acknowledged entry is damaged: corrupt.
	dir2 := t.TempDir()
	_ = writeLog(t, dir2, 12, 12).Close()
	seg2 := filepath.Join(dir2, segmentName)
	b2, _ := os.ReadFile(seg2)
	b2[len(b2)-2] ^= 0xFF
	_ = os.WriteFile(seg2, b2, 0o644)
	if _, _, err := OpenFile(FileOptions{Dir: dir2, ClusterID: 9, NodeID: 2}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged committed last frame: %v, want ErrCorrupt", err)
	}

	// A flipped byte in the middle of the log: corrupt, whatever the index.
	bad = append([]byte{}, good...)
	bad[segHeaderLen+frameHeaderLen+2] ^= 0x01
	_ = os.WriteFile(seg, bad, 0o644)
	if _, _, err := OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 2}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped byte in entry 1: %v, want ErrCorrupt", err)
	}
	_ = os.WriteFile(seg, good, 0o644)

	if _, _, err := OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 3}); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("opened as another node: %v", err)
	}
	if _, _, err := OpenFile(FileOptions{Dir: filepath.Join(dir, "missing"), NodeID: 1}); err == nil ||
		!bytes.Contains([]byte(err.Error()), []byte("mkdir")) {
		t.Fatalf("missing directory: %v", err)
	}
}

// TestHardStateSlots: writes alternate between the two slots and a torn
// write of the newer one leaves the older one.
func TestHardStateSlots(t *testing.T) {
	dir := t.TempDir()
	st := writeLog(t, dir, 3, 1)
	_ = st.SetHardState(raft.HardState{Term: 5, Vote: 2, Commit: 2})
	_ = st.Sync()
	_ = st.SetHardState(raft.HardState{Term: 6, Vote: 1, Commit: 3})
	_ = st.Close()
	path := filepath.Join(dir, hardStateName)
	b, _ := os.ReadFile(path)
	if len(b) != hsSlots*hsSlotSize {
		t.Fatalf("HARDSTATE is %d bytes", len(b))
	}
	s0, hs0, ok0 := decodeHSSlot(b[:hsSlotSize])
	s1, hs1, ok1 := decodeHSSlot(b[hsSlotSize:])
	if !ok0 || !ok1 || s0 == s1 {
		t.Fatalf("slots %d %+v %v / %d %+v %v", s0, hs0, ok0, s1, hs1, ok1)
	}
	newer, want := hsSlotSize, hs0
	if s0 > s1 {
		newer, want = 0, hs1
	}
	b[newer+20] ^= 0xFF
	_ = os.WriteFile(path, b, 0o644)
	_, rec, err := OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rec.HardState != want || want.Term != 5 {
		t.Fatalf("with the newer slot torn: %+v, want %+v", rec.HardState, want)
	}
}

// TestFormatsMatchStorageFile: what the firmware writes, storage/file
// reads, and the other way round.
func TestFormatsMatchStorageFile(t *testing.T) {
	dir := t.TempDir()
	_ = writeLog(t, dir, 40, 35).Close()
	fst, err := file.Open(dir, file.Options{ClusterID: 9, NodeID: 2})
	if err != nil {
		t.Fatalf("storage/file cannot open the firmware's directory: %v", err)
	}
	hs, _ := fst.InitialState()
	last, _ := fst.LastIndex()
	if hs != (raft.HardState{Term: 5, Vote: 2, Commit: 35}) || last != 40 {
		t.Fatalf("storage/file sees %+v, last %d", hs, last)
	}
	ents, err := fst.Entries(1, 41, 1<<20)
	if err != nil || len(ents) != 40 || string(ents[39].Data) != "cmd-40" {
		t.Fatalf("storage/file entries: %d, %v", len(ents), err)
	}
	// storage/file appends, replaces a suffix and syncs; the firmware reads it.
	if err := fst.Append([]raft.Entry{{Index: 38, Term: 7, Data: []byte("from-host")}}); err != nil {
		t.Fatal(err)
	}
	_ = fst.SetHardState(raft.HardState{Term: 7, Vote: 1, Commit: 38})
	if err := fst.Close(); err != nil {
		t.Fatal(err)
	}
	st, rec, err := OpenFile(FileOptions{Dir: dir, ClusterID: 9, NodeID: 2})
	if err != nil {
		t.Fatalf("the firmware cannot open storage/file's directory: %v", err)
	}
	if rec.LastIndex != 38 || rec.HardState != (raft.HardState{Term: 7, Vote: 1, Commit: 38}) {
		t.Fatalf("firmware sees %+v", rec)
	}
	e, _ := st.Entries(38, 39, 100)
	if len(e) != 1 || string(e[0].Data) != "from-host" {
		t.Fatalf("entry 38 = %+v", e)
	}
	_ = st.Close()
}

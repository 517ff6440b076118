package file

import (
	"io"
	"testing"
	"unsafe"

	"github.com/embraft/embraft/raft"
)

// The index's per-entry cost is documented as 24 bytes.
func TestSlotSize(t *testing.T) {
	if n := unsafe.Sizeof(slot{}); n != 24 {
		t.Fatalf("slot is %d bytes, documented as 24", n)
	}
}

// Zero-filled space (preallocated or never written) must never parse as a
// frame, or a tear could be taken for a valid record.
func TestZerosNeverFrame(t *testing.T) {
	if p := findFrame(make([]byte, 1<<16), 0); p != -1 {
		t.Fatalf("zeros framed at %d", p)
	}
	e := raft.Entry{Index: 5, Term: 2, Data: []byte("x")}
	b := appendFrame(make([]byte, 3), &e)
	if p := findFrame(b, 0); p != 3 {
		t.Fatalf("frame found at %d, want 3", p)
	}
	got, n, err := decodeFrame(b[3:], 5)
	if err != nil || n != len(b)-3 || got.Term != 2 || string(got.Data) != "x" {
		t.Fatalf("decodeFrame: %+v %d %v", got, n, err)
	}
}

func TestSegName(t *testing.T) {
	for _, i := range []raft.Index{1, 0xabc, 1<<64 - 1} {
		if got, ok := parseSegName(segName(i)); !ok || got != i {
			t.Fatalf("segName(%d) = %s parses to %d %v", i, segName(i), got, ok)
		}
	}
	for _, bad := range []string{"1.log", "000000000000000g.log", "0000000000000001.seg"} {
		if _, ok := parseSegName(bad); ok {
			t.Fatalf("%s parsed", bad)
		}
	}
}

// TestCompactShrinksIndex: the memory of the in-memory index goes with the
// entries Compact drops.
func TestCompactShrinksIndex(t *testing.T) {
	s, err := Open(t.TempDir(), Options{ClusterID: 1, NodeID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ents := make([]raft.Entry, 5000)
	for i := range ents {
		ents[i] = raft.Entry{Index: raft.Index(i + 1), Term: 1}
	}
	if err := s.Append(ents); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 4990, Term: 1}, func(io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	before := cap(s.idx)
	if err := s.Compact(4990); err != nil {
		t.Fatal(err)
	}
	if len(s.idx) != 10 || cap(s.idx) > 64 {
		t.Fatalf("index of %d entries keeps capacity %d (was %d)", len(s.idx), cap(s.idx), before)
	}
}

package kv_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"testing/iotest"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// populated returns a harness holding keys, sessions at various sequence
// numbers (one caching a Get's value), an eviction and an expiry.
func populated(t *testing.T) (*harness, []*kv.Session, [][]byte) {
	h := newHarness(t, kv.Options{MaxSessions: 3, SessionTTLEntries: 1000})
	var ss []*kv.Session
	for range 4 { // the fourth evicts the first
		ss = append(ss, h.register())
	}
	ss = ss[1:]
	last := make([][]byte, len(ss)) // each session's last command, encoded
	for i, s := range ss {
		for j := range i + 2 {
			last[i] = enc(s.Put([]byte{'k', byte('0' + j)}, bytes.Repeat([]byte{byte(i)}, j)))
			h.raw(last[i])
		}
	}
	last[1] = enc(ss[1].Get(b("k1")))
	h.raw(last[1])
	last[2] = enc(ss[2].CAS(b("k0"), b("no"), b("yes")))
	h.raw(last[2]) // mismatch
	h.do(ss[0].Delete(b("k0")))
	last[0] = nil // the Delete above is ss[0]'s last, and its bytes are gone
	return h, ss, last
}

func TestSnapshotRoundTrip(t *testing.T) {
	h, ss, last := populated(t)
	snap := snapshotBytes(t, h.s)

	r := kv.New(h.s.Options())
	if err := r.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if again := snapshotBytes(t, r); !bytes.Equal(again, snap) {
		t.Fatalf("Snapshot after Restore differs:\n%x\n%x", again, snap)
	}
	if r.Digest() != h.s.Digest() || r.Stats() != h.s.Stats() || r.Len() != h.s.Len() {
		t.Fatalf("restored store differs: %+v vs %+v", r.Stats(), h.s.Stats())
	}
	if st := r.Stats(); st.Sessions != 3 || st.Evictions != 1 || st.Keys == 0 {
		t.Fatalf("stats %+v", st)
	}

	// Continue both stores with the same entries: retries of the last
	// commands (deduplicated from the restored cache), a stale duplicate, new
	// commands, and a registration that evicts.
	r2 := &harness{t: t, s: r, idx: h.idx}
	feed := func(cmd []byte) kv.Result {
		a, outA := h.raw(cmd)
		_, outB := r2.raw(cmd)
		if !bytes.Equal(outA, outB) {
			t.Fatalf("results differ after restore: %+v vs %x", a, outB)
		}
		return a
	}
	for i := 1; i < len(last); i++ {
		idx := h.idx
		res := feed(last[i])
		if res.Index > idx || res.ClientID != ss[i].ClientID {
			t.Fatalf("retry of session %d's last command after restore was applied anew: %+v", i, res)
		}
	}
	feed(enc(kv.Command{Op: kv.OpPut, ClientID: ss[2].ClientID, Seq: 1, Key: b("stale")}))
	feed(enc(ss[0].Put(b("new"), b("v"))))
	feed(enc(kv.Register()))
	feed(enc(ss[1].Get(b("new"))))
	if !bytes.Equal(snapshotBytes(t, h.s), snapshotBytes(t, r)) {
		t.Fatal("stores diverged after restore")
	}
}

func TestRestoreEmpty(t *testing.T) {
	snap := snapshotBytes(t, kv.New(kv.Options{}))
	h, _, _ := populated(t)
	if err := h.s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if st := h.s.Stats(); st != (kv.Stats{}) {
		t.Fatalf("after restoring an empty snapshot: %+v", st)
	}
	// The applied index went back to 0 with the snapshot.
	h.idx = 0
	h.register()
}

func TestRestoreRejectsCorruption(t *testing.T) {
	src, _, _ := populated(t)
	snap := snapshotBytes(t, src.s)

	dst, _, _ := populated(t)
	dst.do(kv.Register()) // make dst differ from src
	before := snapshotBytes(t, dst.s)
	check := func(what string, in []byte, want error) {
		t.Helper()
		err := dst.s.Restore(bytes.NewReader(in))
		if err == nil {
			t.Fatalf("%s: Restore accepted a corrupt snapshot", what)
		}
		if want != nil && !errors.Is(err, want) {
			t.Fatalf("%s: err %v, want %v", what, err, want)
		}
		if !bytes.Equal(snapshotBytes(t, dst.s), before) {
			t.Fatalf("%s: failed Restore modified the store", what)
		}
	}

	for bit := range len(snap) * 8 {
		bad := bytes.Clone(snap)
		bad[bit/8] ^= 1 << (bit % 8)
		check("bit flip", bad, nil)
	}
	for n := range len(snap) {
		check("truncation", snap[:n], kv.ErrTruncated)
	}
	check("trailing byte", append(bytes.Clone(snap), 0), kv.ErrMalformed)
	bad := bytes.Clone(snap)
	bad[3] = kv.SnapshotVersion + 1
	check("version", bad, kv.ErrVersion)
	bad = bytes.Clone(snap)
	bad[len(bad)-1] ^= 0x80
	check("checksum", bad, kv.ErrChecksum)
	check("not a snapshot", []byte("XYZ\x01garbage"), kv.ErrMalformed)

	// A reader error comes back wrapped.
	boom := errors.New("boom")
	err := dst.s.Restore(io.MultiReader(bytes.NewReader(snap[:20]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("reader error: %v", err)
	}
	// A reader that delivers one byte at a time is fine.
	if err := kv.New(src.s.Options()).Restore(iotest.OneByteReader(bytes.NewReader(snap))); err != nil {
		t.Fatalf("one byte reader: %v", err)
	}
}

func TestRestoreEnforcesLimits(t *testing.T) {
	src, _, _ := populated(t)
	snap := snapshotBytes(t, src.s)
	st := src.s.Stats()
	opts := src.s.Options()
	for name, o := range map[string]kv.Options{
		"keys":     {MaxKeys: st.Keys - 1, MaxSessions: opts.MaxSessions},
		"sessions": {MaxSessions: st.Sessions - 1},
		"key size": {MaxKeyBytes: 1, MaxSessions: opts.MaxSessions},
		"value":    {MaxValueBytes: 1, MaxSessions: opts.MaxSessions},
	} {
		err := kv.New(o).Restore(bytes.NewReader(snap))
		if !errors.Is(err, kv.ErrLimit) {
			t.Errorf("%s: err %v, want ErrLimit", name, err)
		}
	}
	if err := kv.New(kv.Options{MaxKeys: st.Keys, MaxSessions: st.Sessions}).Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("exact limits: %v", err)
	}
}

func TestSnapshotWriterError(t *testing.T) {
	h, _, _ := populated(t)
	boom := errors.New("boom")
	if err := h.s.Snapshot(errWriter{boom}); !errors.Is(err, boom) {
		t.Fatalf("Snapshot to a failing writer: %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// snap builds a snapshot by hand, with a valid checksum.
func snap(applied uint64, keys [][2]string, sessions [][4]uint64) []byte {
	out := append([]byte("EKV"), kv.SnapshotVersion)
	out = binary.AppendUvarint(out, applied)
	out = append(out, 0, 0) // evictions, expirations
	out = binary.AppendUvarint(out, uint64(len(keys)))
	for _, p := range keys {
		out = binary.AppendUvarint(out, uint64(len(p[0])))
		out = append(out, p[0]...)
		out = binary.AppendUvarint(out, uint64(len(p[1])))
		out = append(out, p[1]...)
	}
	out = binary.AppendUvarint(out, uint64(len(sessions)))
	for _, s := range sessions { // id, seq, active, result index
		out = binary.AppendUvarint(out, s[0])
		out = binary.AppendUvarint(out, s[1])
		out = binary.AppendUvarint(out, s[2])
		r := kv.Result{Status: kv.StatusOK, ClientID: s[0], Index: raft.Index(s[3])}
		res := r.AppendBinary(nil)
		out = binary.AppendUvarint(out, uint64(len(res)))
		out = append(out, res...)
	}
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
}

func TestRestoreRequiresCanonicalOrder(t *testing.T) {
	good := snap(10, [][2]string{{"a", "1"}, {"b", "2"}}, [][4]uint64{{3, 1, 5, 5}, {2, 4, 9, 8}})
	s := kv.New(kv.Options{})
	if err := s.Restore(bytes.NewReader(good)); err != nil {
		t.Fatalf("hand-built snapshot: %v", err)
	}
	if !bytes.Equal(snapshotBytes(t, s), good) {
		t.Fatal("hand-built snapshot is not canonical")
	}
	for name, in := range map[string][]byte{
		"unsorted keys":          snap(10, [][2]string{{"b", "1"}, {"a", "2"}}, nil),
		"duplicate keys":         snap(10, [][2]string{{"a", "1"}, {"a", "2"}}, nil),
		"sessions out of order":  snap(10, nil, [][4]uint64{{2, 4, 9, 8}, {3, 1, 5, 5}}),
		"equal activity":         snap(10, nil, [][4]uint64{{2, 0, 5, 2}, {3, 0, 5, 3}}),
		"duplicate session":      snap(10, nil, [][4]uint64{{2, 0, 5, 2}, {2, 0, 6, 2}}),
		"activity past applied":  snap(10, nil, [][4]uint64{{2, 0, 11, 2}}),
		"client 0":               snap(10, nil, [][4]uint64{{0, 0, 5, 0}}),
		"client after activity":  snap(10, nil, [][4]uint64{{6, 0, 5, 6}}),
		"result before register": snap(10, nil, [][4]uint64{{4, 1, 5, 3}}),
		"result after activity":  snap(10, nil, [][4]uint64{{4, 1, 5, 6}}),
	} {
		if err := s.Restore(bytes.NewReader(in)); !errors.Is(err, kv.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	if !bytes.Equal(snapshotBytes(t, s), good) {
		t.Fatal("a rejected snapshot modified the store")
	}
}

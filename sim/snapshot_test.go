package sim

import (
	"errors"
	"testing"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// TestSnapshotChunkCorruptionIsRefused damages MsgSnap chunks after the
// frame passed the codec's checksum (so nothing recomputes it): the
// follower must refuse the snapshot by its own CRC (Stats.SnapshotsBad),
// the leader must send it again, and the run must stay clean and converge.
func TestSnapshotChunkCorruptionIsRefused(t *testing.T) {
	var total SnapshotStats
	for seed := uint64(1); seed <= 10; seed++ {
		rep, err := Run(Config{Seed: seed, Steps: 3000, corruptSnapChunks: 0.05})
		if err != nil {
			t.Fatalf("seed %d with damaged snapshot chunks: %v", seed, err)
		}
		if !rep.Linearizable || rep.Pending != 0 {
			t.Fatalf("seed %d: %v", seed, rep)
		}
		total.Add(rep.Snap)
	}
	t.Logf("10 seeds: %d chunks damaged, %d snapshots refused by their CRC, %d installed", total.Corrupted, total.Bad, total.Installed)
	if total.Corrupted == 0 || total.Bad == 0 || total.Installed == 0 {
		t.Fatalf("damaged chunks were not refused by the snapshot CRC (seeds 1..10): %v", total)
	}
}

// TestStaleSnapshotsAreCaught proves the snapshot-state checkers bite: a
// runtime that labels its previous state with the new snapshot's index
// must be caught (by the state digests, or end to end).
func TestStaleSnapshotsAreCaught(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		_, err := Run(Config{Seed: seed, staleSnapshots: true})
		var v *Violation
		if errors.As(err, &v) {
			t.Logf("seed %d caught stale snapshots: %s: %s", seed, v.Property, v.Detail)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("20 seeds of stale snapshots found no violation")
}

// TestSnapshotsOff: with snapshots off nothing is compacted or sent, and
// the log grows with the run.
func TestSnapshotsOff(t *testing.T) {
	rep, err := Run(Config{Seed: 5, Steps: 2000, SnapshotEntries: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Snap
	if s.Every != 0 || s.Taken != 0 || s.Compactions != 0 || s.Sent != 0 || s.Installed != 0 || s.Restored != 0 {
		t.Fatalf("seed 5 without snapshots: %v", s)
	}
	if s.MaxLogLen < int(rep.Commits) {
		t.Fatalf("seed 5 without snapshots: stored log %d shorter than the commit index %d", s.MaxLogLen, rep.Commits)
	}
}

// TestSnapshotSettings: explicit settings are used as given, and setting
// them to the values a seed draws does not change the run.
func TestSnapshotSettings(t *testing.T) {
	a, err := Run(Config{Seed: 9, Steps: 2000})
	if err != nil {
		t.Fatal(err)
	}
	// (A drawn zero is the default: passing it draws it again.)
	b, err := Run(Config{Seed: 9, Steps: 2000, SnapshotEntries: a.Snap.Every, SnapshotMargin: a.Snap.Margin,
		SnapshotPadBytes: a.Snap.PadBytes})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("seed 9: explicit drawn settings changed the run:\n%v\n%v", a, b)
	}
	c, err := Run(Config{Seed: 9, Steps: 2000, SnapshotEntries: 7, SnapshotMargin: -1, SnapshotPadBytes: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Snap; s.Every != 7 || s.Margin != 0 || s.PadBytes != 3000 || s.MaxAppliedSpan > 6 {
		t.Fatalf("seed 9 with explicit settings: %v", s)
	}
}

// TestLongRunBoundedLog: the stored log stays bounded however long the
// run (the checker enforces the bound; this shows it holds over 20000
// steps).
func TestLongRunBoundedLog(t *testing.T) {
	rep, err := Run(Config{Seed: 11, Steps: 20000})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Snap
	if s.MaxAppliedSpan > s.Every-1+s.Margin || s.MaxLogLen > s.Every+s.Margin+raft.DefaultMaxEntriesInMemory || int(rep.Commits) < 4*s.MaxLogLen {
		t.Fatalf("seed 11, 20000 steps: commit index %d, %v", rep.Commits, s)
	}
	t.Logf("seed 11, 20000 steps: commit index %d, %v", rep.Commits, s)
}

// TestSnapshotFormat: a snapshot restores the store it was taken of, and
// its digest is the store's.
func TestSnapshotFormat(t *testing.T) {
	w := newWorld(Config{Seed: 1, SnapshotPadBytes: 100}.withDefaults())
	n := w.nodes[0]
	reg := kv.Register()
	n.store.Apply(1, reg.AppendBinary(nil))
	s := kv.Session{ClientID: 1}
	put := s.Put([]byte("k"), []byte("v"))
	n.store.Apply(2, put.AppendBinary(nil))
	n.appliedHash = 0x1234
	data, digest := w.encodeSnapshot(n, nil)
	if digest != n.store.Digest() {
		t.Fatalf("snapshot digest %x, store digest %x", digest, n.store.Digest())
	}
	hash, store, d, err := decodeSnapshot(data)
	if err != nil || hash != 0x1234 || d != digest || store.Digest() != digest {
		t.Fatalf("decode: %v hash %x digest %x", err, hash, d)
	}
	for _, i := range []int{0, 5, simSnapHeader + 2, len(data) - 1} {
		bad := append([]byte(nil), data...)
		bad[i] ^= 1
		if _, _, _, err := decodeSnapshot(bad); err == nil {
			t.Errorf("a flipped bit at byte %d went unnoticed", i)
		}
	}
}

// TestStorageDurability checks the simulated storage's crash model against
// storage/file's: a saved snapshot, an install and a compaction are
// durable at once, chunks are not, and a restart keeps the durable log
// after the snapshot only if it holds the snapshot's last entry.
func TestStorageDurability(t *testing.T) {
	ents := func(lo, hi raft.Index, term raft.Term) []raft.Entry {
		var out []raft.Entry
		for i := lo; i <= hi; i++ {
			out = append(out, raft.Entry{Index: i, Term: term, Data: []byte{byte(i)}})
		}
		return out
	}
	check := func(s *simStorage, how, wantHow int, first, last raft.Index, snap raft.Index) {
		t.Helper()
		f, _ := s.FirstIndex()
		l, _ := s.LastIndex()
		m, _ := s.Snapshot()
		if how != wantHow || f != first || l != last || m.Index != snap {
			t.Fatalf("rebuilt (%d) first %d last %d snapshot %d; want (%d) %d %d %d", how, f, l, m.Index, wantHow, first, last, snap)
		}
	}
	// Save a snapshot at 10, compact to 8, write 21..22 without a sync:
	// the restart has the snapshot and the synced entries after it.
	s := newSimStorage()
	mustOK(t, s.Append(ents(1, 20, 1)))
	s.Sync()
	if _, err := s.SaveSnapshot(raft.SnapshotMeta{Index: 10, Term: 1}, []byte("snap")); err != nil {
		t.Fatal(err)
	}
	if dropped, err := s.Compact(8); err != nil || !dropped {
		t.Fatal(dropped, err)
	}
	mustOK(t, s.Append(ents(21, 22, 1)))
	if lost, partial := s.crash(); lost != 1 || partial {
		t.Fatalf("crash lost %d writes, partial %v", lost, partial)
	}
	how, _, err := s.restore()
	mustOK(t, err)
	check(s, how, rebuiltKeptLog, 11, 20, 10)
	if hs, _ := s.InitialState(); hs.Commit != 10 {
		t.Fatalf("commit %d after a restart from the snapshot at 10", hs.Commit)
	}

	// A partial incoming snapshot is lost by a crash.
	data := []byte("0123456789")
	meta := raft.SnapshotMeta{Index: 30, Term: 2, Size: uint64(len(data)), CRC: raft.SnapshotCRC(data)}
	mustOK(t, s.WriteSnapshotChunk(raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 30, Term: 2, Size: 10}, Data: data[:4]}))
	if _, partial := s.crash(); !partial {
		t.Fatal("the partial snapshot was not lost")
	}
	how, _, err = s.restore()
	mustOK(t, err)
	check(s, how, rebuiltKeptLog, 11, 20, 10)

	// An install is durable and discards the log.
	chunk := raft.SnapshotChunk{Meta: raft.SnapshotMeta{Index: 30, Term: 2, Size: 10}, Data: data}
	mustOK(t, s.WriteSnapshotChunk(chunk))
	mustOK(t, s.InstallSnapshot(meta, false))
	s.replaceLog(ents(1, 30, 2), make([]uint64, 30))
	s.crash()
	how, _, err = s.restore()
	mustOK(t, err)
	check(s, how, rebuiltKeptLog, 31, 30, 30)

	// An install torn before the old log was discarded: the old log does
	// not hold the snapshot's entry, so it is discarded at the restart.
	s = newSimStorage()
	mustOK(t, s.Append(ents(1, 5, 1)))
	s.Sync()
	mustOK(t, s.WriteSnapshotChunk(chunk))
	mustOK(t, s.InstallSnapshot(meta, true))
	s.crash()
	how, raised, err := s.restore()
	mustOK(t, err)
	check(s, how, rebuiltAfterSnap, 31, 30, 30)
	// The snapshot's term (2) is ahead of the durable hard state's (0):
	// raised with no vote, as storage/file does.
	if hs, _ := s.InitialState(); !raised || hs != (raft.HardState{Term: 2, Commit: 30}) {
		t.Fatalf("hard state %+v (raised %v) after a restart from a snapshot of term 2", hs, raised)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

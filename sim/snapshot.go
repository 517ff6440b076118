package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"hash/fnv"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// The simulated node's snapshot format, node/snapshot.go's plus padding:
// the magic, the applied-sequence hash (8 bytes, little endian), the kv
// snapshot's length (4 bytes), the kv snapshot (kv.Store.Snapshot), then
// SnapshotPadBytes bytes of opaque state (a function of the hash, so that
// a restore can verify it).
const (
	simSnapMagic  = "ESN1"
	simSnapHeader = len(simSnapMagic) + 8 + 4
)

var errBadSnapshot = errors.New("bad snapshot")

// hashStart seeds the applied-sequence hash, as in node.
const hashStart = fnvOffset

// crcTable is node's CRC-64/ECMA table for the applied-sequence hash.
var crcTable = crc64.MakeTable(crc64.ECMA)

// hashApplied folds an applied entry into an applied-sequence hash, as
// node.hashEntry does: equal on two nodes iff they applied the same
// entries in the same order (barring collisions).
func hashApplied(h uint64, e *raft.Entry) uint64 {
	var hdr [2 * binary.MaxVarintLen64]byte
	b := binary.AppendUvarint(hdr[:0], uint64(e.Index))
	b = binary.AppendUvarint(b, uint64(e.Term))
	h = crc64.Update(h, crcTable, b)
	return crc64.Update(h, crcTable, e.Data)
}

// padByte is byte i of the opaque state of a snapshot whose applied hash
// is h.
func padByte(h uint64, i int) byte { return byte(h>>(8*(i&7))) ^ byte(i*131) }

// encodeSnapshot returns the snapshot of node n's state machine and the
// digest of its kv part (equal to kv.Store.Digest of the store). A non-nil
// stale replaces the kv part (staleSnapshots).
func (w *world) encodeSnapshot(n *simNode, stale []byte) ([]byte, uint64) {
	var kvb bytes.Buffer
	_ = n.store.Snapshot(&kvb) // a bytes.Buffer never fails
	kvs := kvb.Bytes()
	if stale != nil {
		kvs = stale
	}
	data := make([]byte, 0, simSnapHeader+len(kvs)+w.snapPad)
	data = append(data, simSnapMagic...)
	data = binary.LittleEndian.AppendUint64(data, n.appliedHash)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(kvs)))
	data = append(data, kvs...)
	for i := range w.snapPad {
		data = append(data, padByte(n.appliedHash, i))
	}
	h := fnv.New64a()
	h.Write(kvs)
	return data, h.Sum64()
}

// decodeSnapshot restores a state machine from a snapshot: its applied
// hash, its store and the store's digest.
func decodeSnapshot(data []byte) (uint64, *kv.Store, uint64, error) {
	if len(data) < simSnapHeader || string(data[:len(simSnapMagic)]) != simSnapMagic {
		return 0, nil, 0, errBadSnapshot
	}
	hash := binary.LittleEndian.Uint64(data[len(simSnapMagic):])
	n := int(binary.LittleEndian.Uint32(data[len(simSnapMagic)+8:]))
	rest := data[simSnapHeader:]
	if n > len(rest) {
		return 0, nil, 0, errBadSnapshot
	}
	for i, b := range rest[n:] {
		if b != padByte(hash, i) {
			return 0, nil, 0, fmt.Errorf("%w: opaque state differs at byte %d", errBadSnapshot, i)
		}
	}
	store := kv.New(kv.Options{})
	if err := store.Restore(bytes.NewReader(rest[:n])); err != nil {
		return 0, nil, 0, err
	}
	return hash, store, store.Digest(), nil
}

// maybeSnapshot takes a snapshot of node n's state machine once it has
// applied SnapshotEntries entries since its last one, then compacts the
// log below it, keeping SnapshotMargin entries, as node.maybeSnapshot
// does. The checker records the state at that index: every other node
// that applies it, or restores a snapshot of it, must have the same.
func (w *world) maybeSnapshot(n *simNode) {
	if w.snapEvery <= 0 || n.applied < n.snapIndex+raft.Index(w.snapEvery) {
		return
	}
	var stale []byte
	if _, prev := n.st.SnapshotData(); w.cfg.staleSnapshots && len(prev) >= simSnapHeader {
		stale = prev[simSnapHeader : simSnapHeader+int(binary.LittleEndian.Uint32(prev[len(simSnapMagic)+8:]))]
	}
	data, digest := w.encodeSnapshot(n, stale)
	// The snapshot records the configuration as of the applied index, as
	// node does; the core's (as of its commit index) may be ahead of it.
	if w.checkAppliedConf(n, "takes a snapshot"); w.err != nil {
		return
	}
	at := raft.SnapshotMeta{Index: n.applied, Term: n.appliedTerm, Conf: n.conf}
	meta, err := n.st.SaveSnapshot(at, data)
	if err != nil {
		w.fail("storage", fmt.Sprintf("node %d: snapshot at index %d (term %d): %v", n.id, n.applied, n.appliedTerm, err))
		return
	}
	if !w.cfg.lyingDisk {
		// The snapshot's last entry was applied, so it was committed and
		// durable: a restart must find the log around it.
		if e, ok := entryOf(n.st.durLog, meta.Index); !ok || e.Term != meta.Term {
			w.fail("durability", fmt.Sprintf("node %d applied index %d (term %d) before it was durable", n.id, meta.Index, meta.Term))
			return
		}
	}
	if c := w.chk.canonAt(meta.Index); c != nil && c.seqSet && c.seqHash != binary.LittleEndian.Uint64(data[len(simSnapMagic):]) {
		w.fail("snapshot state", fmt.Sprintf("node %d took a snapshot at index %d whose applied sequence is not the one applied up to there", n.id, meta.Index))
		return
	}
	if w.checkStateAt(n, meta.Index, digest, "took a snapshot"); w.err != nil {
		return
	}
	n.snapIndex = meta.Index
	w.rep.Snap.Taken++
	compactTo := raft.Index(0)
	if keep := raft.Index(w.snapMargin); meta.Index > keep {
		compactTo = meta.Index - keep
		dropped, err := n.st.Compact(compactTo)
		if err != nil {
			w.fail("storage", fmt.Sprintf("node %d: compact to %d under snapshot %d: %v", n.id, compactTo, meta.Index, err))
			return
		}
		if dropped {
			w.rep.Snap.Compactions++
		}
	}
	w.ev.add(event{t: w.now, kind: evSnapTake, a: uint8(n.id), x: uint64(meta.Index), y: meta.Size, z: uint64(compactTo)})
}

// installSnapshot handles a Ready's snapshot part as node.installSnapshot
// does: the chunks go to storage (not durably); a complete, verified
// snapshot is installed (durably, discarding the log) and the state
// machine restored from it. It reports false if the node crashed (a
// deliberate crash right after the install) or the run failed.
func (w *world) installSnapshot(n *simNode, rd *raft.Ready) bool {
	if len(rd.SnapshotChunks) > 0 {
		bytes := 0
		for _, c := range rd.SnapshotChunks {
			if err := n.st.WriteSnapshotChunk(c); err != nil {
				w.fail("storage", fmt.Sprintf("node %d: snapshot chunk at offset %d of %d: %v", n.id, c.Offset, c.Meta.Index, err))
				return false
			}
			bytes += len(c.Data)
		}
		n.lastChunkAt = w.now
		w.rep.Snap.Chunks += uint64(len(rd.SnapshotChunks))
		w.ev.add(event{t: w.now, kind: evSnapChunks, a: uint8(n.id), x: rd.SnapshotChunks[0].Offset,
			y: uint64(len(rd.SnapshotChunks)), z: uint64(bytes)})
	}
	if rd.Snapshot.IsEmpty() {
		return true
	}
	meta := rd.Snapshot
	// The deliberate crashes around an install (none when healed or
	// scripted): inside InstallSnapshot once the snapshot is durable but
	// the old log is not yet discarded; right after it, before this
	// Ready's hard state, entries and answer; or at the next step.
	crash := 0
	if f := &w.cfg.Faults; !w.healed && len(w.cfg.Script) == 0 && f.CrashAtInstall+f.CrashAfterInstall > 0 {
		switch r := w.rng.Float64(); {
		case r < f.CrashAtInstall/2:
			crash = crashInInstall
		case r < f.CrashAtInstall:
			crash = crashAtInstall
		case r < f.CrashAtInstall+f.CrashAfterInstall:
			crash = crashAfterInstall
		}
	}
	if err := n.st.InstallSnapshot(meta, crash == crashInInstall); err != nil {
		w.fail("storage", fmt.Sprintf("node %d: installing snapshot %d (term %d): %v", n.id, meta.Index, meta.Term, err))
		return false
	}
	w.rep.Snap.Installed++
	w.ev.add(event{t: w.now, kind: evSnapInstall, a: uint8(n.id), x: uint64(meta.Index), y: uint64(meta.Term), z: meta.Size})
	if crash == crashInInstall {
		w.faults[FaultCrashInInstall]++
		w.crashFor(n, crashInInstall)
		return false
	}
	_, data := n.st.SnapshotData()
	if w.restoreState(n, meta, data, "installed"); w.err != nil {
		return false
	}
	n.st.replaceLog(w.chk.canonPrefix(meta.Index))
	switch crash {
	case crashAtInstall:
		w.faults[FaultCrashAtInstall]++
		w.crashFor(n, crashAtInstall)
		return false
	case crashAfterInstall:
		n.crashNext = true
	}
	return true
}

// restoreState makes node n's state machine the one of the snapshot meta,
// data (just installed, or found on restart), after checking it: the
// snapshot's last entry must be committed with its term, and the restored
// applied-sequence hash and kv state must be those every node had at that
// index.
func (w *world) restoreState(n *simNode, meta raft.SnapshotMeta, data []byte, how string) {
	c := w.chk.canonAt(meta.Index)
	switch {
	case c == nil:
		w.fail("snapshot safety", fmt.Sprintf("node %d %s a snapshot at index %d, beyond every index seen committed (%d)",
			n.id, how, meta.Index, len(w.chk.canon)))
		return
	case c.term != meta.Term:
		w.fail("snapshot safety", fmt.Sprintf("node %d %s a snapshot at index %d of term %d, but the entry committed there has term %d",
			n.id, how, meta.Index, meta.Term, c.term))
		return
	}
	hash, store, digest, err := decodeSnapshot(data)
	if err != nil {
		w.fail("snapshot safety", fmt.Sprintf("node %d %s a snapshot at index %d that does not restore: %v", n.id, how, meta.Index, err))
		return
	}
	if c.seqSet && c.seqHash != hash {
		w.fail("snapshot safety", fmt.Sprintf("node %d %s a snapshot at index %d whose applied sequence differs from what every node applied up to there",
			n.id, how, meta.Index))
		return
	}
	c.seqSet, c.seqHash = true, hash
	// The configuration it carries must be the one committed as of its
	// index (or none, if no configuration entry precedes it: a snapshot
	// of a node that joined and never saw the bootstrap configuration).
	if w.checkSnapConf(n, meta, how); w.err != nil {
		return
	}
	n.store, n.applied, n.appliedTerm, n.appliedHash, n.snapIndex = store, meta.Index, meta.Term, hash, meta.Index
	if !meta.Conf.IsEmpty() {
		n.conf = meta.Conf.Clone()
	}
	if w.checkAppliedConf(n, how+" a snapshot"); w.err != nil {
		return
	}
	w.checkStateAt(n, meta.Index, digest, how+" a snapshot")
}

// checkStateAt checks node n's kv state (its digest) at index i against
// the state recorded there by the first node that snapshotted (or
// restored) it, or records it.
func (w *world) checkStateAt(n *simNode, i raft.Index, digest uint64, what string) {
	c := w.chk.canonAt(i)
	if c == nil {
		w.fail("snapshot safety", fmt.Sprintf("node %d %s at index %d, beyond every index seen committed", n.id, what, i))
		return
	}
	if c.digestSet && c.digest != digest {
		w.fail("snapshot state", fmt.Sprintf("node %d %s at index %d: its kv state differs from the one recorded there", n.id, what, i))
		return
	}
	c.digestSet, c.digest = true, digest
}

// entryOf returns entry i of a mirror log (index 1 at position 0).
func entryOf(log []raft.Entry, i raft.Index) (*raft.Entry, bool) {
	if i < 1 || int(i) > len(log) {
		return nil, false
	}
	return &log[i-1], true
}

// checkLogBound checks that node n's stored log stays bounded whatever the
// run length, once it has handled every Ready: at most SnapshotEntries-1 +
// SnapshotMargin applied entries (what a snapshot and a compaction leave),
// and at most SnapshotEntries + SnapshotMargin + the core's
// MaxEntriesInMemory in all (its uncommitted tail is bounded by the
// leaders' MaxUncommittedBytes).
func (w *world) checkLogBound(n *simNode) {
	stored, compacted := n.st.storedLen()
	span := int(n.applied) - int(compacted)
	w.rep.Snap.MaxLogLen = max(w.rep.Snap.MaxLogLen, stored)
	w.rep.Snap.MaxAppliedSpan = max(w.rep.Snap.MaxAppliedSpan, span)
	if w.snapEvery <= 0 {
		return
	}
	switch {
	case span > w.snapEvery-1+w.snapMargin:
		w.fail("bounded log", fmt.Sprintf("node %d stores %d applied entries (%d..%d); snapshots every %d entries with a margin of %d should leave at most %d",
			n.id, span, compacted+1, n.applied, w.snapEvery, w.snapMargin, w.snapEvery-1+w.snapMargin))
	case stored > w.snapEvery+w.snapMargin+raft.DefaultMaxEntriesInMemory:
		w.fail("bounded log", fmt.Sprintf("node %d stores %d entries (%d applied, up to %d)", n.id, stored, span, compacted+raft.Index(stored)))
	}
}

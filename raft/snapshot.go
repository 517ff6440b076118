package raft

import "hash/crc32"

// SnapshotMeta describes a snapshot: the state machine's state after
// applying entries 1..Index, the last of which has Term. Size and CRC (a
// CRC-32C, Castagnoli) describe the snapshot's data, which is opaque to the
// core.
type SnapshotMeta struct {
	Index Index
	Term  Term
	Size  uint64
	CRC   uint32
}

// IsEmpty reports whether m describes no snapshot.
func (m SnapshotMeta) IsEmpty() bool { return m.Index == 0 }

// SnapshotChunk is a piece of a snapshot arriving from the leader, which the
// caller writes into its incoming snapshot (Ready.SnapshotChunks). Meta has
// Index, Term and Size; its CRC is known only once the transfer completes.
// Chunks arrive in order: Offset 0 starts a new incoming snapshot, and each
// later chunk continues exactly where the previous one ended.
type SnapshotChunk struct {
	Meta   SnapshotMeta
	Offset uint64
	Data   []byte
}

// castagnoli is the CRC-32C table shared with the wire codec's choice.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SnapshotCRC returns the CRC-32C of data, as SnapshotMeta.CRC expects.
func SnapshotCRC(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// UpdateSnapshotCRC extends crc, a SnapshotCRC of earlier bytes, by data.
func UpdateSnapshotCRC(crc uint32, data []byte) uint32 {
	return crc32.Update(crc, castagnoli, data)
}

// snapTrailerBytes is the CRC-32C that follows a snapshot's data in the
// byte stream a leader sends: the follower checks it before installing.
const snapTrailerBytes = 4

// streamSize is the size of the stream that carries a snapshot of meta.
func streamSize(meta SnapshotMeta) uint64 { return meta.Size + snapTrailerBytes }

// incoming is a follower's state for the snapshot arriving from its leader.
// Chunks are accepted strictly in order, so one offset and a running CRC
// describe everything received; duplicates are acknowledged, chunks from
// beyond the offset are refused with the offset (the leader goes back).
type incoming struct {
	meta     SnapshotMeta // Index, Term, Size; CRC unset until complete
	from     NodeID
	term     Term
	received uint64 // stream bytes received in order
	crc      uint32 // running CRC of the data received
	trailer  [snapTrailerBytes]byte
	active   bool
}

// --- leader side ---

// startSnapshot switches pr to receiving the stored snapshot, because the
// entries it needs are compacted. It returns whether a transfer started.
func (r *Raft) startSnapshot(pr *progress) bool {
	meta, err := r.log.storage.Snapshot()
	if err != nil {
		r.log.noteReadErr(err)
		return false
	}
	if meta.IsEmpty() || meta.Index < pr.match {
		return false // nothing useful to send; storage broke its contract
	}
	pr.becomeSnapshot(meta)
	r.stats.SnapshotsSent++
	r.sendSnapshotChunks(pr)
	return true
}

// snapWindowBytes bounds the stream bytes sent and not yet acknowledged.
func (r *Raft) snapWindowBytes() uint64 {
	return uint64(r.cfg.MaxInflightMsgs) * uint64(r.cfg.MaxMsgBytes)
}

// sendSnapshotChunks fills pr's window of snapshot chunks.
func (r *Raft) sendSnapshotChunks(pr *progress) {
	total := streamSize(pr.snap)
	for pr.state == StateSnapshot && pr.snapSent < total && pr.snapSent-pr.snapAcked < r.snapWindowBytes() {
		chunk, err := r.readChunk(pr.snap, pr.snapSent, min(uint64(r.cfg.MaxMsgBytes), total-pr.snapSent))
		if err == ErrSnapshotChanged {
			r.startSnapshot(pr) // a newer snapshot replaced it: send that one
			return
		}
		if err != nil {
			r.log.noteReadErr(err)
			return
		}
		r.send(Message{Type: MsgSnap, To: pr.id, Index: pr.snap.Index, LogTerm: pr.snap.Term,
			Commit: Index(pr.snapSent), Hint: Index(total), Entries: []Entry{{Data: chunk}}})
		pr.snapSent += uint64(len(chunk))
	}
}

// readChunk returns n stream bytes at off: snapshot data read from storage,
// then the CRC trailer.
func (r *Raft) readChunk(meta SnapshotMeta, off, n uint64) ([]byte, error) {
	buf := make([]byte, n)
	if off < meta.Size {
		k := min(n, meta.Size-off)
		got, err := r.log.storage.ReadSnapshot(meta.Index, off, buf[:k])
		if err != nil {
			return nil, err
		}
		if uint64(got) != k {
			return nil, ErrSnapshotMismatch // storage holds less than it announced
		}
	}
	var trailer [snapTrailerBytes]byte
	putUint32(trailer[:], meta.CRC)
	for i := range buf {
		if p := off + uint64(i); p >= meta.Size {
			buf[i] = trailer[p-meta.Size]
		}
	}
	return buf, nil
}

// handleSnapshotResponse moves pr's transfer on. A refusal carries the
// follower's offset: the leader goes back to it once (later refusals of the
// same offset are for chunks already in flight).
func (r *Raft) handleSnapshotResponse(m Message, pr *progress) {
	off := uint64(m.Commit)
	if pr.state != StateSnapshot || m.Index != pr.snap.Index || m.LogTerm != pr.snap.Term || off > pr.snapSent {
		return // stale, or for another transfer
	}
	if off > pr.snapAcked {
		pr.snapAcked = off
	}
	if m.Reject && off != pr.snapRewound {
		pr.snapAcked = off // the follower may have lost what it had (a restart)
		pr.rewindSnapshot()
	}
	r.sendSnapshotChunks(pr)
}

// snapshotHeartbeat retransmits from the acknowledged offset when a whole
// heartbeat interval brought no progress (a lost chunk or answer).
func (r *Raft) snapshotHeartbeat(pr *progress) {
	if pr.snapAcked == pr.snapAckedAtHB {
		pr.rewindSnapshot()
	}
	pr.snapAckedAtHB = pr.snapAcked
	r.sendSnapshotChunks(pr)
}

// --- follower side ---

// handleSnapshot receives one chunk of a snapshot from the leader.
func (r *Raft) handleSnapshot(m Message) {
	meta := SnapshotMeta{Index: m.Index, Term: m.LogTerm, Size: uint64(m.Hint) - snapTrailerBytes}
	if r.haveSnapshot(m, meta) {
		return
	}
	in := &r.incoming
	off, data := uint64(m.Commit), m.Entries[0].Data
	if !in.active || in.meta != meta || in.from != m.From || in.term != m.Term {
		if off != 0 {
			r.snapAnswer(m, 0, true) // not our transfer: start over
			return
		}
		*in = incoming{meta: meta, from: m.From, term: m.Term, active: true}
	}
	switch {
	case off < in.received:
		r.snapAnswer(m, in.received, false) // a duplicate
		return
	case off > in.received:
		r.snapAnswer(m, in.received, true) // a gap: a chunk was lost or reordered
		return
	case len(r.snapChunks) >= r.cfg.MaxInflightMsgs:
		r.stats.Dropped++ // bound on chunks awaiting a Ready; the leader resends
		return
	}
	r.acceptChunk(in, off, data)
	if in.received < streamSize(meta) {
		r.snapAnswer(m, in.received, false)
		return
	}
	r.finishSnapshot(m, in)
}

// haveSnapshot answers a chunk of a snapshot this node does not need: its
// log already holds (or has committed past) the snapshot's last entry.
func (r *Raft) haveSnapshot(m Message, meta SnapshotMeta) bool {
	switch {
	case meta.Index <= r.log.committed:
		r.incoming = incoming{}
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed})
		return true
	case r.log.matchTerm(meta.Index, meta.Term):
		// Log Matching: our log equals the leader's up to meta.Index,
		// which the leader has committed.
		r.incoming = incoming{}
		r.log.commitTo(meta.Index)
		r.send(Message{Type: MsgAppResp, To: m.From, Index: meta.Index})
		return true
	}
	return false
}

// acceptChunk takes the in-order chunk at off: data bytes go to storage
// (via Ready.SnapshotChunks) and into the CRC, trailer bytes are kept.
func (r *Raft) acceptChunk(in *incoming, off uint64, data []byte) {
	if off < in.meta.Size {
		k := min(uint64(len(data)), in.meta.Size-off)
		r.snapChunks = append(r.snapChunks, SnapshotChunk{Meta: in.meta, Offset: off, Data: data[:k]})
		in.crc = UpdateSnapshotCRC(in.crc, data[:k])
	}
	for i := range data {
		if p := off + uint64(i); p >= in.meta.Size {
			in.trailer[p-in.meta.Size] = data[i]
		}
	}
	in.received = off + uint64(len(data))
}

// finishSnapshot installs a completely received snapshot if its checksum
// holds, else starts the transfer over.
func (r *Raft) finishSnapshot(m Message, in *incoming) {
	meta, crc := in.meta, in.crc
	meta.CRC = getUint32(in.trailer[:])
	*in = incoming{}
	if meta.CRC != crc {
		r.stats.SnapshotsBad++
		r.snapChunks = r.snapChunks[:0] // the next transfer restarts at offset 0
		r.snapAnswer(m, 0, true)
		return
	}
	r.installSnapshot(meta)
	r.send(Message{Type: MsgAppResp, To: m.From, Index: meta.Index})
}

// snapAnswer tells the leader how much of its snapshot stream this node
// holds; reject says a chunk was refused (a gap, or not this transfer).
func (r *Raft) snapAnswer(m Message, received uint64, reject bool) {
	r.send(Message{Type: MsgSnapResp, To: m.From, Index: m.Index, LogTerm: m.LogTerm,
		Commit: Index(received), Reject: reject})
}

// installSnapshot replaces the log with meta: the caller installs the
// snapshot and restores its state machine from it (Ready.Snapshot) before
// anything else in that Ready.
func (r *Raft) installSnapshot(meta SnapshotMeta) {
	r.log.restore(meta)
	r.pendingSnap = meta
	r.stats.SnapshotsInstalled++
}

func putUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func getUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

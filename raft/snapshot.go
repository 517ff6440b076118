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
	// Conf is the configuration as of Index.
	Conf ConfState
}

// SameSnapshot reports whether a and b describe the same snapshot data
// (index, term, size and checksum; Conf is determined by Index).
func SameSnapshot(a, b SnapshotMeta) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Size == b.Size && a.CRC == b.CRC
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

// The byte stream a leader sends for a snapshot is a header — the length
// of the encoded configuration (2 bytes, little endian), the configuration
// (AppendConfState; length 0 if the snapshot has none) and the CRC-32C of
// those bytes (4 bytes, little endian) — then the data, then the data's
// CRC-32C (snapTrailerBytes). The follower checks both CRCs end to end
// (beyond each frame's own), so damage that a frame check missed can
// neither install a wrong configuration nor wrong data. The header always
// travels alone, as the chunk at offset 0, so the follower knows the
// data's size from the first chunk.
const (
	snapTrailerBytes = 4
	snapLenBytes     = 2
	maxSnapConfBytes = MaxMembers * 3 * 10 // every ID a 10-byte uvarint
)

// snapHeader returns the stream header for meta.
func snapHeader(meta SnapshotMeta) []byte {
	var conf []byte
	if !meta.Conf.IsEmpty() {
		conf = AppendConfState(nil, meta.Conf)
	}
	h := make([]byte, snapLenBytes, snapLenBytes+len(conf)+snapTrailerBytes)
	h[0], h[1] = byte(len(conf)), byte(len(conf)>>8)
	h = append(h, conf...)
	var crc [snapTrailerBytes]byte
	putUint32(crc[:], SnapshotCRC(h))
	return append(h, crc[:]...)
}

// parseSnapHeader decodes a header chunk that must be exactly one header.
func parseSnapHeader(b []byte) (ConfState, bool) {
	if len(b) < snapLenBytes {
		return ConfState{}, false
	}
	n := int(b[0]) | int(b[1])<<8
	if n > maxSnapConfBytes || len(b) != snapLenBytes+n+snapTrailerBytes {
		return ConfState{}, false
	}
	body := b[:snapLenBytes+n]
	if SnapshotCRC(body) != getUint32(b[len(body):]) {
		return ConfState{}, false
	}
	if n == 0 {
		return ConfState{}, true
	}
	cs, err := DecodeConfState(body[snapLenBytes:])
	return cs, err == nil
}

// incoming is a follower's state for the snapshot arriving from its leader.
// Chunks are accepted strictly in order, so one offset and a running CRC
// describe everything received; duplicates are acknowledged, chunks from
// beyond the offset are refused with the offset (the leader goes back).
type incoming struct {
	meta     SnapshotMeta // Index, Term, Size, Conf; CRC unset until complete
	total    uint64       // the stream's size (MsgSnap.Hint)
	hdr      uint64       // the header's size: data starts there
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
	total := uint64(len(pr.snapHdr)) + pr.snap.Size + snapTrailerBytes
	for pr.state == StateSnapshot && pr.snapSent < total && pr.snapSent-pr.snapAcked < r.snapWindowBytes() {
		chunk, err := r.readChunk(pr, min(uint64(r.cfg.MaxMsgBytes), total-pr.snapSent))
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

// readChunk returns up to n stream bytes at pr.snapSent: the header (alone),
// or snapshot data read from storage, then the CRC trailer.
func (r *Raft) readChunk(pr *progress, n uint64) ([]byte, error) {
	meta, hdr := pr.snap, uint64(len(pr.snapHdr))
	if pr.snapSent < hdr {
		return pr.snapHdr[pr.snapSent:], nil
	}
	off := pr.snapSent - hdr
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
//
// An offset beyond snapSent is not stale: a rewind (a refusal, a heartbeat
// without progress, ReportUnreachable) moves snapSent back while chunks
// sent before it still arrive, and a progress rebuilt for a re-added member
// starts at 0 while the follower keeps its incoming snapshot. The follower
// holds its offset's bytes in order, so the leader goes on from there
// (were the answer older than a follower restart, the next chunk is
// refused with the real offset). Ignoring it could stall the transfer for
// good: snapSent never passes snapAcked + snapWindowBytes, and a follower
// ahead of that answers every chunk as a duplicate.
func (r *Raft) handleSnapshotResponse(m Message, pr *progress) {
	off := uint64(m.Commit)
	total := uint64(len(pr.snapHdr)) + pr.snap.Size + snapTrailerBytes
	if pr.state != StateSnapshot || m.Index != pr.snap.Index || m.LogTerm != pr.snap.Term || off > total {
		return // stale, or for another transfer
	}
	if off > pr.snapAcked {
		pr.snapAcked = off
	}
	if pr.snapSent < pr.snapAcked {
		pr.snapSent = pr.snapAcked // sent before a rewind, and received
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
	if r.haveSnapshot(m, m.Index, m.LogTerm) {
		return
	}
	in := &r.incoming
	off, data := uint64(m.Commit), m.Entries[0].Data
	if !in.active || in.meta.Index != m.Index || in.meta.Term != m.LogTerm || in.total != uint64(m.Hint) ||
		in.from != m.From || in.term != m.Term {
		if off != 0 {
			r.snapAnswer(m, 0, true) // not our transfer: start over
			return
		}
		r.startIncoming(m, data)
		return
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
	if in.received < in.total {
		r.snapAnswer(m, in.received, false)
		return
	}
	r.finishSnapshot(m, in)
}

// startIncoming begins a transfer with its header chunk (offset 0).
func (r *Raft) startIncoming(m Message, hdr []byte) {
	conf, ok := parseSnapHeader(hdr)
	total := uint64(m.Hint)
	if !ok || total < uint64(len(hdr))+snapTrailerBytes {
		r.stats.SnapshotsBad++ // damaged, or a broken leader; start over
		r.incoming = incoming{}
		r.snapAnswer(m, 0, true)
		return
	}
	h := uint64(len(hdr))
	r.incoming = incoming{meta: SnapshotMeta{Index: m.Index, Term: m.LogTerm, Size: total - h - snapTrailerBytes, Conf: conf},
		total: total, hdr: h, from: m.From, term: m.Term, received: h, active: true}
	r.snapAnswer(m, h, false)
}

// haveSnapshot answers a chunk of a snapshot this node does not need: its
// log already holds (or has committed past) the snapshot's last entry.
func (r *Raft) haveSnapshot(m Message, index Index, term Term) bool {
	meta := SnapshotMeta{Index: index, Term: term}
	switch {
	case meta.Index <= r.log.committed:
		r.incoming = incoming{}
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed})
		return true
	case r.log.matchTerm(meta.Index, meta.Term):
		// Log Matching: our log equals the leader's up to meta.Index,
		// which the leader has committed.
		r.incoming = incoming{}
		r.commitTo(meta.Index)
		r.send(Message{Type: MsgAppResp, To: m.From, Index: meta.Index})
		return true
	}
	return false
}

// acceptChunk takes the in-order chunk at off: data bytes go to storage
// (via Ready.SnapshotChunks) and into the CRC, trailer bytes are kept.
func (r *Raft) acceptChunk(in *incoming, off uint64, data []byte) {
	in.received = off + uint64(len(data))
	off -= in.hdr // chunks after the header never reach back into it
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
	r.confRecs = r.confRecs[:0]
	if !meta.Conf.IsEmpty() {
		r.setConf(meta.Conf)
	}
	r.pendingSnap = meta
	r.stats.SnapshotsInstalled++
}

func putUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func getUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

package file

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/embraft/embraft/raft"
)

// logScan carries the continuity checks across segments.
type logScan struct {
	next     raft.Index // index the next record must have
	prevTerm raft.Term  // terms never decrease along the log
	buf      []byte
	// fromSnap: the snapshot is ahead of LOGSTART. The log must then hold
	// the snapshot's last entry with its term, or start right after it;
	// any other log is discarded (errLogBehind), not corrupt:
	// InstallSnapshot renames SNAPSHOT before it removes the log.
	fromSnap bool
}

// errLogBehind: the log does not hold the snapshot's last entry with the
// snapshot's term (it ends before it, or has another term there).
var errLogBehind = errors.New("the log does not reach the snapshot")

// recoverLog validates every segment and builds the in-memory index. With
// a snapshot ahead of LOGSTART, a log that holds the snapshot's last entry
// with its term is kept from LOGSTART on (entries after the snapshot are
// valid entries of this node), a log that starts right after the snapshot
// is the one InstallSnapshot started, and any other is discarded.
func (s *Storage) recoverLog(firsts []raft.Index) error {
	if !s.snap.IsEmpty() && s.snap.Index == s.ci && s.snap.Term != s.ct {
		return corrupt(s.path(logStartName), -1, fmt.Sprintf("entry %d has term %d, but SNAPSHOT says %d", s.ci, s.ct, s.snap.Term))
	}
	firsts, err := s.removeCompacted(firsts)
	if err != nil {
		return err
	}
	sc := logScan{fromSnap: s.snap.Index > s.ci}
	logStart := s.ci
	err = s.scanLog(&sc, firsts)
	switch {
	case errors.Is(err, errLogBehind):
		err = s.discardLogAtOpen(firsts, err)
	case err != nil:
		return err
	case len(s.segs) == 0:
		err = s.createFirstSegment()
	default:
		n := len(s.segs)
		err = s.removeCompactedSegments()
		s.rec.RemovedFiles += n - len(s.segs)
	}
	if err == nil && s.ci != logStart {
		// The log restarts after the snapshot (an InstallSnapshot was
		// interrupted): LOGSTART records it, as InstallSnapshot's last
		// step does, so that a later snapshot does not leave the log's
		// start unexplained.
		err = s.writeAtomic(logStartName, encodeLogStart(s.ci, s.ct))
	}
	return err
}

// scanLog opens and validates the segments in order.
func (s *Storage) scanLog(sc *logScan, firsts []raft.Index) error {
	for k, first := range firsts {
		isLast := k == len(firsts)-1
		seg, err := s.openSegment(first, isLast, uint32(len(s.segs)))
		if err != nil {
			return err
		}
		if seg == nil { // a torn new segment, removed
			break
		}
		s.segs = append(s.segs, seg)
		if err := s.checkContinuity(sc, seg); err != nil {
			return err
		}
		if err := s.scanSegment(sc, seg, isLast); err != nil {
			return err
		}
	}
	switch {
	case len(s.segs) == 0 && sc.fromSnap:
		return fmt.Errorf("%w: no segment", errLogBehind)
	case len(s.segs) == 0:
		return nil
	case sc.next-1 < s.ci:
		return corrupt(s.path(logStartName), -1, fmt.Sprintf("compaction point %d is beyond the log's last entry %d", s.ci, sc.next-1))
	case sc.fromSnap && sc.next-1 < s.snap.Index:
		return fmt.Errorf("%w: the log ends at %d, the snapshot at %d", errLogBehind, sc.next-1, s.snap.Index)
	}
	return nil
}

// discardLogAtOpen completes an interrupted InstallSnapshot: it removes
// every segment, newest first (as InstallSnapshot does, so that a crash
// here leaves a prefix that still does not reach the snapshot), makes the
// removals durable, and starts an empty log after the snapshot.
func (s *Storage) discardLogAtOpen(firsts []raft.Index, why error) error {
	s.log.Warn("log discarded: it does not reach the snapshot", "snapshot", uint64(s.snap.Index), "why", why.Error())
	for _, seg := range s.segs {
		_ = seg.f.Close()
	}
	s.segs, s.idx = nil, nil
	s.ci, s.ct = s.snap.Index, s.snap.Term
	for k := len(firsts) - 1; k >= 0; k-- {
		path := s.path(segName(firsts[k]))
		switch err := s.fs.Remove(path); {
		case err == nil:
			s.rec.RemovedFiles++
		case !errors.Is(err, os.ErrNotExist): // a torn new segment is gone already
			return fmt.Errorf("storage/file: discarding the log: %w", err)
		}
	}
	if err := s.syncDir(); err != nil {
		return fmt.Errorf("storage/file: fsync %s: %w", s.dir, err)
	}
	s.rec.LogDiscarded = true
	return s.createFirstSegment()
}

// removeCompacted deletes segments whose entries all precede the compaction
// point: Compact records the point durably first, then removes them, and a
// crash may interrupt the removal. The segment holding the compaction
// point itself is kept for the scan, which checks its term there; the
// scan's caller removes it afterwards.
func (s *Storage) removeCompacted(firsts []raft.Index) ([]raft.Index, error) {
	for len(firsts) > 1 && firsts[1] <= s.ci {
		path := s.path(segName(firsts[0]))
		if err := s.fs.Remove(path); err != nil {
			return nil, fmt.Errorf("storage/file: removing compacted segment: %w", err)
		}
		s.log.Info("removed compacted segment", "file", path)
		s.rec.RemovedFiles++
		firsts = firsts[1:]
	}
	return firsts, nil
}

// createFirstSegment starts an empty log after the compaction point when
// no segment exists (the only one was a torn new segment).
func (s *Storage) createFirstSegment() error {
	first := s.ci + 1
	if err := s.writeFresh(segName(first), encodeSegHeader(s.id, first), segHeaderLen); err != nil {
		return err
	}
	path := s.path(segName(first))
	f, err := s.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("storage/file: %w", err)
	}
	s.segs = append(s.segs, &segment{id: 0, first: first, path: path, f: f, size: segHeaderLen})
	return nil
}

// openSegment opens a segment and checks its header. A last segment with
// an unreadable header and no valid record anywhere is a new segment whose
// creation a crash interrupted before its first Sync: it never held an
// acknowledged entry, and it is removed (nil, nil).
func (s *Storage) openSegment(first raft.Index, isLast bool, id uint32) (*segment, error) {
	path := s.path(segName(first))
	f, err := s.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, &CorruptError{File: path, Offset: -1, Err: err}
	}
	seg := &segment{id: id, first: first, path: path, f: f}
	if err = s.checkSegHeader(seg, isLast); err != nil || seg.f == nil {
		_ = f.Close()
		return nil, err
	}
	return seg, nil
}

func (s *Storage) checkSegHeader(seg *segment, isLast bool) error {
	st, err := seg.f.Stat()
	if err != nil {
		return &CorruptError{File: seg.path, Offset: -1, Err: err}
	}
	seg.size = st.Size()
	hdr := make([]byte, segHeaderLen)
	n, _ := seg.f.ReadAt(hdr, 0)
	id, first, ok := decodeSegHeader(hdr[:n])
	switch {
	case !ok && isLast && seg.first > s.hs.Commit && !s.holdsFrame(seg):
		s.log.Warn("removed torn new segment", "file", seg.path, "bytes", seg.size)
		s.rec.RemovedFiles++
		seg.f = nil
		return s.fs.Remove(seg.path)
	case !ok:
		return corrupt(seg.path, 0, "bad segment header (length, magic or checksum)")
	case id.version != formatVersion:
		return fmt.Errorf("%w: %s has format version %d, this build reads %d", ErrVersion, seg.path, id.version, formatVersion)
	case id.cluster != s.id.cluster:
		return fmt.Errorf("%w: segment %s holds cluster %d, opened as cluster %d", ErrWrongCluster, seg.path, id.cluster, s.id.cluster)
	case id.node != s.id.node:
		return fmt.Errorf("%w: segment %s holds node %d, opened as node %d", ErrWrongNode, seg.path, id.node, s.id.node)
	case first != seg.first:
		return corrupt(seg.path, 0, fmt.Sprintf("header says first index %d, the name %d", first, seg.first))
	}
	return nil
}

// holdsFrame reports whether any complete, checksummed frame is in seg. A
// file it cannot read counts as holding one: never remove what may hold
// acknowledged data.
func (s *Storage) holdsFrame(seg *segment) bool {
	b := make([]byte, seg.size)
	if n, _ := seg.f.ReadAt(b, 0); n < len(b) {
		return true
	}
	return findFrame(b, 0) >= 0
}

// checkContinuity: the first segment must start at or before the entry
// after the compaction point, and each later one right after its
// predecessor's last record; otherwise a segment is missing.
func (s *Storage) checkContinuity(sc *logScan, seg *segment) error {
	if len(s.segs) == 1 {
		switch {
		case seg.first <= s.ci+1:
		case sc.fromSnap && seg.first == s.snap.Index+1:
			s.ci, s.ct = s.snap.Index, s.snap.Term // the log InstallSnapshot started
		default:
			return corrupt(seg.path, 0, fmt.Sprintf("the log starts at index %d but the compaction point is %d: a segment is missing", seg.first, s.ci))
		}
	} else if seg.first != sc.next {
		return corrupt(seg.path, 0, fmt.Sprintf("segment starts at index %d, expected %d: a segment is missing or overlaps", seg.first, sc.next))
	}
	sc.next = seg.first
	return nil
}

// scanSegment reads every frame of seg, validating length, checksum,
// decoding, index continuity and term order, and indexes the entries after
// the compaction point.
func (s *Storage) scanSegment(sc *logScan, seg *segment, isLast bool) error {
	r := bufio.NewReaderSize(io.NewSectionReader(seg.f, segHeaderLen, seg.size-segHeaderLen), 64<<10)
	off := int64(segHeaderLen)
	var hdr [frameHeaderLen]byte
	for {
		_, err := io.ReadFull(r, hdr[:])
		switch {
		case errors.Is(err, io.EOF):
			return nil // a clean end: the last frame was complete
		case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("storage/file: reading %s: %w", seg.path, err) // never a reason to cut
		}
		n, ok := frameLen(hdr[:])
		if err != nil || !ok || off+frameHeaderLen+int64(n) > seg.size {
			return s.badFrame(sc, seg, off, isLast)
		}
		sc.buf = growBuf(sc.buf, n)
		if _, err := io.ReadFull(r, sc.buf); err != nil {
			return &CorruptError{File: seg.path, Offset: off, Err: err}
		}
		if !frameOK(hdr[:], sc.buf) {
			return s.badFrame(sc, seg, off, isLast)
		}
		if err := s.acceptRecord(sc, seg, off, sc.buf); err != nil {
			return err
		}
		off += frameHeaderLen + int64(n)
	}
}

func growBuf(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// acceptRecord checks a checksummed record against its predecessor. A
// record that passed its checksum cannot be a torn write, so any failure
// here is corruption (or a bug that wrote a broken log).
func (s *Storage) acceptRecord(sc *logScan, seg *segment, off int64, rec []byte) error {
	var e raft.Entry
	if err := decodeRecord(rec, &e); err != nil {
		return &CorruptError{File: seg.path, Offset: off, Err: err}
	}
	switch {
	case e.Index != sc.next:
		return corrupt(seg.path, off, fmt.Sprintf("record holds index %d, expected %d", e.Index, sc.next))
	case e.Term < sc.prevTerm:
		return corrupt(seg.path, off, fmt.Sprintf("entry %d has term %d, below its predecessor's %d", e.Index, e.Term, sc.prevTerm))
	case sc.fromSnap && e.Index == s.snap.Index && e.Term != s.snap.Term:
		return fmt.Errorf("%w: entry %d has term %d, the snapshot's %d", errLogBehind, e.Index, e.Term, s.snap.Term)
	case e.Index == s.ci && e.Term != s.ct:
		return corrupt(seg.path, off, fmt.Sprintf("entry %d has term %d but LOGSTART says %d", e.Index, e.Term, s.ct))
	}
	if e.Index > s.ci {
		s.addSlot(slot{term: e.Term, off: off, seg: seg.id, dataLen: uint32(len(e.Data))})
	}
	sc.next, sc.prevTerm = e.Index+1, e.Term
	return nil
}

// badFrame decides what a frame that fails its length or checksum means.
// It is a torn tail, cut off, only if all of these hold: it is in the last
// segment (every earlier segment was fsynced whole before the next was
// created); no complete checksummed frame starts anywhere after it (appends
// are sequential, so a tear has nothing valid behind it); and its index is
// above the durable commit index (HARDSTATE is written only after the log
// is fsynced, so entries up to the commit were acknowledged). Anything else
// is a CorruptError: Open never drops data that may have been acknowledged.
func (s *Storage) badFrame(sc *logScan, seg *segment, off int64, isLast bool) error {
	if !isLast {
		return corrupt(seg.path, off, "bad record in a segment that is not the last (those are fsynced whole)")
	}
	rest := make([]byte, seg.size-off)
	if n, err := seg.f.ReadAt(rest, off); n < len(rest) {
		return &CorruptError{File: seg.path, Offset: off, Err: err}
	}
	if p := findFrame(rest, 1); p >= 0 {
		return corrupt(seg.path, off, fmt.Sprintf("bad record followed by a valid record at offset %d", off+int64(p)))
	}
	if sc.next <= s.hs.Commit {
		return corrupt(seg.path, off, fmt.Sprintf("bad record for entry %d, at or below the durable commit index %d", sc.next, s.hs.Commit))
	}
	if err := seg.f.Truncate(off); err != nil {
		return fmt.Errorf("storage/file: cutting torn tail of %s: %w", seg.path, err)
	}
	s.log.Warn("cut torn tail", "file", seg.path, "offset", off, "bytes", seg.size-off, "entry", uint64(sc.next))
	s.rec.TornFile, s.rec.TornBytes = seg.path, seg.size-off
	seg.size = off
	return nil
}

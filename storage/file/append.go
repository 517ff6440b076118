package file

import (
	"fmt"
	"os"
	"slices"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// Append implements storage.Storage. It only encodes frames into a write
// buffer (written, without fsync, once it exceeds 64 KiB); Sync makes them
// durable. Entries at or after ents[0].Index are replaced: the conflicting
// suffix is cut from the segment files first.
func (s *Storage) Append(ents []raft.Entry) error {
	if err := s.usable(); err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if err := s.checkAppend(ents); err != nil {
		return err
	}
	if ents[0].Index <= s.lastIndex() {
		if err := s.truncateFrom(ents[0].Index); err != nil {
			return err
		}
	}
	if err := s.maybeRoll(); err != nil {
		return err
	}
	seg := s.active()
	for i := range ents {
		e := &ents[i]
		off := seg.size + int64(len(s.wbuf))
		s.wbuf = appendFrame(s.wbuf, e)
		s.addSlot(slot{term: e.Term, off: off, seg: seg.id, dataLen: uint32(len(e.Data))})
	}
	s.cache.append(ents)
	if len(s.wbuf) >= flushBytes {
		return s.flush()
	}
	return nil
}

// addSlot appends to the index, doubling its capacity when full: Go's
// growth of large slices (1.25x) would allocate about five times the
// final index over a long recovery, doubling about twice.
func (s *Storage) addSlot(sl slot) {
	if len(s.idx) == cap(s.idx) {
		s.idx = slices.Grow(s.idx, max(len(s.idx), 1024))
	}
	s.idx = append(s.idx, sl)
}

// checkAppend refuses, before anything is written, entries that recovery
// would later reject as a broken log: on disk every record must follow its
// predecessor's index with a term no smaller. Entries a snapshot covers are
// committed and never replaced: a log cut below the snapshot would no
// longer reach it, and Open would discard it.
func (s *Storage) checkAppend(ents []raft.Entry) error {
	first, last := ents[0].Index, ents[len(ents)-1].Index
	switch {
	case first <= s.ci || first <= s.snap.Index:
		return raft.ErrCompacted
	case first > s.lastIndex()+1:
		return raft.ErrUnavailable
	case int(last-s.ci) > s.opts.MaxEntries:
		return storage.ErrFull
	}
	prev, _ := s.Term(first - 1)
	for i := range ents {
		e := &ents[i]
		switch {
		case e.Index != first+raft.Index(i):
			return fmt.Errorf("%w: index %d follows %d", ErrInvalidEntries, e.Index, first+raft.Index(i)-1)
		case e.Term < prev:
			return fmt.Errorf("%w: entry %d has term %d, below the previous entry's %d", ErrInvalidEntries, e.Index, e.Term, prev)
		case e.Type != raft.EntryNormal && e.Type != raft.EntryNoop && e.Type != raft.EntryConfChange:
			return fmt.Errorf("%w: entry %d has unknown type %d", ErrInvalidEntries, e.Index, e.Type)
		case len(e.Data) > MaxRecordBytes-32:
			return fmt.Errorf("%w: entry %d holds %d bytes", ErrInvalidEntries, e.Index, len(e.Data))
		}
		prev = e.Term
	}
	return nil
}

// truncateFrom cuts entries at index from and later. Later segments are
// removed newest first and the removal made durable (fsync of the
// directory) before the segment holding from is cut, so that a crash
// leaves a contiguous set of segments, never a gap. The cut itself is made
// durable before anything new is written after it (see flush).
func (s *Storage) truncateFrom(from raft.Index) error {
	at := s.idx[from-s.ci-1]
	removed := false
	for s.active().id != at.seg {
		if err := s.dropActive(); err != nil {
			return err
		}
		removed = true
	}
	if removed {
		if err := s.syncDir(); err != nil {
			return s.fail("fsync", s.dir, err)
		}
	}
	seg := s.active()
	if at.off >= seg.size { // the cut falls in the write buffer
		s.wbuf = s.wbuf[:at.off-seg.size]
	} else {
		s.wbuf = s.wbuf[:0]
		if err := seg.f.Truncate(at.off); err != nil {
			return s.fail("truncate", seg.path, err)
		}
		seg.size, s.dirty, s.truncated = at.off, true, true
	}
	s.idx = s.idx[:from-s.ci-1]
	s.cache.truncate(from)
	return nil
}

// dropActive removes the active segment file; the previous one, which was
// fully durable when the dropped one was created, becomes active.
func (s *Storage) dropActive() error {
	seg := s.active()
	_ = seg.f.Close()
	s.segs = s.segs[:len(s.segs)-1]
	s.wbuf, s.dirty, s.truncated, s.dirDirty = s.wbuf[:0], false, false, true
	if err := s.fs.Remove(seg.path); err != nil {
		return s.fail("remove", seg.path, err)
	}
	return nil
}

// maybeRoll starts a new segment once the active one has reached
// SegmentBytes and holds nothing unsynced. Waiting for a clean segment
// keeps the invariant recovery relies on: every segment but the last is
// entirely durable, so damage in one of them is corruption, never a tear.
func (s *Storage) maybeRoll() error {
	seg := s.active()
	if seg.size < int64(s.opts.SegmentBytes) || s.dirty || len(s.wbuf) > 0 {
		return nil
	}
	first := s.lastIndex() + 1
	path := s.path(segName(first))
	f, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return s.fail("create", path, err)
	}
	next := &segment{id: seg.id + 1, first: first, path: path, f: f}
	s.segs = append(s.segs, next)
	// The header goes through the write buffer: the next Sync writes and
	// fsyncs it with the first records, then fsyncs the directory entry.
	s.wbuf = append(s.wbuf, encodeSegHeader(s.id, first)...)
	s.dirDirty = true
	return nil
}

// flush writes the buffer to the active segment (no fsync). After a
// truncation it first fsyncs the cut, so that new records can never reach
// the disk while the old suffix they replace is still there.
func (s *Storage) flush() error {
	if len(s.wbuf) == 0 {
		return nil
	}
	seg := s.active()
	if s.truncated {
		s.stats.Fsyncs++
		if err := seg.f.Sync(); err != nil {
			return s.fail("fsync", seg.path, err)
		}
		s.truncated = false
	}
	n, err := seg.f.WriteAt(s.wbuf, seg.size)
	s.stats.BytesWritten += uint64(n)
	s.dirty = true
	if err == nil && n < len(s.wbuf) {
		err = fmt.Errorf("short write: %d of %d bytes", n, len(s.wbuf))
	}
	if err != nil {
		return s.fail("write", seg.path, err)
	}
	seg.size += int64(n)
	if cap(s.wbuf) > 4*flushBytes {
		s.wbuf = nil // one huge Append must not pin its buffer forever
	} else {
		s.wbuf = s.wbuf[:0]
	}
	return nil
}

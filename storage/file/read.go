package file

import (
	"errors"
	"io"

	"github.com/embraft/embraft/raft"
)

// Entries implements raft.Storage: entries [lo, hi), stopping once their
// payload exceeds maxBytes but returning at least one. The count comes from
// the in-memory index; the entries from the tail cache or one positioned
// read per segment. Every call returns a freshly allocated slice whose
// Data alias a fresh buffer (or payloads nobody modifies), so later
// appends and truncations never change what a caller holds.
func (s *Storage) Entries(lo, hi raft.Index, maxBytes int) ([]raft.Entry, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	switch {
	case lo <= s.ci:
		return nil, raft.ErrCompacted
	case hi > s.lastIndex()+1:
		return nil, raft.ErrUnavailable
	case lo >= hi:
		return nil, nil
	}
	hi = lo + raft.Index(s.countWithin(lo, hi, maxBytes))
	out := make([]raft.Entry, 0, hi-lo)
	mid := hi
	if c := s.cache.lo(); c != 0 && c < hi {
		mid = max(lo, c)
	}
	var err error
	if lo < mid {
		if out, err = s.readEntries(out, lo, mid); err != nil {
			return nil, err
		}
	}
	if mid < hi {
		out = s.cache.appendRange(out, mid, hi)
	}
	return out, nil
}

// countWithin returns how many entries from lo (< hi) fit maxBytes of
// payload, at least one: the same rule as raft.MemoryStorage.
func (s *Storage) countWithin(lo, hi raft.Index, maxBytes int) int {
	size, n := 0, 0
	for i := lo; i < hi; i++ {
		size += int(s.idx[i-s.ci-1].dataLen)
		if n > 0 && size > maxBytes {
			break
		}
		n++
	}
	return n
}

// readEntries appends entries [lo, hi) read from the segment files.
func (s *Storage) readEntries(out []raft.Entry, lo, hi raft.Index) ([]raft.Entry, error) {
	for lo < hi {
		first := s.idx[lo-s.ci-1]
		end := lo + 1
		for end < hi && s.idx[end-s.ci-1].seg == first.seg {
			end++
		}
		var err error
		if out, err = s.readRun(out, lo, end); err != nil {
			return nil, err
		}
		lo = end
	}
	return out, nil
}

// readRun reads entries [lo, hi), all in one segment, with one ReadAt.
func (s *Storage) readRun(out []raft.Entry, lo, hi raft.Index) ([]raft.Entry, error) {
	first := s.idx[lo-s.ci-1]
	seg := s.segByID(first.seg)
	end := s.frameEnd(hi - 1)
	if end > seg.size { // the run reaches into the write buffer
		if err := s.flush(); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, end-first.off)
	if n, err := seg.f.ReadAt(buf, first.off); n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, s.fail("read", seg.path, err)
	}
	for i, p := lo, 0; i < hi; i++ {
		e, n, err := decodeFrame(buf[p:], i)
		if err != nil {
			return nil, s.failCorrupt(&CorruptError{File: seg.path, Offset: first.off + int64(p), Err: err})
		}
		out = append(out, e)
		p += n
	}
	return out, nil
}

// frameEnd returns the offset just past entry i's frame in its segment.
func (s *Storage) frameEnd(i raft.Index) int64 {
	k := i - s.ci - 1
	if int(k)+1 < len(s.idx) && s.idx[k+1].seg == s.idx[k].seg {
		return s.idx[k+1].off
	}
	seg := s.segByID(s.idx[k].seg)
	if seg == s.active() {
		return seg.size + int64(len(s.wbuf))
	}
	return seg.size
}

// decodeFrame decodes the frame at the start of b, which must hold entry
// want, and returns it with the frame's length.
func decodeFrame(b []byte, want raft.Index) (raft.Entry, int, error) {
	var e raft.Entry
	if len(b) < frameHeaderLen {
		return e, 0, errors.New("short frame")
	}
	n, ok := frameLen(b)
	if !ok || frameHeaderLen+n > len(b) || !frameOK(b, b[frameHeaderLen:frameHeaderLen+n]) {
		return e, 0, errors.New("bad frame length or checksum")
	}
	if err := decodeRecord(b[frameHeaderLen:frameHeaderLen+n], &e); err != nil {
		return e, 0, err
	}
	if e.Index != want {
		return e, 0, errors.New("frame holds another index than the index says")
	}
	return e, frameHeaderLen + n, nil
}

// failCorrupt fails the storage with damage found while serving a read:
// the node must stop rather than replicate or apply bad data.
func (s *Storage) failCorrupt(err *CorruptError) error {
	return s.fail("read", err.File, err)
}

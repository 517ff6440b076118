package file

import (
	"slices"

	"github.com/embraft/embraft/raft"
)

// Compact implements storage.Storage: it discards the log up to and
// including i, which the stored snapshot must cover (else
// raft.ErrUnavailable): FirstIndex becomes i+1 and Term(i) stays
// answerable. It records (i, Term(i)) in LOGSTART atomically (temp file,
// fsync, rename, fsync of the directory) and then removes every segment
// whose entries are all at or below i; entries of a partly covered segment
// stay on disk, unindexed, until the segment goes. A crash between the two
// steps leaves segments that Open removes. The index shrinks to the kept
// entries. Compact(i) for i at or below the compaction point is a no-op.
func (s *Storage) Compact(i raft.Index) error {
	if err := s.usable(); err != nil {
		return err
	}
	if i <= s.ci {
		return nil
	}
	if i > s.snap.Index || i > s.lastIndex() {
		return raft.ErrUnavailable
	}
	if len(s.wbuf) > 0 || s.dirty {
		// LOGSTART must never name an entry that is not yet durable.
		if err := s.Sync(); err != nil {
			return err
		}
	}
	t := s.idx[i-s.ci-1].term
	if err := s.writeAtomic(logStartName, encodeLogStart(i, t)); err != nil {
		return s.fail("write", s.path(logStartName), err)
	}
	s.idx = s.idx[i-s.ci:]
	if len(s.idx) < cap(s.idx)/2 { // give the dropped index memory back
		s.idx = slices.Clip(slices.Clone(s.idx))
	}
	s.ci, s.ct = i, t
	s.cache.compact(i)
	return s.removeCompactedSegments()
}

// removeCompactedSegments removes whole segments below the compaction
// point, oldest first, never the active one.
func (s *Storage) removeCompactedSegments() error {
	for len(s.segs) > 1 && s.segs[1].first <= s.ci+1 {
		seg := s.segs[0]
		_ = seg.f.Close()
		s.segs = s.segs[1:]
		s.dirDirty = true
		if err := s.fs.Remove(seg.path); err != nil {
			return s.fail("remove", seg.path, err)
		}
	}
	return nil
}

package file

import "github.com/embraft/embraft/raft"

// Sync implements storage.Storage: it makes every Append and SetHardState
// so far durable. Its fsyncs, in order (docs/STORAGE.md):
//
//  1. the active segment, if written since the last Sync (always one when
//     entries were appended; a truncation adds one more, see flush);
//  2. the directory, if a segment was created or removed since;
//  3. HARDSTATE, only if the term or vote changed. The hard state is
//     written after the entries are durable, so its commit index never
//     points past the durable log; a commit-only change is written
//     without fsync (a lost commit index is relearned from the leader).
//
// In the steady state (entries and commit advancing) that is one fsync.
func (s *Storage) Sync() error {
	if err := s.usable(); err != nil {
		return err
	}
	s.stats.Syncs++
	if err := s.flush(); err != nil {
		return err
	}
	if s.dirty {
		seg := s.active()
		s.stats.Fsyncs++
		if err := seg.f.Sync(); err != nil {
			return s.fail("fsync", seg.path, err)
		}
		s.dirty, s.truncated = false, false
	}
	if s.dirDirty {
		if err := s.syncDir(); err != nil {
			return s.fail("fsync", s.dir, err)
		}
		s.dirDirty = false
	}
	return s.saveHardState()
}

func (s *Storage) saveHardState() error {
	synced, err := s.hsf.save(s.hs)
	if synced {
		s.stats.Fsyncs++
	}
	if err != nil {
		return s.fail("write", s.hsf.path, err)
	}
	return nil
}

// Close implements storage.Storage: it syncs what was written (so that a
// graceful stop keeps the latest commit index) and closes every file.
// Later calls fail with storage.ErrClosed.
func (s *Storage) Close() error {
	if s.closed {
		return nil
	}
	err := s.err
	if err == nil {
		err = s.Sync()
	}
	if err == nil && s.hsf.written != s.hsf.synced {
		// A graceful stop also makes the last commit index durable.
		s.stats.Fsyncs++
		if err = s.hsf.syncScratch(); err != nil {
			err = s.fail("fsync", s.hsf.path, err)
		}
	}
	s.closeFiles()
	s.closed = true
	return err
}

// hardStateFile writes HARDSTATE's two slots. The slot holding the last
// fsynced state is never overwritten; writes go to the other ("scratch")
// slot, with a higher sequence number, and the roles swap only after an
// fsync. A torn write thus damages at most the scratch slot, and the
// durable slot still holds everything ever acknowledged.
type hardStateFile struct {
	f       File
	path    string
	seq     uint64 // sequence number of the last slot written
	durable int    // slot holding the last fsynced state
	synced  raft.HardState
	written raft.HardState
}

// save writes hs if it differs from the last write, and fsyncs it if its
// term or vote differs from the last fsynced state. It reports whether it
// fsynced.
func (h *hardStateFile) save(hs raft.HardState) (bool, error) {
	if hs == h.written {
		return false, nil
	}
	scratch := 1 - h.durable
	h.seq++
	if _, err := h.f.WriteAt(encodeHSSlot(h.seq, hs), int64(scratch*hsSlotSize)); err != nil {
		return false, err
	}
	h.written = hs
	if hs.Term == h.synced.Term && hs.Vote == h.synced.Vote {
		return false, nil
	}
	return true, h.syncScratch()
}

// syncScratch fsyncs the slot written last and makes it the durable one.
func (h *hardStateFile) syncScratch() error {
	if err := h.f.Sync(); err != nil {
		return err
	}
	h.durable, h.synced = 1-h.durable, h.written
	return nil
}

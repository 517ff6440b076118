package file

import (
	"fmt"
	"os"
	"strings"

	"github.com/embraft/embraft/raft"
)

// initDir creates a new storage in a directory without META. META is
// written last (atomically), so a directory with META is fully
// initialised, and one without holds at most the leftovers of an
// interrupted initialisation: an empty HARDSTATE and an empty first
// segment. Those are replaced; anything else is refused rather than
// overwritten.
func (s *Storage) initDir(ls listing) error {
	if len(ls.other) > 0 {
		return fmt.Errorf("%w: %s is not empty and has no %s file (found %s)",
			ErrNotStorageDir, s.dir, metaName, strings.Join(ls.other, ", "))
	}
	if ls.logStart || ls.snapshot || len(ls.segs) > 1 || (len(ls.segs) == 1 && ls.segs[0] != 1) {
		return corrupt(s.path(metaName), -1, "missing, but the directory holds a log")
	}
	if len(ls.segs) == 1 {
		if size, err := s.fileSize(segName(1)); err != nil || size > segHeaderLen {
			return corrupt(s.path(metaName), -1, "missing, but the directory holds a log")
		}
	}
	if ls.hardState && s.holdsTerm() {
		// Initialisation writes a zero hard state: a term means a node
		// voted here, and forgetting its vote could elect two leaders.
		return corrupt(s.path(metaName), -1, "missing, but HARDSTATE holds a term")
	}
	if err := s.writeFresh(hardStateName, encodeHSSlot(1, raft.HardState{}), hsSlots*hsSlotSize); err != nil {
		return err
	}
	if err := s.writeFresh(segName(1), encodeSegHeader(s.id, 1), segHeaderLen); err != nil {
		return err
	}
	if err := s.syncDir(); err != nil {
		return fmt.Errorf("storage/file: fsync %s: %w", s.dir, err)
	}
	if err := s.writeAtomic(metaName, encodeMeta(s.id)); err != nil {
		return fmt.Errorf("storage/file: %w", err)
	}
	s.log.Info("storage initialised", "cluster", uint64(s.id.cluster), "node", uint64(s.id.node))
	return nil
}

// holdsTerm reports whether HARDSTATE has a valid slot with a term.
func (s *Storage) holdsTerm() bool {
	b, _ := s.readSmall(hardStateName, hsSlots*hsSlotSize)
	for lo := 0; lo < len(b); lo += hsSlotSize {
		if _, hs, ok := decodeHSSlot(b[lo:min(lo+hsSlotSize, len(b))]); ok && hs.Term > 0 {
			return true
		}
	}
	return false
}

func (s *Storage) fileSize(name string) (int64, error) {
	f, err := s.fs.OpenFile(s.path(name), os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// writeFresh creates (or replaces) name holding data padded with zeros to
// size bytes, and fsyncs it.
func (s *Storage) writeFresh(name string, data []byte, size int) error {
	path := s.path(name)
	f, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("storage/file: %w", err)
	}
	b := make([]byte, size)
	copy(b, data)
	_, err = f.WriteAt(b, 0)
	if err == nil {
		s.stats.Fsyncs++
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage/file: %s: %w", path, err)
	}
	return nil
}

// writeAtomic replaces name with data: write a temp file, fsync it, rename
// it over name, fsync the directory. A crash leaves either the old file
// (and a temp file Open removes) or the new one, never a mix.
func (s *Storage) writeAtomic(name string, data []byte) error {
	tmp := s.path(name + tmpSuffix)
	f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		s.stats.Fsyncs++
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, s.path(name))
	}
	if err == nil {
		err = s.syncDir()
	}
	return err
}

package file

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/embraft/embraft/raft"
)

// incoming is the snapshot being received from the leader, in
// SNAPSHOT.incoming: the SNAPSHOT layout with incomingMagic and no CRC.
type incoming struct {
	meta raft.SnapshotMeta // Index, Term, Size, Conf; CRC 0
	conf []byte            // meta.Conf as the file holds it (encodeConf)
	f    File              // nil: none
	n    uint64            // data bytes written
}

// dataOff is the offset of the data in the incoming file.
func (in *incoming) dataOff() int64 { return snapHeaderLen + int64(len(in.conf)) }

// WriteSnapshotChunk implements storage.Storage. Offset 0 creates (or
// truncates) SNAPSHOT.incoming with its header and c.Meta.Conf (an invalid
// Conf is refused: raft.ErrInvalidConf, which also matches
// raft.ErrSnapshotMismatch); every later chunk must continue it at exactly
// the next offset with the same Index, Term and Size, else
// raft.ErrSnapshotMismatch (its Conf is not looked at: the first chunk's
// is the incoming snapshot's). Nothing is fsynced: until
// InstallSnapshot the file is disposable (Open deletes it), and
// InstallSnapshot fsyncs it once. A failed write discards the incoming
// snapshot but leaves the storage usable: the log was not touched.
func (s *Storage) WriteSnapshotChunk(c raft.SnapshotChunk) error {
	if err := s.usable(); err != nil {
		return err
	}
	meta := c.Meta
	meta.CRC = 0
	if c.Offset == 0 {
		if err := s.startIncoming(meta); err != nil {
			return err
		}
	} else if s.in.f == nil || !raft.SameSnapshot(meta, s.in.meta) || c.Offset != s.in.n {
		return fmt.Errorf("%w: chunk at offset %d of snapshot (index %d, term %d, %d bytes); receiving offset %d of (index %d, term %d, %d bytes)",
			raft.ErrSnapshotMismatch, c.Offset, meta.Index, meta.Term, meta.Size, s.in.n, s.in.meta.Index, s.in.meta.Term, s.in.meta.Size)
	}
	if s.in.n+uint64(len(c.Data)) > meta.Size {
		return fmt.Errorf("%w: chunk ends at %d, beyond the announced %d bytes", raft.ErrSnapshotMismatch, s.in.n+uint64(len(c.Data)), meta.Size)
	}
	if _, err := s.in.f.WriteAt(c.Data, s.in.dataOff()+int64(s.in.n)); err != nil {
		s.dropIncoming()
		return fmt.Errorf("storage/file: writing %s: %w", s.path(incomingName), err)
	}
	s.in.n += uint64(len(c.Data))
	return nil
}

func (s *Storage) startIncoming(meta raft.SnapshotMeta) error {
	if s.in.f != nil {
		_ = s.in.f.Close()
		s.in = incoming{}
	}
	conf, err := encodeConf(meta.Conf)
	if err != nil {
		// The file is gone with the previous incoming snapshot: a leader
		// sending an invalid configuration must start over anyway.
		_ = s.fs.Remove(s.path(incomingName))
		return fmt.Errorf("%w: incoming %w", raft.ErrSnapshotMismatch, err)
	}
	path := s.path(incomingName)
	f, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("storage/file: creating %s: %w", path, err)
	}
	meta.Conf = meta.Conf.Clone()
	s.in = incoming{meta: meta, conf: conf, f: f}
	if _, err := f.WriteAt(encodeSnapHeader(incomingMagic, meta, conf), 0); err != nil {
		s.dropIncoming()
		return fmt.Errorf("storage/file: writing %s: %w", path, err)
	}
	return nil
}

// dropIncoming closes and removes the incoming file.
func (s *Storage) dropIncoming() {
	if s.in.f != nil {
		_ = s.in.f.Close()
		_ = s.fs.Remove(s.path(incomingName))
	}
	s.in = incoming{}
}

// InstallSnapshot implements storage.Storage. The incoming file must be
// complete and match meta — index, term, size, and the Conf its first
// chunk announced, which is the one stored — (raft.ErrSnapshotMismatch);
// its data is read back to check the CRC. meta.Index below the stored
// snapshot's or the commit index is raft.ErrCompacted (the log would lose
// committed entries). Then, each step durable before the next:
//
//  1. the SNAPSHOT header is written over the incoming header (the
//     configuration after it is rewritten unchanged), fsync;
//  2. rename to SNAPSHOT, fsync of the directory: the snapshot is
//     installed (a crash before this leaves the previous state);
//  3. every segment is removed, newest first, fsync of the directory;
//  4. an empty segment starting at meta.Index+1 is created, fsync;
//  5. LOGSTART records (meta.Index, meta.Term) atomically (temp file,
//     fsync, rename, fsync of the directory, which also covers step 4's
//     new name), so that the log's start stays explained when a later
//     snapshot moves SNAPSHOT past it.
//
// A crash after step 2 leaves the new snapshot and the old log, or a
// prefix of it; Open keeps it if it holds entry meta.Index with term
// meta.Term, and otherwise completes the discard (docs/STORAGE.md). The
// commit index is raised to meta.Index in memory (the next Sync writes
// it); Open raises it from SNAPSHOT in any case.
func (s *Storage) InstallSnapshot(meta raft.SnapshotMeta) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.checkIncoming(meta); err != nil {
		return err
	}
	f, path, conf, dataOff := s.in.f, s.path(incomingName), s.in.conf, s.in.dataOff()
	meta.Conf = s.in.meta.Conf // equal to meta.Conf, and the storage's own copy
	if err := s.writeAndSync(f, encodeSnapHeader(snapMagic, meta, conf)); err != nil {
		s.dropIncoming()
		return fmt.Errorf("storage/file: writing %s: %w", path, err)
	}
	s.in = incoming{}
	if err := s.publishSnapshot(f, path, meta, dataOff); err != nil {
		return err
	}
	if err := s.resetLog(meta.Index, meta.Term); err != nil {
		return err
	}
	s.hs.Commit = max(s.hs.Commit, meta.Index)
	return nil
}

// checkIncoming verifies the incoming snapshot against meta, reading its
// data back for the CRC. An incoming snapshot that can never be installed
// is discarded.
func (s *Storage) checkIncoming(meta raft.SnapshotMeta) error {
	in := s.in.meta
	in.CRC = meta.CRC
	switch {
	case s.in.f == nil || !raft.SameSnapshot(in, meta) || meta.Index == 0:
		return fmt.Errorf("%w: no incoming snapshot (index %d, term %d, %d bytes)", raft.ErrSnapshotMismatch, meta.Index, meta.Term, meta.Size)
	case !meta.Conf.Equal(in.Conf):
		return fmt.Errorf("%w: snapshot at %d has configuration %+v, its first chunk announced %+v", raft.ErrSnapshotMismatch, meta.Index, meta.Conf, in.Conf)
	case s.in.n != meta.Size:
		return fmt.Errorf("%w: incoming snapshot incomplete: %d of %d bytes", raft.ErrSnapshotMismatch, s.in.n, meta.Size)
	case meta.Index < s.snap.Index || meta.Index < s.hs.Commit:
		s.dropIncoming()
		return fmt.Errorf("%w: snapshot at %d is behind the stored snapshot %d or the commit index %d", raft.ErrCompacted, meta.Index, s.snap.Index, s.hs.Commit)
	}
	sum, err := s.incomingCRC()
	if err != nil {
		s.dropIncoming()
		return err
	}
	if sum != meta.CRC {
		s.dropIncoming()
		return fmt.Errorf("%w: incoming data CRC %08x, expected %08x", raft.ErrSnapshotMismatch, sum, meta.CRC)
	}
	return nil
}

// incomingCRC reads the incoming data back: what is checked is what the
// file holds, not what was handed to WriteSnapshotChunk.
func (s *Storage) incomingCRC() (uint32, error) {
	buf := make([]byte, 64<<10)
	r := io.NewSectionReader(s.in.f, s.in.dataOff(), int64(s.in.n))
	var sum uint32
	for {
		n, err := r.Read(buf)
		sum = raft.UpdateSnapshotCRC(sum, buf[:n])
		if errors.Is(err, io.EOF) {
			return sum, nil
		}
		if err != nil {
			return 0, fmt.Errorf("storage/file: reading %s: %w", s.path(incomingName), err)
		}
	}
}

// resetLog discards every stored entry so that the log restarts after
// (index, term), which SNAPSHOT already holds. Segments go newest first,
// so that a crash leaves a prefix of the log (never a log with a hole),
// and their removal is durable before the new segment appears, so that no
// old segment can come back beside it. LOGSTART is written last: until
// then Open recognises the new segment by its first index, the snapshot's
// plus one. Any failure fails the storage.
func (s *Storage) resetLog(index raft.Index, term raft.Term) error {
	for len(s.segs) > 0 {
		seg := s.active()
		_ = seg.f.Close()
		s.segs = s.segs[:len(s.segs)-1]
		if err := s.fs.Remove(seg.path); err != nil {
			return s.fail("remove", seg.path, err)
		}
	}
	if err := s.syncDir(); err != nil {
		return s.fail("fsync", s.dir, err)
	}
	s.ci, s.ct, s.idx = index, term, nil
	s.wbuf, s.dirty, s.truncated = s.wbuf[:0], false, false
	s.cache.truncate(0)
	if err := s.createFirstSegment(); err != nil {
		return s.fail("create", s.path(segName(index+1)), err)
	}
	if err := s.writeAtomic(logStartName, encodeLogStart(index, term)); err != nil {
		return s.fail("write", s.path(logStartName), err)
	}
	s.dirDirty = false
	return nil
}

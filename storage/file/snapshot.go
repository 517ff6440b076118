package file

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// Snapshot implements raft.Storage: the stored snapshot's metadata, from
// memory.
func (s *Storage) Snapshot() (raft.SnapshotMeta, error) {
	if err := s.usable(); err != nil {
		return raft.SnapshotMeta{}, err
	}
	return s.snap, nil
}

// ReadSnapshot implements raft.Storage with one positioned read of the
// SNAPSHOT file, through a handle kept open for the current snapshot. It
// does not check the data's CRC: a receiver checks the whole snapshot
// against it before installing it.
func (s *Storage) ReadSnapshot(index raft.Index, off uint64, p []byte) (int, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	if s.snap.IsEmpty() || index != s.snap.Index {
		return 0, raft.ErrSnapshotChanged
	}
	if off >= s.snap.Size {
		return 0, nil
	}
	p = p[:min(uint64(len(p)), s.snap.Size-off)]
	at := s.snapd + int64(off)
	n, err := s.snapf.ReadAt(p, at)
	if n < len(p) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return n, &CorruptError{File: s.path(snapshotName), Offset: at, Err: err}
	}
	return n, nil
}

// CreateSnapshot implements storage.Storage: a snapshot of meta.Index
// (whose term is meta.Term) under the configuration meta.Conf (meta's Size
// and CRC are ignored). write streams the data into SNAPSHOT.tmp, after
// the room for the header and the configuration, through a 64 KiB buffer
// (the data is never held whole), which computes its size and CRC; then
// the header and the configuration are written at the start, the file
// fsynced, renamed over SNAPSHOT and the directory fsynced. A crash at any
// point leaves the previous snapshot (Open removes the temp file).
// Refused: index below the stored snapshot's or the compaction point
// (raft.ErrCompacted), beyond the log (raft.ErrUnavailable), whose term is
// not meta.Term (raft.ErrSnapshotMismatch), or an invalid Conf
// (raft.ErrInvalidConf). An error of write, or of the temp file, leaves
// the storage usable; a failed rename fails it.
func (s *Storage) CreateSnapshot(meta raft.SnapshotMeta, write func(io.Writer) error) (raft.SnapshotMeta, error) {
	if err := s.usable(); err != nil {
		return raft.SnapshotMeta{}, err
	}
	index, term := meta.Index, meta.Term
	if err := s.checkSnapshotPoint(index, term); err != nil {
		return raft.SnapshotMeta{}, err
	}
	conf, err := encodeConf(meta.Conf)
	if err != nil {
		return raft.SnapshotMeta{}, fmt.Errorf("storage/file: %w", err)
	}
	if len(s.wbuf) > 0 || s.dirty {
		// The covered entries become durable first, so that the stored
		// log always reaches a snapshot this node made (Open discards a
		// log that does not).
		if err := s.Sync(); err != nil {
			return raft.SnapshotMeta{}, err
		}
	}
	tmp := s.path(snapshotName + tmpSuffix)
	meta = raft.SnapshotMeta{Index: index, Term: term, Conf: meta.Conf.Clone()}
	f, meta, err := s.writeSnapshotTemp(tmp, meta, conf, write)
	if err != nil {
		return raft.SnapshotMeta{}, err
	}
	if err := s.publishSnapshot(f, tmp, meta, snapHeaderLen+int64(len(conf))); err != nil {
		return raft.SnapshotMeta{}, err
	}
	return meta, nil
}

func (s *Storage) checkSnapshotPoint(index raft.Index, term raft.Term) error {
	switch {
	case index < s.snap.Index || index < s.ci:
		return raft.ErrCompacted
	case index > s.lastIndex():
		return raft.ErrUnavailable
	}
	if t, _ := s.Term(index); index == 0 || t != term {
		return fmt.Errorf("%w: entry %d has term %d, not %d", raft.ErrSnapshotMismatch, index, t, term)
	}
	return nil
}

// writeSnapshotTemp writes a complete, fsynced snapshot file at tmp of
// meta's index, term and configuration (encoded: conf) and returns it open
// with meta's size and CRC set. On failure the temp file is removed.
func (s *Storage) writeSnapshotTemp(tmp string, meta raft.SnapshotMeta, conf []byte, write func(io.Writer) error) (File, raft.SnapshotMeta, error) {
	f, err := s.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, meta, fmt.Errorf("storage/file: creating %s: %w", tmp, err)
	}
	sw := &snapWriter{buf: bufio.NewWriterSize(&fileWriter{f: f, off: snapHeaderLen + int64(len(conf))}, 64<<10)}
	werr := write(sw)
	if sw.err == nil {
		sw.err = sw.buf.Flush()
	}
	meta.Size, meta.CRC = sw.n, sw.crc
	if werr == nil && sw.err == nil {
		sw.err = s.writeAndSync(f, encodeSnapHeader(snapMagic, meta, conf))
	}
	if werr != nil || sw.err != nil {
		_ = f.Close()
		_ = s.fs.Remove(tmp)
		if sw.err != nil {
			return nil, meta, fmt.Errorf("storage/file: writing %s: %w", tmp, sw.err)
		}
		return nil, meta, fmt.Errorf("storage/file: snapshot data: %w", werr)
	}
	return f, meta, nil
}

// writeAndSync writes a header (with its configuration) at offset 0 and
// fsyncs the file.
func (s *Storage) writeAndSync(f File, hdr []byte) error {
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return err
	}
	s.stats.Fsyncs++
	return f.Sync()
}

// publishSnapshot renames a complete, fsynced snapshot file, whose data
// starts at dataOff, over SNAPSHOT and fsyncs the directory; f, open on
// it, then serves ReadSnapshot. A failure here leaves it unknown which
// snapshot a restart finds, so it fails the storage.
func (s *Storage) publishSnapshot(f File, from string, meta raft.SnapshotMeta, dataOff int64) error {
	if err := s.fs.Rename(from, s.path(snapshotName)); err != nil {
		_ = f.Close()
		return s.fail("rename", from, err)
	}
	if err := s.syncDir(); err != nil {
		_ = f.Close()
		return s.fail("fsync", s.dir, err)
	}
	if s.snapf != nil {
		_ = s.snapf.Close()
	}
	s.snap, s.snapf, s.snapd = meta, f, dataOff
	return nil
}

// snapWriter is the io.Writer CreateSnapshot's caller writes to: it counts
// and checksums the data, and keeps the file's error apart from the
// caller's, so that only I/O failures are reported as such.
type snapWriter struct {
	buf *bufio.Writer
	n   uint64
	crc uint32
	err error
}

func (w *snapWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.buf.Write(p)
	w.n += uint64(n)
	w.crc = raft.UpdateSnapshotCRC(w.crc, p[:n])
	w.err = err
	return n, err
}

// fileWriter adapts a File to io.Writer with positioned writes.
type fileWriter struct {
	f   File
	off int64
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}

// OpenSnapshot implements storage.Storage: the reader reads the SNAPSHOT
// file through its own handle (so it survives a later snapshot replacing
// the file) and checks the data's CRC as it goes: at the end, a mismatch
// or a short file is a *CorruptError that matches raft.ErrSnapshotMismatch
// and ErrCorrupt. Nothing is read twice; a restore must not commit what
// it read before the reader reported io.EOF.
func (s *Storage) OpenSnapshot() (raft.SnapshotMeta, io.ReadCloser, error) {
	if err := s.usable(); err != nil {
		return raft.SnapshotMeta{}, nil, err
	}
	if s.snap.IsEmpty() {
		return raft.SnapshotMeta{}, nil, storage.ErrNoSnapshot
	}
	path := s.path(snapshotName)
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return raft.SnapshotMeta{}, nil, fmt.Errorf("storage/file: %w", err)
	}
	r := &snapReader{r: io.NewSectionReader(f, s.snapd, int64(s.snap.Size)), f: f, path: path, meta: s.snap}
	return s.snap, r, nil
}

// snapReader verifies the snapshot's length and CRC as it is read.
type snapReader struct {
	r    *io.SectionReader
	f    File
	path string
	meta raft.SnapshotMeta
	n    uint64
	crc  uint32
}

func (r *snapReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += uint64(n)
	r.crc = raft.UpdateSnapshotCRC(r.crc, p[:n])
	if !errors.Is(err, io.EOF) {
		return n, err
	}
	switch {
	case r.n != r.meta.Size:
		err = fmt.Errorf("%w: file ends after %d of %d data bytes", raft.ErrSnapshotMismatch, r.n, r.meta.Size)
	case r.crc != r.meta.CRC:
		err = fmt.Errorf("%w: data CRC %08x, header says %08x", raft.ErrSnapshotMismatch, r.crc, r.meta.CRC)
	default:
		return n, io.EOF
	}
	return n, &CorruptError{File: r.path, Offset: -1, Err: err}
}

func (r *snapReader) Close() error { return r.f.Close() }

// loadSnapshot reads the SNAPSHOT header and configuration at Open and
// keeps the file open for ReadSnapshot. The file only ever appears by a
// rename after an fsync, so a bad header or configuration, or a length
// that disagrees with the header, is damage, never a crash. The data's
// CRC is not read here (it would cost reading the whole snapshot at every
// start): OpenSnapshot's reader checks it.
func (s *Storage) loadSnapshot(present bool) error {
	if !present {
		return nil
	}
	path := s.path(snapshotName)
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return &CorruptError{File: path, Offset: -1, Err: err}
	}
	h, err := readSnapHeader(f, path)
	if err != nil {
		_ = f.Close()
		return err
	}
	s.snap, s.snapf, s.snapd, s.rec.Snapshot = h.meta, f, h.dataOff(), h.meta
	return nil
}

func readSnapHeader(f File, path string) (snapHeader, error) {
	st, err := f.Stat()
	if err != nil {
		return snapHeader{}, &CorruptError{File: path, Offset: -1, Err: err}
	}
	b := make([]byte, snapHeaderLen)
	n, _ := f.ReadAt(b, 0)
	h, bad, off := decodeSnapHeader(b[:n], func(k int) ([]byte, error) {
		cb := make([]byte, k)
		if m, err := f.ReadAt(cb, snapHeaderLen); m < k {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return cb, nil
	})
	switch {
	case h.version != snapVersion && bad == "":
		return h, fmt.Errorf("%w: %s has snapshot format version %d, this build reads %d", ErrVersion, path, h.version, snapVersion)
	case bad != "":
		return h, corrupt(path, off, bad)
	case st.Size() < h.dataOff() || uint64(st.Size()-h.dataOff()) != h.meta.Size:
		return h, corrupt(path, -1, fmt.Sprintf("file holds %d bytes, the header announces %d bytes of data after %d of header and configuration", st.Size(), h.meta.Size, h.dataOff()))
	}
	return h, nil
}

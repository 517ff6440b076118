package file

import (
	"bufio"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"

	"github.com/embraft/embraft/raft"
)

// SnapshotMeta describes a saved snapshot.
type SnapshotMeta struct {
	// Index and Term are those of the last entry the snapshot covers.
	Index raft.Index
	Term  raft.Term
	// Config is opaque to storage (the cluster configuration); stored as is.
	Config []byte
}

// MaxSnapshotConfigBytes bounds SnapshotMeta.Config.
const MaxSnapshotConfigBytes = 1 << 20

// The SNAPSHOT file:
//
//	header   magic(8) version u32 index u64 term u64 configLen u32
//	         config(configLen) crc u32 (CRC-32C of the header before it)
//	data     the snapshot bytes
//	trailer  dataLen u64 dataCRC u32 crc u32 (CRC-32C of the 12 bytes before)
const (
	snapFixedLen   = 8 + 4 + 8 + 8 + 4
	snapTrailerLen = 16
)

// SaveSnapshot stores a snapshot, replacing the previous one atomically:
// it writes SNAPSHOT.tmp (header, data, trailer with the data's CRC),
// fsyncs it, renames it over SNAPSHOT and fsyncs the directory. A crash at
// any point leaves the previous snapshot intact (Open removes the temp
// file). An error reading data leaves the storage usable; an I/O error
// fails it like any other.
func (s *Storage) SaveSnapshot(meta SnapshotMeta, data io.Reader) error {
	if err := s.usable(); err != nil {
		return err
	}
	if len(meta.Config) > MaxSnapshotConfigBytes {
		return fmt.Errorf("%w: snapshot config of %d bytes exceeds %d", ErrOptions, len(meta.Config), MaxSnapshotConfigBytes)
	}
	tmp := s.path(snapshotName + tmpSuffix)
	f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return s.fail("create", tmp, err)
	}
	rerr, werr := writeSnapshot(f, meta, data)
	if werr == nil {
		s.stats.Fsyncs++
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if rerr != nil || werr != nil {
		_ = s.fs.Remove(tmp)
		if werr != nil {
			return s.fail("write", tmp, werr)
		}
		return fmt.Errorf("storage/file: reading snapshot data: %w", rerr)
	}
	if err := s.fs.Rename(tmp, s.path(snapshotName)); err != nil {
		return s.fail("rename", tmp, err)
	}
	if err := s.syncDir(); err != nil {
		return s.fail("fsync", s.dir, err)
	}
	return nil
}

// writeSnapshot writes the whole file, returning the data reader's error
// and the file's error separately.
func writeSnapshot(f File, meta SnapshotMeta, data io.Reader) (rerr, werr error) {
	w := bufio.NewWriterSize(&fileWriter{f: f}, 64<<10)
	hdr := append(snapMagic[:0:0], snapMagic[:]...)
	hdr = le.AppendUint32(hdr, formatVersion)
	hdr = le.AppendUint64(hdr, uint64(meta.Index))
	hdr = le.AppendUint64(hdr, uint64(meta.Term))
	hdr = le.AppendUint32(hdr, uint32(len(meta.Config)))
	hdr = append(hdr, meta.Config...)
	hdr = le.AppendUint32(hdr, crc(hdr))
	if _, err := w.Write(hdr); err != nil {
		return nil, err
	}
	n, sum, rerr, werr := copySnapshotData(w, data)
	if rerr != nil || werr != nil {
		return rerr, werr
	}
	tr := le.AppendUint64(nil, uint64(n))
	tr = le.AppendUint32(tr, sum)
	tr = le.AppendUint32(tr, crc(tr))
	if _, err := w.Write(tr); err != nil {
		return nil, err
	}
	return nil, w.Flush()
}

// copySnapshotData copies data to w, computing its length and CRC, and
// tells the reader's errors from the writer's.
func copySnapshotData(w io.Writer, data io.Reader) (n int64, sum uint32, rerr, werr error) {
	buf := make([]byte, 32<<10)
	for {
		k, err := data.Read(buf)
		if k > 0 {
			sum = crc32.Update(sum, castagnoli, buf[:k])
			n += int64(k)
			if _, werr = w.Write(buf[:k]); werr != nil {
				return n, sum, nil, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return n, sum, nil, nil
		}
		if err != nil {
			return n, sum, err, nil
		}
	}
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

// OpenSnapshot returns the saved snapshot: its metadata and a reader of
// its data, which the caller must close. The whole file is validated
// (header, trailer, the data's CRC) before it returns, so a restore never
// starts on damaged data. ErrNoSnapshot if none was saved.
func (s *Storage) OpenSnapshot() (SnapshotMeta, io.ReadCloser, error) {
	if err := s.usable(); err != nil {
		return SnapshotMeta{}, nil, err
	}
	path := s.path(snapshotName)
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return SnapshotMeta{}, nil, ErrNoSnapshot
	}
	if err != nil {
		return SnapshotMeta{}, nil, fmt.Errorf("storage/file: %w", err)
	}
	meta, data, err := readSnapshot(f, path)
	if err != nil {
		_ = f.Close()
		return SnapshotMeta{}, nil, err
	}
	return meta, struct {
		io.Reader
		io.Closer
	}{data, f}, nil
}

// readSnapshot validates a SNAPSHOT file and returns its data section.
func readSnapshot(f File, path string) (SnapshotMeta, *io.SectionReader, error) {
	var meta SnapshotMeta
	st, err := f.Stat()
	if err != nil {
		return meta, nil, &CorruptError{File: path, Offset: -1, Err: err}
	}
	size := st.Size()
	fixed := make([]byte, snapFixedLen)
	if _, err := f.ReadAt(fixed, 0); err != nil || [8]byte(fixed[:8]) != snapMagic {
		return meta, nil, corrupt(path, 0, "bad snapshot header")
	}
	if v := le.Uint32(fixed[8:]); v != formatVersion {
		return meta, nil, fmt.Errorf("%w: %s has format version %d", ErrVersion, path, v)
	}
	clen := int64(le.Uint32(fixed[28:]))
	hdrLen := snapFixedLen + clen + 4
	if clen > MaxSnapshotConfigBytes || hdrLen+snapTrailerLen > size {
		return meta, nil, corrupt(path, 28, "bad snapshot config length")
	}
	hdr := make([]byte, hdrLen)
	if _, err := f.ReadAt(hdr, 0); err != nil || le.Uint32(hdr[hdrLen-4:]) != crc(hdr[:hdrLen-4]) {
		return meta, nil, corrupt(path, 0, "snapshot header checksum mismatch")
	}
	meta = SnapshotMeta{Index: raft.Index(le.Uint64(fixed[12:])), Term: raft.Term(le.Uint64(fixed[20:])),
		Config: hdr[snapFixedLen : snapFixedLen+clen]}
	data := io.NewSectionReader(f, hdrLen, size-hdrLen-snapTrailerLen)
	if err := checkSnapshotData(f, path, data, size); err != nil {
		return SnapshotMeta{}, nil, err
	}
	return meta, data, nil
}

// checkSnapshotData verifies the trailer and the data's CRC.
func checkSnapshotData(f File, path string, data *io.SectionReader, size int64) error {
	tr := make([]byte, snapTrailerLen)
	at := size - snapTrailerLen
	if _, err := f.ReadAt(tr, at); err != nil || le.Uint32(tr[12:]) != crc(tr[:12]) {
		return corrupt(path, at, "bad snapshot trailer")
	}
	if int64(le.Uint64(tr)) != data.Size() {
		return corrupt(path, at, "snapshot data length mismatch")
	}
	var sum hash.Hash32 = crc32.New(castagnoli)
	if _, err := io.Copy(sum, io.NewSectionReader(data, 0, data.Size())); err != nil {
		return &CorruptError{File: path, Offset: -1, Err: err}
	}
	if sum.Sum32() != le.Uint32(tr[8:]) {
		return corrupt(path, -1, "snapshot data checksum mismatch")
	}
	return nil
}

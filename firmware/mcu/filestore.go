package mcu

import (
	"errors"
	"strconv"

	"github.com/embraft/embraft/firmware/semihost"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/wire"
)

// FileStore is the firmware's durable storage.Storage: files on the host,
// reached through semihosting, in the formats of docs/STORAGE.md (one
// directory per node: META, HARDSTATE, 0000000000000001.log), so that
// storage/file.Open on the host accepts what the firmware wrote.
//
// What it keeps of storage/file: checksummed frames holding wire entry
// records, the crash-atomic two-slot hard state (the slot holding the last
// written state is never overwritten), entries written before the hard state
// that commits them, and recovery that cuts a torn tail (a bad last frame
// with nothing valid after it, above the durable commit index) and refuses
// any other damage. What it leaves out: segments, file compaction, LOGSTART
// and SNAPSHOT (the log file keeps the whole history), and fsync, which
// semihosting does not have: a write is done when QEMU's write(2) returns,
// which survives the emulator being killed but not the host losing power.
//
// RAM holds at most MaxEntries entries (the window), compacted to the
// cluster's Floor; entries below the window are only in the file. Open
// streams the file once: it gives every committed entry to Replay (so the
// state machine is rebuilt without holding the log) and keeps the last
// entries in the window.
type FileStore struct {
	opts    FileOptions
	id      identity
	seg     *semihost.File
	hsf     *semihost.File
	segPath string

	end  int64  // bytes of the segment file written
	wbuf []byte // frames appended and not yet written; they go at end
	w    window

	hs        raft.HardState // the latest SetHardState
	hsOnDisk  raft.HardState
	hsSeq     uint64 // sequence number of the slot holding hsOnDisk
	hsDurable int    // which slot holds hsOnDisk

	rec    Recovery
	err    error // set by a failed write: every later call returns it
	closed bool
}

var _ storage.Storage = (*FileStore)(nil)

// FileOptions configures a FileStore.
type FileOptions struct {
	// Dir is the node's directory on the host (relative to QEMU's working
	// directory). It must exist: semihosting cannot create directories.
	Dir       string
	ClusterID wire.ClusterID
	NodeID    raft.NodeID
	// MaxEntries bounds the window of entries kept in RAM
	// (DefaultWindowEntries if <= 0).
	MaxEntries int
	// Progress gives the cluster's compaction floor and learns the store's
	// last index (nil: compact only to make room at Open).
	Progress *Progress
	// Replay, if set, receives every entry up to the durable commit index,
	// in log order, while Open reads the log. e.Data is only valid during
	// the call.
	Replay func(e *raft.Entry)
}

// Recovery tells what Open found.
type Recovery struct {
	Created    bool           // the directory was empty and has been initialised
	HardState  raft.HardState // the state the node starts from
	FirstIndex raft.Index     // first entry kept in RAM
	LastIndex  raft.Index     // last entry of the log
	Records    int            // entries read from the log file
	Replayed   int            // entries given to Replay (up to the commit index)
	LogBytes   int64          // size of the log file after recovery
	TornBytes  int64          // bytes of a torn tail cut off
	TermRaised bool           // the last entry's term was above the hard state's (no vote kept)
}

// Errors of OpenFile.
var (
	// ErrCorrupt: the files hold damage that a crash cannot explain.
	ErrCorrupt = errors.New("mcu: storage corrupt")
	// ErrWrongNode: the directory belongs to another node or cluster.
	ErrWrongNode = errors.New("mcu: storage directory belongs to another node")
	// ErrFailed: a write failed earlier; the store refuses everything.
	ErrFailed = errors.New("mcu: storage failed")
)

type fileError struct {
	base error
	file string
	off  int64
	why  string
}

func (e *fileError) Error() string {
	s := e.base.Error() + ": " + e.file
	if e.off >= 0 {
		s += " at offset " + strconv.FormatInt(e.off, 10)
	}
	return s + ": " + e.why
}
func (e *fileError) Unwrap() error { return e.base }

func corrupt(file string, off int64, why string) error {
	return &fileError{ErrCorrupt, file, off, why}
}

// maxTornBytes bounds what recovery will read after a bad frame to decide
// that it is a torn tail: a torn tail is at most one Sync's worth of frames.
const maxTornBytes = 64 << 10

// flushBytes is the size at which Append writes its buffer before Sync.
const flushBytes = 16 << 10

// OpenFile opens (or initialises) the node's storage directory and
// recovers it. See FileStore.
func OpenFile(opts FileOptions) (*FileStore, Recovery, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultWindowEntries
	}
	s := &FileStore{opts: opts, id: identity{formatVersion, opts.ClusterID, opts.NodeID},
		segPath: opts.Dir + "/" + segmentName}
	if err := s.open(); err != nil {
		s.closeFiles()
		return nil, Recovery{}, err
	}
	return s, s.rec, nil
}

func (s *FileStore) path(name string) string { return s.opts.Dir + "/" + name }

func (s *FileStore) open() error {
	meta, err := semihost.Open(s.path(metaName), semihost.ModeRead)
	switch {
	case semihost.IsNotExist(err):
		if err := s.initDir(); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		b := make([]byte, metaLen+1)
		n, err := meta.ReadAt(b, 0)
		_ = meta.Close()
		if err != nil {
			return err
		}
		id, ok := decodeMeta(b[:n])
		switch {
		case !ok:
			return corrupt(s.path(metaName), -1, "bad META record (length, magic or checksum)")
		case id.version != formatVersion:
			return corrupt(s.path(metaName), -1, "format version "+strconv.FormatUint(uint64(id.version), 10))
		case id != s.id:
			return &fileError{ErrWrongNode, s.opts.Dir, -1, "holds " + id.String() + ", opened as " + s.id.String()}
		}
	}
	if err := s.readHardState(); err != nil {
		return err
	}
	return s.readLog()
}

// initDir writes a fresh HARDSTATE and segment, then META (through a
// temporary file and a rename), so a directory with META is complete.
func (s *FileStore) initDir() error {
	if f, err := semihost.Open(s.segPath, semihost.ModeRead); err == nil {
		n, _ := f.Len()
		_ = f.Close()
		if n > segHeaderLen {
			return corrupt(s.path(metaName), -1, "missing, but the directory holds a log")
		}
	}
	if f, err := semihost.Open(s.path(hardStateName), semihost.ModeRead); err == nil {
		b := make([]byte, hsSlots*hsSlotSize)
		n, _ := f.ReadAt(b, 0)
		_ = f.Close()
		for lo := 0; lo < n; lo += hsSlotSize {
			if _, hs, ok := decodeHSSlot(b[lo:min(lo+hsSlotSize, n)]); ok && hs.Term > 0 {
				return corrupt(s.path(metaName), -1, "missing, but HARDSTATE holds a term")
			}
		}
	}
	hs := make([]byte, hsSlots*hsSlotSize)
	copy(hs, encodeHSSlot(1, raft.HardState{}))
	if err := writeNew(s.path(hardStateName), hs); err != nil {
		if semihost.IsNotExist(err) {
			return errors.New("mcu: storage directory " + s.opts.Dir +
				" does not exist (semihosting cannot create directories: mkdir it on the host)")
		}
		return err
	}
	if err := writeNew(s.segPath, encodeSegHeader(s.id, 1)); err != nil {
		return err
	}
	tmp := s.path(metaName + tmpSuffix)
	if err := writeNew(tmp, encodeMeta(s.id)); err != nil {
		return err
	}
	if err := semihost.Rename(tmp, s.path(metaName)); err != nil {
		return err
	}
	s.rec.Created = true
	return nil
}

func writeNew(name string, data []byte) error {
	f, err := semihost.Open(name, semihost.ModeWrite)
	if err != nil {
		return err
	}
	if err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func (s *FileStore) readHardState() error {
	f, err := semihost.Open(s.path(hardStateName), semihost.ModeReadWrite)
	if err != nil {
		return err
	}
	s.hsf = f
	b := make([]byte, hsSlots*hsSlotSize)
	n, err := f.ReadAt(b, 0)
	if err != nil {
		return err
	}
	found := false
	for i := range hsSlots {
		lo := min(i*hsSlotSize, n)
		seq, hs, ok := decodeHSSlot(b[lo:min(lo+hsSlotSize, n)])
		if ok && (!found || seq > s.hsSeq) {
			found, s.hsSeq, s.hsDurable, s.hsOnDisk = true, seq, i, hs
		}
	}
	if !found {
		return corrupt(s.path(hardStateName), -1, "no valid slot")
	}
	s.hs = s.hsOnDisk
	return nil
}

// readLog validates the segment frame by frame and replays the committed
// entries, remembering only the offsets and terms of the last entries; then
// it cuts a torn tail and reads the tail of the log back into the window in
// one piece. Two passes, so that a long log costs neither RAM nor a stream
// of allocations (which fragment TinyGo's non-moving heap).
func (s *FileStore) readLog() error {
	f, err := semihost.Open(s.segPath, semihost.ModeReadWrite)
	if err != nil {
		if semihost.IsNotExist(err) {
			return corrupt(s.segPath, -1, "missing")
		}
		return err
	}
	s.seg = f
	size, err := f.Len()
	if err != nil {
		return err
	}
	r := chunkReader{f: f, size: size}
	hdr, err := r.at(0, segHeaderLen)
	if err != nil {
		return err
	}
	id, first, ok := decodeSegHeader(hdr)
	switch {
	case !ok:
		return corrupt(s.segPath, 0, "bad segment header")
	case id != s.id:
		return &fileError{ErrWrongNode, s.segPath, 0, "segment of " + id.String() + ", opened as " + s.id.String()}
	case first != 1:
		return corrupt(s.segPath, 0, "segment starts at index "+strconv.FormatUint(uint64(first), 10))
	}
	commit := s.hs.Commit
	wmax := s.opts.MaxEntries
	// ring remembers the frame offset and term of the last max+1 entries.
	ringOff := make([]int64, wmax+1)
	ringTerm := make([]raft.Term, wmax+1)
	var prev raft.Entry
	off := int64(segHeaderLen)
	for off < size {
		bad := ""
		var e raft.Entry
		var n int
		if size-off < frameHeaderLen {
			bad = "incomplete frame header"
		} else if hdr, err := r.at(off, frameHeaderLen); err != nil {
			return err
		} else if k, ok := frameLen(hdr); !ok {
			bad = "implausible record length"
		} else if off+frameHeaderLen+int64(k) > size {
			bad = "incomplete record"
		} else {
			n = k
			h := [frameHeaderLen]byte(hdr)
			rec, err := r.at(off+frameHeaderLen, n)
			if err != nil {
				return err
			}
			if !frameOK(h[:], rec) {
				bad = "checksum mismatch"
			} else if m, derr := wire.DecodeEntry(rec, &e); derr != nil || m != len(rec) {
				return corrupt(s.segPath, off, "checksummed record does not decode")
			}
		}
		if bad != "" {
			if err := s.tornTail(&r, off, prev.Index+1, bad); err != nil {
				return err
			}
			size = off
			break
		}
		switch {
		case e.Index != prev.Index+1:
			return corrupt(s.segPath, off, "index "+strconv.FormatUint(uint64(e.Index), 10)+
				" after "+strconv.FormatUint(uint64(prev.Index), 10))
		case e.Term < prev.Term:
			return corrupt(s.segPath, off, "term decreases")
		}
		if e.Index <= commit && s.opts.Replay != nil {
			s.opts.Replay(&e)
			s.rec.Replayed++
		}
		slot := int(e.Index % raft.Index(wmax+1))
		ringOff[slot], ringTerm[slot] = off, e.Term
		prev = e
		s.rec.Records++
		off += frameHeaderLen + int64(n)
	}
	s.end = size
	last := prev.Index
	if last > commit && int(last-commit) > wmax {
		return errors.New("mcu: " + s.segPath + ": " + strconv.FormatUint(uint64(last-commit), 10) +
			" uncommitted entries, more than the RAM window holds (" + strconv.Itoa(wmax) + ")")
	}
	// The window: every uncommitted entry and, to serve lagging peers, up
	// to half a window of committed ones.
	k := int(min(last, raft.Index(max(int(last-commit), wmax/2))))
	wfirst := last - raft.Index(k) + 1
	var prevTerm raft.Term
	if wfirst > 1 {
		prevTerm = ringTerm[int((wfirst-1)%raft.Index(wmax+1))]
	}
	s.w = newWindow(wmax, wfirst-1, prevTerm, true)
	if k > 0 {
		start := ringOff[int(wfirst%raft.Index(wmax+1))]
		tail, err := r.at(start, int(size-start))
		if err != nil {
			return err
		}
		ents := make([]raft.Entry, k)
		offs := make([]int64, k)
		for i, at := 0, 0; i < k; i++ {
			n := int(le.Uint32(tail[at:]))
			if _, err := wire.DecodeEntry(tail[at+frameHeaderLen:at+frameHeaderLen+n], &ents[i]); err != nil {
				return corrupt(s.segPath, start+int64(at), "changed while being read")
			}
			offs[i] = start + int64(at)
			at += frameHeaderLen + n
		}
		s.w.put(cloneData(ents), offs)
	}
	return s.finishRecovery(prev)
}

// tornTail decides about a bad frame at off whose index would be idx: it
// cuts the file there if the frame is a torn tail, or reports corruption.
func (s *FileStore) tornTail(r *chunkReader, off int64, idx raft.Index, why string) error {
	if idx <= s.hs.Commit {
		return corrupt(s.segPath, off, why+" at or below the commit index")
	}
	if r.size-off > maxTornBytes {
		return corrupt(s.segPath, off, why+", followed by more than a torn tail")
	}
	rest, err := r.at(off, int(r.size-off))
	if err != nil {
		return err
	}
	if findFrame(rest, 1) >= 0 {
		return corrupt(s.segPath, off, why+", followed by a valid frame")
	}
	if err := s.cutFile(off); err != nil {
		return err
	}
	s.rec.TornBytes = r.size - off
	r.f, r.size, r.buf = s.seg, off, nil
	return nil
}

func (s *FileStore) finishRecovery(last raft.Entry) error {
	if s.hs.Commit > last.Index {
		return corrupt(s.path(hardStateName), -1, "commit index "+strconv.FormatUint(uint64(s.hs.Commit), 10)+
			" beyond the last entry "+strconv.FormatUint(uint64(last.Index), 10))
	}
	if last.Term > s.hs.Term {
		// Entries were written, the hard state naming their term was not:
		// no vote in that term was acknowledged (it would be in HARDSTATE).
		s.hs.Term, s.hs.Vote = last.Term, raft.None
		s.rec.TermRaised = true
	}
	s.rec.HardState = s.hs
	s.rec.FirstIndex, s.rec.LastIndex = s.w.first(), s.w.last()
	s.rec.LogBytes = s.end
	s.opts.Progress.Stored(s.opts.NodeID, s.w.last())
	return nil
}

// cutFile shortens the segment to n bytes: semihosting has no truncate, so
// the prefix is copied to a temporary file that is renamed over the
// segment (storage/file's Open removes such a *.tmp if a crash leaves it).
func (s *FileStore) cutFile(n int64) error {
	tmpPath := s.segPath + tmpSuffix
	tmp, err := semihost.Open(tmpPath, semihost.ModeWrite)
	if err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for at := int64(0); at < n; {
		k, err := s.seg.ReadAt(buf[:min(int64(len(buf)), n-at)], at)
		if err == nil && k == 0 {
			err = corrupt(s.segPath, at, "shorter than expected")
		}
		if err == nil {
			err = tmp.Write(buf[:k])
		}
		if err != nil {
			_ = tmp.Close()
			return err
		}
		at += int64(k)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	_ = s.seg.Close()
	s.seg = nil
	if err := semihost.Rename(tmpPath, s.segPath); err != nil {
		return err
	}
	f, err := semihost.Open(s.segPath, semihost.ModeReadWrite)
	if err != nil {
		return err
	}
	s.seg, s.end = f, n
	return nil
}

// chunkReader reads a file sequentially through a buffer.
type chunkReader struct {
	f    *semihost.File
	size int64
	buf  []byte
	base int64 // file offset of buf[0]
}

const chunkBytes = 16 << 10

// at returns bytes [off, off+n) of the file; valid until the next call.
func (r *chunkReader) at(off int64, n int) ([]byte, error) {
	if off >= r.base && off+int64(n) <= r.base+int64(len(r.buf)) {
		return r.buf[off-r.base : off-r.base+int64(n)], nil
	}
	want := max(n, chunkBytes)
	want = int(min(int64(want), r.size-off))
	if want < n {
		return nil, corrupt(r.f.Name(), off, "read past the end")
	}
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	k, err := r.f.ReadAt(r.buf, off)
	if err != nil {
		return nil, err
	}
	if k < n {
		return nil, corrupt(r.f.Name(), off, "short read")
	}
	r.buf, r.base = r.buf[:k], off
	return r.buf[:n], nil
}

func (s *FileStore) usable() error {
	if s.closed {
		return storage.ErrClosed
	}
	return s.err
}

func (s *FileStore) fail(err error) error {
	s.err = errors.Join(ErrFailed, err)
	return s.err
}

// InitialState implements raft.Storage.
func (s *FileStore) InitialState() (raft.HardState, error) {
	if err := s.usable(); err != nil {
		return raft.HardState{}, err
	}
	return s.hs, nil
}

// Entries implements raft.Storage (from the RAM window).
func (s *FileStore) Entries(lo, hi raft.Index, maxBytes int) ([]raft.Entry, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	return s.w.entries(lo, hi, maxBytes)
}

// Term implements raft.Storage.
func (s *FileStore) Term(i raft.Index) (raft.Term, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	return s.w.term(i)
}

// FirstIndex implements raft.Storage: the first entry in RAM.
func (s *FileStore) FirstIndex() (raft.Index, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	return s.w.first(), nil
}

// LastIndex implements raft.Storage.
func (s *FileStore) LastIndex() (raft.Index, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	return s.w.last(), nil
}

// Append implements storage.Storage: it validates, replaces a conflicting
// suffix (cutting the file if those frames were written), and encodes the
// frames into the write buffer, which Sync writes.
func (s *FileStore) Append(ents []raft.Entry) error {
	if err := s.usable(); err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if err := s.w.check(ents); err != nil {
		return err
	}
	s.w.maybeCompact(s.opts.Progress.Floor(), len(ents))
	first := ents[0].Index
	if err := s.w.room(first, len(ents)); err != nil {
		return err
	}
	if first <= s.w.last() {
		cut := s.w.offs[first-s.w.ents[0].Index]
		if cut >= s.end {
			s.wbuf = s.wbuf[:cut-s.end]
		} else {
			s.wbuf = s.wbuf[:0]
			if err := s.cutFile(cut); err != nil {
				return s.fail(err)
			}
		}
	}
	ents = cloneData(ents)
	offs := make([]int64, len(ents))
	for i := range ents {
		offs[i] = s.end + int64(len(s.wbuf))
		s.wbuf = appendFrame(s.wbuf, &ents[i])
	}
	s.w.put(ents, offs)
	s.opts.Progress.Stored(s.opts.NodeID, s.w.last())
	if len(s.wbuf) >= flushBytes {
		return s.flush()
	}
	return nil
}

func (s *FileStore) flush() error {
	if len(s.wbuf) == 0 {
		return nil
	}
	if err := s.seg.WriteAt(s.wbuf, s.end); err != nil {
		return s.fail(err)
	}
	s.end += int64(len(s.wbuf))
	s.wbuf = s.wbuf[:0]
	return nil
}

// SetHardState implements storage.Storage; Sync writes it.
func (s *FileStore) SetHardState(hs raft.HardState) error {
	if err := s.usable(); err != nil {
		return err
	}
	s.hs = hs
	return nil
}

// Sync implements storage.Storage: it writes the buffered frames, then the
// hard state (into the slot not holding the last one), so that the stored
// commit index never names an entry that is not written.
func (s *FileStore) Sync() error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	if s.hs != s.hsOnDisk {
		scratch := 1 - s.hsDurable
		if err := s.hsf.WriteAt(encodeHSSlot(s.hsSeq+1, s.hs), int64(scratch*hsSlotSize)); err != nil {
			return s.fail(err)
		}
		s.hsSeq, s.hsDurable, s.hsOnDisk = s.hsSeq+1, scratch, s.hs
	}
	s.w.maybeCompact(s.opts.Progress.Floor(), 0)
	return nil
}

// Close implements storage.Storage: it writes what is pending (a
// commit-only hard state change included) and closes the files.
func (s *FileStore) Close() error {
	if s.closed {
		return nil
	}
	err := s.Sync()
	s.closeFiles()
	s.closed = true
	return err
}

func (s *FileStore) closeFiles() {
	if s.seg != nil {
		_ = s.seg.Close()
		s.seg = nil
	}
	if s.hsf != nil {
		_ = s.hsf.Close()
		s.hsf = nil
	}
}

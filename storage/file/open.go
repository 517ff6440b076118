package file

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/embraft/embraft/raft"
)

// Open opens the storage in dir, creating and initialising the directory
// if it does not exist or is empty, and recovers it: see docs/STORAGE.md
// for what recovery accepts, repairs and refuses. Everything Open recovered
// is durable when it returns (the node will act on it).
func Open(dir string, opts Options) (*Storage, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Storage{dir: dir, opts: opts, fs: opts.FS, log: opts.Logger.With("dir", dir),
		id: identity{formatVersion, opts.ClusterID, opts.NodeID}}
	s.cache.max = opts.CacheBytes
	if err := s.open(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *Storage) closeFiles() {
	for _, seg := range s.segs {
		_ = seg.f.Close()
	}
	if s.hsf.f != nil {
		_ = s.hsf.f.Close()
	}
	if s.snapf != nil {
		_ = s.snapf.Close()
	}
	if s.in.f != nil {
		_ = s.in.f.Close() // Open deletes the file
	}
}

func (s *Storage) open() error {
	if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("storage/file: %w", err)
	}
	ls, err := s.list()
	if err != nil {
		return err
	}
	if !ls.meta {
		if err := s.initDir(ls); err != nil {
			return err
		}
		if ls, err = s.list(); err != nil {
			return err
		}
	}
	steps := []func() error{
		s.checkMeta, s.loadLogStart,
		func() error { return s.loadSnapshot(ls.snapshot) },
		s.loadHardState,
		func() error { return s.recoverLog(ls.segs) },
		s.checkHardState, s.makeDurable,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	s.rec.Segments, s.rec.Entries = len(s.segs), len(s.idx)
	s.log.Info("storage opened", "snapshot", uint64(s.snap.Index), "first", uint64(s.ci+1), "last", uint64(s.lastIndex()),
		"term", uint64(s.hs.Term), "commit", uint64(s.hs.Commit), "segments", len(s.segs))
	return nil
}

// listing is what a directory holds, by role.
type listing struct {
	meta, hardState, logStart, snapshot bool
	segs                                []raft.Index // first indexes, ascending
	other                               []string
}

// list reads the directory and removes temp files: a *.tmp file is an
// atomic replacement (META, LOGSTART, SNAPSHOT) that crashed before its
// rename, so the file it was to replace is still the valid one, and
// SNAPSHOT.incoming is a snapshot whose transfer or installation a crash
// interrupted before its rename (the leader sends it again).
func (s *Storage) list() (listing, error) {
	var ls listing
	des, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return ls, fmt.Errorf("storage/file: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		first, isSeg := parseSegName(name)
		switch {
		case name == metaName:
			ls.meta = true
		case name == hardStateName:
			ls.hardState = true
		case name == logStartName:
			ls.logStart = true
		case name == snapshotName:
			ls.snapshot = true
		case isSeg && de.Type().IsRegular():
			ls.segs = append(ls.segs, first)
		case (name == incomingName || strings.HasSuffix(name, tmpSuffix)) && de.Type().IsRegular():
			if err := s.fs.Remove(s.path(name)); err != nil {
				return ls, fmt.Errorf("storage/file: removing leftover %w", err)
			}
			s.log.Info("removed leftover temp file", "file", name)
			s.rec.RemovedFiles++
		default:
			ls.other = append(ls.other, name)
		}
	}
	slices.Sort(ls.segs)
	return ls, nil
}

// readSmall reads a whole small file (META, LOGSTART).
func (s *Storage) readSmall(name string, limit int) ([]byte, error) {
	f, err := s.fs.OpenFile(s.path(name), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, limit+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// checkMeta refuses a directory of another cluster, node or version.
func (s *Storage) checkMeta() error {
	path := s.path(metaName)
	b, err := s.readSmall(metaName, metaLen)
	if err != nil {
		return &CorruptError{File: path, Offset: -1, Err: err}
	}
	id, err := decodeMeta(b)
	if err != nil {
		return &CorruptError{File: path, Offset: 0, Err: err}
	}
	switch {
	case id.version != formatVersion:
		return fmt.Errorf("%w: %s has format version %d, this build reads %d", ErrVersion, s.dir, id.version, formatVersion)
	case id.cluster != s.id.cluster:
		return fmt.Errorf("%w: %s holds cluster %d (node %d), opened as cluster %d (node %d)",
			ErrWrongCluster, s.dir, id.cluster, id.node, s.id.cluster, s.id.node)
	case id.node != s.id.node:
		return fmt.Errorf("%w: %s holds node %d of cluster %d, opened as node %d",
			ErrWrongNode, s.dir, id.node, id.cluster, s.id.node)
	}
	return nil
}

// loadLogStart reads the compaction point; no LOGSTART means none (0, 0).
func (s *Storage) loadLogStart() error {
	b, err := s.readSmall(logStartName, logStartLen)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	path := s.path(logStartName)
	if err != nil {
		return &CorruptError{File: path, Offset: -1, Err: err}
	}
	i, t, ok := decodeLogStart(b)
	if !ok {
		return corrupt(path, 0, "bad LOGSTART record (length, magic or checksum)")
	}
	s.ci, s.ct = i, t
	return nil
}

// loadHardState picks the valid slot with the highest sequence number.
func (s *Storage) loadHardState() error {
	path := s.path(hardStateName)
	f, err := s.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return &CorruptError{File: path, Offset: -1, Err: err}
	}
	s.hsf = hardStateFile{f: f, path: path, durable: -1}
	b := make([]byte, hsSlots*hsSlotSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return &CorruptError{File: path, Offset: -1, Err: err}
	}
	b = b[:n]
	for i := range hsSlots {
		lo := min(i*hsSlotSize, len(b))
		seq, hs, ok := decodeHSSlot(b[lo:min(lo+hsSlotSize, len(b))])
		if ok && (s.hsf.durable < 0 || seq > s.hsf.seq) {
			s.hsf.seq, s.hsf.durable, s.hs = seq, i, hs
		}
	}
	if s.hsf.durable < 0 {
		return corrupt(path, 0, "neither hard-state slot is valid")
	}
	s.hsf.synced, s.hsf.written = s.hs, s.hs
	return nil
}

// checkHardState cross-checks the hard state with the recovered log.
func (s *Storage) checkHardState() error {
	last := s.lastIndex()
	if s.hs.Commit > last {
		return corrupt(s.hsf.path, -1, fmt.Sprintf("commit index %d is beyond the last log entry %d: acknowledged entries are missing", s.hs.Commit, last))
	}
	// The log is fsynced before HARDSTATE, so a crash between the two can
	// leave entries of a term the hard state has not reached. No vote in
	// that term was ever acknowledged (it would be in HARDSTATE), so the
	// term is raised with no vote: the core requires term >= last log term.
	if lt, _ := s.Term(last); lt > s.hs.Term {
		s.log.Warn("hard state term behind the log: raised", "term", uint64(s.hs.Term), "log_term", uint64(lt))
		s.hs = raft.HardState{Term: lt, Commit: s.hs.Commit}
		s.rec.TermRaisedToLog = true
	}
	// The snapshot's entries are committed: the core starts from them.
	s.hs.Commit = max(s.hs.Commit, s.snap.Index)
	return nil
}

// makeDurable fsyncs what recovery read or changed: the last segment may
// hold data a killed process wrote but never fsynced (and the node is about
// to acknowledge it), a torn tail was cut, files were removed.
func (s *Storage) makeDurable() error {
	seg := s.active()
	s.stats.Fsyncs += 2
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("storage/file: fsync %s: %w", seg.path, err)
	}
	if err := s.hsf.f.Sync(); err != nil {
		return fmt.Errorf("storage/file: fsync %s: %w", s.hsf.path, err)
	}
	if err := s.syncDir(); err != nil {
		return fmt.Errorf("storage/file: fsync %s: %w", s.dir, err)
	}
	return nil
}

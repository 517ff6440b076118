package mcu

import (
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// MaxSnapshotBytes bounds a snapshot a MemStore receives from a leader:
// it is buffered whole in RAM, and five nodes share 4 MiB. The kv store's
// state in the firmware is a few KiB.
const MaxSnapshotBytes = 256 << 10

// ErrSnapshotTooLarge: an incoming snapshot announces more than
// MaxSnapshotBytes. It also matches raft.ErrSnapshotMismatch.
var ErrSnapshotTooLarge = errors.New("mcu: incoming snapshot exceeds MaxSnapshotBytes")

// memSnapshot is a MemStore's snapshot state (part of what survives a
// Reopen, like the rest of battery-backed RAM).
type memSnapshot struct {
	meta raft.SnapshotMeta // Conf included (the store's own copy)
	data []byte
	// inMeta (without CRC, with the Conf of the first chunk) and inData
	// are the snapshot being received.
	inMeta raft.SnapshotMeta
	inData []byte
}

// Snapshot implements raft.Storage.
func (s *MemStore) Snapshot() (raft.SnapshotMeta, error) {
	if s.closed {
		return raft.SnapshotMeta{}, storage.ErrClosed
	}
	return s.snap.meta, nil
}

// ReadSnapshot implements raft.Storage.
func (s *MemStore) ReadSnapshot(index raft.Index, off uint64, p []byte) (int, error) {
	if s.closed {
		return 0, storage.ErrClosed
	}
	if s.snap.meta.IsEmpty() || index != s.snap.meta.Index {
		return 0, raft.ErrSnapshotChanged
	}
	if off >= uint64(len(s.snap.data)) {
		return 0, nil
	}
	return copy(p, s.snap.data[off:]), nil
}

// CreateSnapshot implements storage.Storage: a snapshot of meta.Index and
// meta.Term under meta.Conf, of which the store keeps a copy. write fills
// a buffer sized after the previous snapshot (one allocation in the steady
// state, which matters on TinyGo's non-moving heap). Refused: index below
// the stored snapshot or the window (raft.ErrCompacted), beyond the log
// (raft.ErrUnavailable), with another term (raft.ErrSnapshotMismatch), or
// an invalid Conf (raft.ErrInvalidConf), as storage/file does.
func (s *MemStore) CreateSnapshot(meta raft.SnapshotMeta, write func(io.Writer) error) (raft.SnapshotMeta, error) {
	if s.closed {
		return raft.SnapshotMeta{}, storage.ErrClosed
	}
	index, term := meta.Index, meta.Term
	switch t, err := s.w.term(index); {
	case index < s.snap.meta.Index || errors.Is(err, raft.ErrCompacted):
		return raft.SnapshotMeta{}, raft.ErrCompacted
	case err != nil:
		return raft.SnapshotMeta{}, err
	case index == 0 || t != term:
		return raft.SnapshotMeta{}, raft.ErrSnapshotMismatch
	case !validConf(meta.Conf):
		return raft.SnapshotMeta{}, raft.ErrInvalidConf
	}
	var buf bytes.Buffer
	buf.Grow(int(s.snap.meta.Size) + 512)
	if err := write(&buf); err != nil {
		return raft.SnapshotMeta{}, err
	}
	data := buf.Bytes()
	s.snap.meta = raft.SnapshotMeta{Index: index, Term: term, Size: uint64(len(data)), CRC: raft.SnapshotCRC(data),
		Conf: meta.Conf.Clone()}
	s.snap.data = data
	return s.snap.meta, nil
}

// OpenSnapshot implements storage.Storage. RAM holds the data as it was
// made or verified, so the reader does not check the CRC again.
func (s *MemStore) OpenSnapshot() (raft.SnapshotMeta, io.ReadCloser, error) {
	if s.closed {
		return raft.SnapshotMeta{}, nil, storage.ErrClosed
	}
	if s.snap.meta.IsEmpty() {
		return raft.SnapshotMeta{}, nil, storage.ErrNoSnapshot
	}
	return s.snap.meta, io.NopCloser(bytes.NewReader(s.snap.data)), nil
}

// Compact implements storage.Storage: it drops the window's entries up to
// index, which the snapshot must cover (raft.ErrUnavailable otherwise).
// Entries already dropped (by the floor) make it a no-op.
func (s *MemStore) Compact(index raft.Index) error {
	if s.closed {
		return storage.ErrClosed
	}
	if index > s.snap.meta.Index || index > s.w.last() {
		return raft.ErrUnavailable
	}
	s.w.compactTo(index)
	return nil
}

// WriteSnapshotChunk implements storage.Storage. The first chunk's Conf
// (which must be valid: an error matching raft.ErrInvalidConf and
// raft.ErrSnapshotMismatch) is the incoming snapshot's; later chunks must
// match its index, term and size.
func (s *MemStore) WriteSnapshotChunk(c raft.SnapshotChunk) error {
	if s.closed {
		return storage.ErrClosed
	}
	meta := c.Meta
	meta.CRC = 0
	switch {
	case meta.Size > MaxSnapshotBytes:
		return &snapshotTooLarge{meta.Size}
	case c.Offset == 0 && !validConf(meta.Conf):
		s.snap.inMeta, s.snap.inData = raft.SnapshotMeta{}, nil
		return errIncomingConf{}
	case c.Offset == 0:
		meta.Conf = meta.Conf.Clone()
		s.snap.inMeta, s.snap.inData = meta, make([]byte, 0, meta.Size)
	case !raft.SameSnapshot(meta, s.snap.inMeta) || c.Offset != uint64(len(s.snap.inData)):
		return raft.ErrSnapshotMismatch
	}
	if uint64(len(s.snap.inData))+uint64(len(c.Data)) > meta.Size {
		return raft.ErrSnapshotMismatch
	}
	s.snap.inData = append(s.snap.inData, c.Data...)
	return nil
}

// InstallSnapshot implements storage.Storage: the incoming snapshot must
// match meta, its Conf included (the first chunk's), else
// raft.ErrSnapshotMismatch. The window restarts after meta.Index and the
// commit index rises to it. The node restores its state
// machine from the snapshot next, without applying entries, so the store
// reports meta.Index as applied to the Progress: otherwise the floor (and
// with it the clients, which hold back on the backlog above the floor)
// would wait for entries this node will never apply.
func (s *MemStore) InstallSnapshot(meta raft.SnapshotMeta) error {
	if s.closed {
		return storage.ErrClosed
	}
	in := s.snap.inMeta
	in.CRC = meta.CRC
	if !raft.SameSnapshot(in, meta) || !in.Conf.Equal(meta.Conf) || meta.Index == 0 ||
		uint64(len(s.snap.inData)) != meta.Size || raft.SnapshotCRC(s.snap.inData) != meta.CRC {
		return raft.ErrSnapshotMismatch
	}
	if meta.Index < s.snap.meta.Index || meta.Index < s.hs.Commit {
		return raft.ErrCompacted // committed entries would be lost
	}
	meta.Conf = in.Conf
	s.snap = memSnapshot{meta: meta, data: s.snap.inData}
	s.w = newWindow(s.w.max, meta.Index, meta.Term, false)
	s.hs.Commit = meta.Index
	s.prog.Stored(s.id, meta.Index)
	s.prog.Applied(s.id, meta.Index)
	return nil
}

// compactTarget is how far the floor may compact the window: with a
// snapshot, never past it. node.Start restores the stored snapshot and
// replays the log from the entry after it, and raft.Storage promises that
// the snapshot covers FirstIndex()-1; an entry dropped past the snapshot
// would be silently missing from the restored state. Without a snapshot
// (snapshots disabled) the floor is the firmware's stand-in for them.
func (s *MemStore) compactTarget() raft.Index {
	floor := s.prog.Floor()
	if s.snap.meta.IsEmpty() {
		return floor
	}
	return min(floor, s.snap.meta.Index)
}

// validConf reports whether cs is the zero ConfState (no configuration)
// or a valid configuration: the ones storage/file can store.
func validConf(cs raft.ConfState) bool {
	if len(cs.Voters) == 0 && len(cs.VotersOutgoing) == 0 && len(cs.Learners) == 0 {
		return true
	}
	_, err := raft.DecodeConfState(raft.AppendConfState(nil, cs))
	return err == nil
}

// errIncomingConf: an incoming snapshot announces an invalid configuration.
type errIncomingConf struct{}

func (errIncomingConf) Error() string {
	return "mcu: incoming snapshot: " + raft.ErrInvalidConf.Error()
}

// Unwrap makes the error match raft.ErrInvalidConf and raft.ErrSnapshotMismatch.
func (errIncomingConf) Unwrap() []error {
	return []error{raft.ErrInvalidConf, raft.ErrSnapshotMismatch}
}

type snapshotTooLarge struct{ size uint64 }

func (e *snapshotTooLarge) Error() string {
	return ErrSnapshotTooLarge.Error() + ": " + strconv.FormatUint(e.size, 10) + " bytes announced, bound " +
		strconv.Itoa(MaxSnapshotBytes)
}

// Unwrap makes the error match ErrSnapshotTooLarge and raft.ErrSnapshotMismatch.
func (e *snapshotTooLarge) Unwrap() []error {
	return []error{ErrSnapshotTooLarge, raft.ErrSnapshotMismatch}
}

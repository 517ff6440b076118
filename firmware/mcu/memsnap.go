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
	meta raft.SnapshotMeta
	data []byte
	// inMeta (without CRC) and inData are the snapshot being received.
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

// CreateSnapshot implements storage.Storage: write fills a buffer sized
// after the previous snapshot (one allocation in the steady state, which
// matters on TinyGo's non-moving heap). Refused: index below the stored
// snapshot or the window (raft.ErrCompacted), beyond the log
// (raft.ErrUnavailable), or with another term (raft.ErrSnapshotMismatch).
func (s *MemStore) CreateSnapshot(index raft.Index, term raft.Term, write func(io.Writer) error) (raft.SnapshotMeta, error) {
	if s.closed {
		return raft.SnapshotMeta{}, storage.ErrClosed
	}
	switch t, err := s.w.term(index); {
	case index < s.snap.meta.Index || errors.Is(err, raft.ErrCompacted):
		return raft.SnapshotMeta{}, raft.ErrCompacted
	case err != nil:
		return raft.SnapshotMeta{}, err
	case index == 0 || t != term:
		return raft.SnapshotMeta{}, raft.ErrSnapshotMismatch
	}
	var buf bytes.Buffer
	buf.Grow(int(s.snap.meta.Size) + 512)
	if err := write(&buf); err != nil {
		return raft.SnapshotMeta{}, err
	}
	data := buf.Bytes()
	s.snap.meta = raft.SnapshotMeta{Index: index, Term: term, Size: uint64(len(data)), CRC: raft.SnapshotCRC(data)}
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

// WriteSnapshotChunk implements storage.Storage.
func (s *MemStore) WriteSnapshotChunk(c raft.SnapshotChunk) error {
	if s.closed {
		return storage.ErrClosed
	}
	meta := c.Meta
	meta.CRC = 0
	switch {
	case meta.Size > MaxSnapshotBytes:
		return &snapshotTooLarge{meta.Size}
	case c.Offset == 0:
		s.snap.inMeta, s.snap.inData = meta, make([]byte, 0, meta.Size)
	case meta != s.snap.inMeta || c.Offset != uint64(len(s.snap.inData)):
		return raft.ErrSnapshotMismatch
	}
	if uint64(len(s.snap.inData))+uint64(len(c.Data)) > meta.Size {
		return raft.ErrSnapshotMismatch
	}
	s.snap.inData = append(s.snap.inData, c.Data...)
	return nil
}

// InstallSnapshot implements storage.Storage: the window restarts after
// meta.Index and the commit index rises to it. The node restores its state
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
	if in != meta || meta.Index == 0 || uint64(len(s.snap.inData)) != meta.Size || raft.SnapshotCRC(s.snap.inData) != meta.CRC {
		return raft.ErrSnapshotMismatch
	}
	if meta.Index < s.snap.meta.Index || meta.Index < s.hs.Commit {
		return raft.ErrCompacted // committed entries would be lost
	}
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

type snapshotTooLarge struct{ size uint64 }

func (e *snapshotTooLarge) Error() string {
	return ErrSnapshotTooLarge.Error() + ": " + strconv.FormatUint(e.size, 10) + " bytes announced, bound " +
		strconv.Itoa(MaxSnapshotBytes)
}

// Unwrap makes the error match ErrSnapshotTooLarge and raft.ErrSnapshotMismatch.
func (e *snapshotTooLarge) Unwrap() []error {
	return []error{ErrSnapshotTooLarge, raft.ErrSnapshotMismatch}
}

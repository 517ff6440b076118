package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// Defaults for the snapshot settings of Config.
const (
	// DefaultSnapshotEntries is the seed's log capacity: a snapshot is
	// taken once this many entries were applied since the last one.
	DefaultSnapshotEntries = 256
	// DefaultSnapshotMargin entries are kept below a new snapshot, so a
	// follower slightly behind catches up by entries, not by a snapshot.
	DefaultSnapshotMargin = 64
)

// snapshotMagic starts the node's snapshot format: the magic, the applied
// sequence hash (8 bytes, little endian), then the state machine's data.
const snapshotMagic = "ENS1"

// ErrBadSnapshot: a snapshot's node header is missing or damaged.
var ErrBadSnapshot = errors.New("node: bad snapshot header")

// restoreStored restores the state machine from the stored snapshot, if
// there is one, and returns its metadata (empty if none).
func restoreStored(st storage.Storage, sm StateMachine) (raft.SnapshotMeta, uint64, error) {
	meta, rc, err := st.OpenSnapshot()
	if errors.Is(err, storage.ErrNoSnapshot) {
		return raft.SnapshotMeta{}, hashStart, nil
	}
	if err != nil {
		return raft.SnapshotMeta{}, 0, err
	}
	defer rc.Close()
	hash, err := restore(rc, sm)
	if err != nil {
		return raft.SnapshotMeta{}, 0, fmt.Errorf("node: restoring snapshot at index %d: %w", meta.Index, err)
	}
	return meta, hash, nil
}

// restore reads the node header and hands the rest to the state machine.
func restore(r io.Reader, sm StateMachine) (uint64, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	var hdr [len(snapshotMagic) + 8]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return 0, ErrBadSnapshot
	}
	if err := sm.Restore(br); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(hdr[len(snapshotMagic):]), nil
}

// maybeSnapshot takes a snapshot once SnapshotEntries entries were applied
// since the last one, then compacts the log below it, keeping
// SnapshotMargin entries. Taking it in the node goroutine, between two
// applies, makes it the exact state at n.applied.
func (n *Node) maybeSnapshot() error {
	every := n.cfg.SnapshotEntries
	if every < 0 || n.applied < n.snapIndex+raft.Index(every) {
		return nil
	}
	hash := n.appliedHash
	at := raft.SnapshotMeta{Index: n.applied, Term: n.appliedTerm, Conf: n.conf}
	meta, err := n.cfg.Storage.CreateSnapshot(at, func(w io.Writer) error {
		var hdr [len(snapshotMagic) + 8]byte
		copy(hdr[:], snapshotMagic)
		binary.LittleEndian.PutUint64(hdr[len(snapshotMagic):], hash)
		bw := bufio.NewWriterSize(w, 32<<10)
		if _, err := bw.Write(hdr[:]); err != nil {
			return err
		}
		if err := n.cfg.StateMachine.Snapshot(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("node: snapshot at index %d: %w", n.applied, err)
	}
	n.snapIndex, n.snapBytes = meta.Index, meta.Size
	n.snapshots++
	n.log.Debug("snapshot taken", "index", uint64(meta.Index), "bytes", meta.Size)
	if keep := raft.Index(n.cfg.SnapshotMargin); meta.Index > keep {
		return n.cfg.Storage.Compact(meta.Index - keep)
	}
	return nil
}

// installSnapshot handles a Ready's snapshot part: the chunks of a transfer
// go to storage, and a completed transfer is installed and restored.
func (n *Node) installSnapshot(rd raft.Ready) error {
	for _, c := range rd.SnapshotChunks {
		if err := n.cfg.Storage.WriteSnapshotChunk(c); err != nil {
			return fmt.Errorf("node: snapshot chunk at %d: %w", c.Offset, err)
		}
	}
	if rd.Snapshot.IsEmpty() {
		return nil
	}
	if err := n.cfg.Storage.InstallSnapshot(rd.Snapshot); err != nil {
		return fmt.Errorf("node: installing snapshot at index %d: %w", rd.Snapshot.Index, err)
	}
	meta, hash, err := restoreStored(n.cfg.Storage, n.cfg.StateMachine)
	if err != nil {
		return err
	}
	n.applied, n.appliedTerm, n.appliedHash = meta.Index, meta.Term, hash
	if !meta.Conf.IsEmpty() {
		n.conf = meta.Conf
	}
	n.snapIndex, n.snapBytes = meta.Index, meta.Size
	n.log.Info("snapshot installed", "index", uint64(meta.Index), "term", uint64(meta.Term), "bytes", meta.Size)
	return nil
}

package bench

import (
	"path/filepath"
	"strconv"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/storage/file"
)

// newEmbraftFileStorage opens embraft's durable storage for node id in its
// own directory under dir, with defaults except MaxEntries (lifted, as for
// memory storage, so that a run never fills the log).
func newEmbraftFileStorage(dir string, id raft.NodeID) (storage.Storage, error) {
	st, err := file.Open(filepath.Join(dir, "embraft-"+strconv.FormatUint(uint64(id), 10)),
		file.Options{NodeID: id, MaxEntries: memoryMaxEntries})
	if err != nil {
		return nil, err
	}
	return &fileFsyncs{Storage: st}, nil
}

// fileFsyncs reports file.Storage's own fsync counter (segment, directory
// and HARDSTATE fsyncs) after every Sync, from the node's goroutine, so
// that syncCounter can publish it without racing the storage.
type fileFsyncs struct{ *file.Storage }

func (f *fileFsyncs) fsyncs() uint64 { return f.Stats().Fsyncs }

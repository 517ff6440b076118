// Package hostcheck verifies, on the host, the directories the firmware
// wrote through semihosting: every node's directory must open with
// storage/file (the host's durable storage, docs/STORAGE.md), and the
// committed prefixes of all the logs must be identical. It is the proof
// that the firmware's files are in the host's formats, not look-alikes.
package hostcheck

import (
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
	"github.com/embraft/embraft/wire"
)

// Node is what one directory holds.
type Node struct {
	ID         raft.NodeID
	HardState  raft.HardState
	LastIndex  raft.Index
	LastTerm   raft.Term
	Recovery   file.Recovery
	prefixHash uint64 // entries 1..minCommit
}

// Check opens dataDir/node-1 ... node-n with storage/file.Open and
// compares their logs up to the smallest commit index.
func Check(dataDir string, n int, cluster wire.ClusterID) ([]Node, raft.Index, error) {
	var nodes []Node
	minCommit := raft.Index(0)
	for i := 1; i <= n; i++ {
		id := raft.NodeID(i)
		dir := filepath.Join(dataDir, "node-"+strconv.Itoa(i))
		st, err := file.Open(dir, file.Options{ClusterID: cluster, NodeID: id})
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", dir, err)
		}
		nd := Node{ID: id, Recovery: st.Recovery()}
		nd.HardState, err = st.InitialState()
		if err == nil {
			nd.LastIndex, err = st.LastIndex()
		}
		if err == nil {
			nd.LastTerm, err = st.Term(nd.LastIndex)
		}
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", dir, err)
		}
		if i == 1 || nd.HardState.Commit < minCommit {
			minCommit = nd.HardState.Commit
		}
		nodes = append(nodes, nd)
	}
	for i := range nodes {
		dir := filepath.Join(dataDir, "node-"+strconv.Itoa(i+1))
		st, err := file.Open(dir, file.Options{ClusterID: cluster, NodeID: nodes[i].ID})
		if err != nil {
			return nil, 0, err
		}
		h := fnv.New64a()
		var b []byte
		for lo := raft.Index(1); lo <= minCommit; {
			ents, err := st.Entries(lo, minCommit+1, 64<<10)
			if err != nil {
				_ = st.Close()
				return nil, 0, fmt.Errorf("%s: entries from %d: %w", dir, lo, err)
			}
			for k := range ents {
				b = wire.AppendEntry(b[:0], &ents[k])
				_, _ = h.Write(b)
			}
			lo += raft.Index(len(ents))
		}
		_ = st.Close()
		nodes[i].prefixHash = h.Sum64()
		if nodes[i].prefixHash != nodes[0].prefixHash {
			return nodes, minCommit, errors.New("node-" + strconv.Itoa(i+1) + ": committed entries 1.." +
				strconv.FormatUint(uint64(minCommit), 10) + " differ from node-1's")
		}
	}
	return nodes, minCommit, nil
}

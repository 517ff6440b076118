package node

import (
	"io"

	"github.com/embraft/embraft/raft"
)

// StateMachine is the application the log replicates. The node calls it
// from one goroutine only, in log order.
type StateMachine interface {
	// Apply applies one committed command and returns its result. It must
	// be deterministic: every replica applies the same commands in the same
	// order and must reach the same state and the same results.
	Apply(index raft.Index, cmd []byte) []byte
	// Snapshot writes the complete state to w.
	Snapshot(w io.Writer) error
	// Restore replaces the state with one written by Snapshot.
	Restore(r io.Reader) error
}

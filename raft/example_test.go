package raft_test

import (
	"fmt"

	"github.com/embraft/embraft/raft"
)

// Example runs a single-node cluster through the Ready contract: persist,
// send, apply, Advance.
func Example() {
	st := raft.NewMemoryStorage()
	node, err := raft.New(raft.Config{ID: 1, Peers: []raft.NodeID{1}, Storage: st, Seed: 1})
	if err != nil {
		panic(err)
	}
	handle := func() {
		for node.HasReady() {
			rd := node.Ready()
			if !rd.HardState.IsEmpty() {
				st.SetHardState(rd.HardState) // 1. persist (fsync if rd.MustSync)
			}
			_ = st.Append(rd.Entries)
			_ = rd.Messages                  // 2. send (none: a single node)
			for _, e := range rd.Committed { // 3. apply
				if e.Type == raft.EntryNormal {
					fmt.Printf("applied %q at index %d\n", e.Data, e.Index)
				}
			}
			node.Advance(rd) // 4. done
		}
	}
	for node.Status().Role != raft.RoleLeader {
		node.Tick()
		handle()
	}
	if _, err := node.Propose([]byte("hello")); err != nil {
		panic(err)
	}
	handle()
	fmt.Println(node.Status().Role, "term", node.Status().Term)
	// Output:
	// applied "hello" at index 2
	// leader term 1
}

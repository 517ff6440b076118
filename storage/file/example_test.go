package file_test

import (
	"fmt"
	"os"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
)

// Entries and the hard state written and synced survive a restart: the
// directory reopens with the same log, checked record by record.
func Example() {
	dir, err := os.MkdirTemp("", "embraft-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	opts := file.Options{ClusterID: 1, NodeID: 1}
	st, err := file.Open(dir, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = st.Append([]raft.Entry{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1, Data: []byte("b")}})
	if err == nil {
		err = st.SetHardState(raft.HardState{Term: 1, Vote: 1, Commit: 2})
	}
	if err == nil {
		err = st.Sync() // one fsync makes both durable
	}
	if err == nil {
		err = st.Close()
	}
	if err != nil {
		fmt.Println(err)
		return
	}

	st, err = file.Open(dir, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	hs, _ := st.InitialState()
	last, _ := st.LastIndex()
	ents, _ := st.Entries(1, last+1, 1<<20)
	fmt.Printf("term %d vote %d commit %d, %d entries: %s %s\n", hs.Term, hs.Vote, hs.Commit, len(ents), ents[0].Data, ents[1].Data)
	// Output: term 1 vote 1 commit 2, 2 entries: a b
}

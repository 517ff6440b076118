package wire_test

import (
	"errors"
	"fmt"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// A transport encodes each outgoing message into a reused buffer and
// decodes each incoming frame into a reused message.
func Example() {
	const cluster wire.ClusterID = 7
	out := &raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 5, Index: 42, LogTerm: 5, Commit: 42,
		Entries: []raft.Entry{{Term: 5, Index: 43, Data: []byte("x=1")}}}

	buf := make([]byte, 0, wire.DefaultMaxFrameBytes) // reused for every send
	frame, err := wire.AppendMessage(buf[:0], cluster, out)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes: %x\n", len(frame), frame)

	var in raft.Message // reused for every receive; in.Entries keeps its capacity
	if err := wire.DecodeMessage(frame, cluster, &in, wire.DefaultLimits); err != nil {
		panic(err)
	}
	// in.Entries[0].Data aliases frame: copy it before reusing the buffer.
	fmt.Printf("%v from %d term %d: entry %d %q\n", in.Type, in.From, in.Term, in.Entries[0].Index, in.Entries[0].Data)

	err = wire.DecodeMessage(frame, cluster+1, &in, wire.DefaultLimits)
	fmt.Println(errors.Is(err, wire.ErrCluster), err)
	// Output:
	// 20 bytes: 0107010102052a052a01000003783d31dd52c65e
	// MsgApp from 1 term 5: entry 43 "x=1"
	// true wire: wrong cluster (Cluster at byte 1)
}

// Records for storage: the storage layer adds its own length and CRC.
func ExampleAppendEntry() {
	e := raft.Entry{Term: 5, Index: 44, Type: raft.EntryNormal, Data: []byte("x=1")}
	rec := wire.AppendEntry(nil, &e)
	rec = wire.AppendHardState(rec, raft.HardState{Term: 5, Vote: 1, Commit: 44})
	fmt.Printf("%x\n", rec)

	var got raft.Entry
	n, _ := wire.DecodeEntry(rec, &got)
	var hs raft.HardState
	_ = wire.DecodeHardState(rec[n:], &hs)
	fmt.Printf("%d %d %q %+v\n", got.Index, got.Term, got.Data, hs)
	// Output:
	// 2c050003783d3105012c
	// 44 5 "x=1" {Term:5 Vote:1 Commit:44}
}

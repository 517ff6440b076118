package udp_test

import (
	"fmt"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp"
	"github.com/embraft/embraft/wire"
)

// Two endpoints on loopback sockets, authenticated by nothing but their
// configured addresses: a frame sent by node 1 arrives in node 2's inbox
// as one datagram, validated (cluster, checksum, sender, address) before
// it is queued.
func Example() {
	ids := []raft.NodeID{1, 2}
	conns, peers, err := udp.ListenLoopback(ids)
	if err != nil {
		fmt.Println(err)
		return
	}
	trs := map[raft.NodeID]*udp.Transport{}
	for _, id := range ids {
		tr, err := udp.New(udp.Options{ID: id, Conn: conns[id], Peers: peers, ClusterID: 5})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer tr.Close()
		trs[id] = tr
	}
	frame, _ := wire.AppendMessage(nil, 5, &raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 7})
	if err := trs[1].Send(2, frame); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case got := <-trs[2].Inbox():
		var m raft.Message
		if err := wire.DecodeMessage(got, 5, &m, wire.DefaultLimits); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("node 2 received %v from %d: term %d commit %d (%d-byte datagram)\n", m.Type, m.From, m.Term, m.Commit, len(got))
	case <-time.After(10 * time.Second):
		fmt.Println("nothing arrived")
	}
	// Output: node 2 received MsgHeartbeat from 1: term 3 commit 7 (12-byte datagram)
}

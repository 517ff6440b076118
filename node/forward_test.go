package node_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/memory"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/transport/channel"
	"github.com/embraft/embraft/wire"
)

// fullQueue injects a full send queue: once armed, it refuses forwarded
// proposals and reads with ErrQueueFull, as a real transport does when
// its bounded queue to the leader is full; everything else goes through.
type fullQueue struct {
	transport.Transport
	armed atomic.Bool
	msg   raft.Message
}

func (f *fullQueue) Send(to raft.NodeID, frame []byte) error {
	if f.armed.Load() && wire.DecodeMessage(frame, 9, &f.msg, wire.DefaultLimits) == nil &&
		(f.msg.Type == raft.MsgProp || f.msg.Type == raft.MsgReadIndex) {
		return transport.ErrQueueFull
	}
	return f.Transport.Send(to, frame)
}

// TestForwardDroppedFailsFast: a proposal or read a follower cannot hand
// to its transport fails at once with ErrForwardDropped (which is also
// ErrBusy), not after ForwardTimeout: nothing was proposed, and the
// caller can retry now.
func TestForwardDroppedFailsFast(t *testing.T) {
	net := channel.NewNetwork(channel.Options{})
	peers := []raft.NodeID{1, 2}
	var nodes [2]*node.Node
	var trs [2]*fullQueue
	for i, id := range peers {
		trs[i] = &fullQueue{Transport: net.Endpoint(id)}
		n, err := node.Start(context.Background(), node.Config{
			Raft: raft.Config{ID: id, Peers: peers, Seed: uint64(id)}, ClusterID: 9,
			Storage: memory.New(memory.Options{}), Transport: trs[i], StateMachine: &recorder{},
			TickInterval: 2 * time.Millisecond, ForwardTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Stop()
		nodes[i] = n
	}
	var f int
	waitFor(t, func() bool {
		for i, n := range nodes {
			if st := n.Status(); st.Role == raft.RoleFollower && st.Lead != raft.None {
				f = i
				return true
			}
		}
		return false
	})
	trs[f].armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := nodes[f].Propose(ctx, []byte("x")); !errors.Is(err, node.ErrForwardDropped) || !errors.Is(err, node.ErrBusy) {
		t.Fatalf("Propose through a full queue: %v, want ErrForwardDropped (and ErrBusy)", err)
	}
	if err := nodes[f].LinearizableRead(ctx); !errors.Is(err, node.ErrForwardDropped) {
		t.Fatalf("LinearizableRead through a full queue: %v, want ErrForwardDropped", err)
	}
	trs[f].armed.Store(false)
	if _, err := nodes[f].Propose(ctx, []byte("y")); err != nil {
		t.Fatalf("Propose once the queue drains: %v", err)
	}
}

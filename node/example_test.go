package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/memory"
	"github.com/embraft/embraft/transport/channel"
)

// upper is a tiny state machine: it remembers the last command and
// answers it in upper case.
type upper struct {
	mu   sync.Mutex
	last string
}

func (u *upper) Apply(_ raft.Index, cmd []byte) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.last = string(cmd)
	return []byte(strings.ToUpper(u.last))
}

func (u *upper) Snapshot(w io.Writer) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, err := io.WriteString(w, u.last)
	return err
}

func (u *upper) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	u.mu.Lock()
	u.last = string(b)
	u.mu.Unlock()
	return err
}

// Three nodes in one process on the channel transport: a command proposed
// on any node is forwarded to the leader and answered once applied; a
// linearizable read on any node sees it. Errors that say nothing was
// decided (no leader yet, a full queue) are retried.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net := channel.NewNetwork(channel.Options{})
	peers := []raft.NodeID{1, 2, 3}
	sms := map[raft.NodeID]*upper{}
	var nodes []*node.Node
	for _, id := range peers {
		sms[id] = &upper{}
		n, err := node.Start(ctx, node.Config{
			Raft: raft.Config{ID: id, Peers: peers, Seed: uint64(id)}, ClusterID: 7,
			Storage: memory.New(memory.Options{}), Transport: net.Endpoint(id),
			StateMachine: sms[id], TickInterval: 2 * time.Millisecond})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer n.Stop()
		nodes = append(nodes, n)
	}
	// Retry while no outcome is known: no leader yet, a full queue, or a
	// change of leader (this state machine may apply "hello" twice).
	retry := func(err error) bool {
		if errors.Is(err, node.ErrNoLeader) || errors.Is(err, node.ErrBusy) ||
			errors.Is(err, node.ErrLeaderChanged) || errors.Is(err, node.ErrForwardTimeout) {
			time.Sleep(10 * time.Millisecond)
			return true
		}
		return false
	}
	res, err := nodes[2].Propose(ctx, []byte("hello"))
	for retry(err) {
		res, err = nodes[2].Propose(ctx, []byte("hello"))
	}
	if err != nil {
		fmt.Println("propose:", err)
		return
	}
	fmt.Printf("applied: %s\n", res)
	err = nodes[0].LinearizableRead(ctx)
	for retry(err) {
		err = nodes[0].LinearizableRead(ctx)
	}
	if err != nil {
		fmt.Println("read:", err)
		return
	}
	sms[1].mu.Lock()
	fmt.Println("node 1 reads:", sms[1].last)
	sms[1].mu.Unlock()
	// Output:
	// applied: HELLO
	// node 1 reads: hello
}

package cluster_test

import (
	"context"
	"fmt"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
)

// A 3-node cluster in one process (memory storage, channel transport)
// serving a replicated key-value store through an exactly-once client
// session: the client submits through random nodes and retries until an
// outcome is known, without ever applying a command twice.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Config{
		Nodes: 3, Storage: cluster.StorageMemory, Transport: cluster.TransportChannel,
		ClusterID: 1, Seed: 1, TickInterval: 2 * time.Millisecond,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return kv.New(kv.Options{}) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Stop()
	var replicas []kv.Proposer
	for _, id := range c.IDs() {
		replicas = append(replicas, c.Node(id))
	}
	client, err := kv.NewClient(ctx, replicas, kv.ClientOptions{Seed: 1, MaxAttempts: 500})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := client.Do(ctx, kv.OpPut, []byte("greeting"), []byte("hello"), nil); err != nil {
		fmt.Println(err)
		return
	}
	res, err := client.Do(ctx, kv.OpGet, []byte("greeting"), nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%v %s\n", res.Status, res.Value)
	// Output: OK hello
}

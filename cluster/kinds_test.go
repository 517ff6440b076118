package cluster_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
)

func startKinds(t *testing.T, st cluster.StorageKind, tr cluster.TransportKind, dir string, nodes int) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Start(context.Background(), cluster.Config{
		Nodes: nodes, Storage: st, Transport: tr, DataDir: dir, ClusterID: 77, Seed: 9,
		TickInterval:    2 * time.Millisecond,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return kv.New(kv.Options{}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func putN(t *testing.T, c *cluster.Cluster, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ps []kv.Proposer
	for _, id := range c.IDs() {
		ps = append(ps, c.Node(id))
	}
	cl, err := kv.NewClient(ctx, ps, kv.ClientOptions{Seed: 1, AttemptTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		res, err := cl.Do(ctx, kv.OpPut, []byte(prefix+strconv.Itoa(i)), []byte("v"), nil)
		if err != nil || res.Status != kv.StatusOK {
			t.Fatalf("put %d: %+v %v", i, res, err)
		}
	}
}

// waitSame waits until every node applied the same sequence.
func waitSame(t *testing.T, c *cluster.Cluster) node.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		first := c.Node(c.IDs()[0]).Status()
		same := true
		for _, id := range c.IDs()[1:] {
			st := c.Node(id).Status()
			same = same && st.Applied == first.Applied && st.AppliedHash == first.AppliedHash
		}
		if same {
			return first
		}
		if time.Now().After(deadline) {
			t.Fatal("nodes did not converge")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEveryConfiguration: each of the seed's four configurations
// ({memory, file} x {channel, netstack}) and UDP over OS sockets elects,
// commits and converges.
func TestEveryConfiguration(t *testing.T) {
	for _, st := range cluster.StorageKinds {
		for _, tr := range cluster.TransportKinds {
			t.Run(string(st)+"+"+string(tr), func(t *testing.T) {
				c := startKinds(t, st, tr, t.TempDir(), 3)
				defer c.Stop()
				putN(t, c, "k", 10)
				waitSame(t, c)
				if n := c.StateMachine(1).(*kv.Store).Len(); n != 10 {
					t.Fatalf("store holds %d keys, want 10", n)
				}
			})
		}
	}
}

// TestFileClusterRestart: a 5-node cluster on file storage is stopped as a
// whole and started again on the same directories; it resumes with its
// term, log and key-value state, and keeps committing.
func TestFileClusterRestart(t *testing.T) {
	dir := t.TempDir()
	c := startKinds(t, cluster.StorageFile, cluster.TransportChannel, dir, 5)
	putN(t, c, "before", 20)
	before := waitSame(t, c)
	c.Stop()

	c = startKinds(t, cluster.StorageFile, cluster.TransportChannel, dir, 5)
	defer c.Stop()
	for _, id := range c.IDs() {
		st := c.Node(id).Status()
		if st.Term < before.Term || st.LastIndex < before.Applied {
			t.Fatalf("node %d restarted at term %d last %d, before term %d applied %d",
				id, st.Term, st.LastIndex, before.Term, before.Applied)
		}
	}
	putN(t, c, "after", 5)
	waitSame(t, c)
	for _, id := range c.IDs() {
		if n := c.StateMachine(id).(*kv.Store).Len(); n != 25 {
			t.Fatalf("node %d holds %d keys after restart, want 25", id, n)
		}
	}
}

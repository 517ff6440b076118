package cluster_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startKV(t *testing.T, n int, drop float64) (*cluster.Cluster, map[raft.NodeID]*kv.Store, []kv.Proposer) {
	t.Helper()
	stores := map[raft.NodeID]*kv.Store{}
	c, err := cluster.Start(context.Background(), cluster.Config{
		Nodes: n, Storage: cluster.StorageMemory, Transport: cluster.TransportChannel,
		ClusterID: 1, Seed: 5, TickInterval: 2 * time.Millisecond, DropRate: drop,
		NewStateMachine: func(id raft.NodeID) node.StateMachine {
			s := kv.New(kv.Options{})
			stores[id] = s
			return s
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	var ps []kv.Proposer
	for _, id := range c.IDs() {
		ps = append(ps, c.Node(id))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return c, stores, ps
}

// TestRetriedCommandAppliedOnce submits the same encoded compare-and-swap
// twice, through two different nodes: the second copy must be answered from
// the session cache (a second application would report a mismatch).
func TestRetriedCommandAppliedOnce(t *testing.T) {
	c, stores, ps := startKV(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kv.NewClient(ctx, ps, kv.ClientOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cl.Do(ctx, kv.OpPut, []byte("k"), []byte("v1"), nil); err != nil || res.Status != kv.StatusOK {
		t.Fatalf("put: %+v %v", res, err)
	}
	s := kv.Session{ClientID: cl.ClientID(), Seq: 1}
	cas := s.CAS([]byte("k"), []byte("v1"), []byte("v2"))
	raw := cas.AppendBinary(nil)
	var results [2]kv.Result
	for i, id := range []raft.NodeID{1, 2} {
		out, err := c.Node(id).Propose(ctx, raw)
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if err := kv.DecodeResult(out, &results[i]); err != nil {
			t.Fatal(err)
		}
	}
	if results[0].Status != kv.StatusOK || results[1].Status != kv.StatusOK || results[0].Index != results[1].Index {
		t.Fatalf("copies answered %+v and %+v: want the same OK result", results[0], results[1])
	}
	// Control: the same CAS as a NEW command (next Seq) is applied and
	// mismatches, so the cached answer above really was a deduplication.
	again := s.CAS([]byte("k"), []byte("v1"), []byte("v2"))
	out, err := c.Node(3).Propose(ctx, again.AppendBinary(nil))
	var res kv.Result
	if err != nil || kv.DecodeResult(out, &res) != nil || res.Status != kv.StatusCASMismatch {
		t.Fatalf("fresh CAS: %+v %v, want CASMismatch", res, err)
	}
	waitStoresEqual(t, c, stores)
	if v, ok := stores[1].Get([]byte("k")); !ok || string(v) != "v2" {
		t.Fatalf("k = %q, want v2", v)
	}
}

// TestClientsSurviveFailoverAndDrops runs session clients through a leader
// crash with 20% of frames dropped; every store ends identical.
func TestClientsSurviveFailoverAndDrops(t *testing.T) {
	c, stores, ps := startKV(t, 5, 0.2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kv.NewClient(ctx, ps, kv.ClientOptions{Seed: 2, AttemptTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lead := c.Leader()
	for i := 0; i < 30; i++ {
		if i == 10 {
			_ = c.StopNode(lead)
		}
		if i == 20 {
			if err := c.RestartNode(lead); err != nil {
				t.Fatal(err)
			}
		}
		key := []byte{'k', byte(i)}
		if res, err := cl.Do(ctx, kv.OpPut, key, []byte("v"), nil); err != nil || res.Status != kv.StatusOK {
			t.Fatalf("put %d: %+v %v", i, res, err)
		}
	}
	waitStoresEqual(t, c, stores)
	if n := stores[c.IDs()[0]].Len(); n != 30 {
		t.Fatalf("store holds %d keys, want 30", n)
	}
}

func waitStoresEqual(t *testing.T, c *cluster.Cluster, stores map[raft.NodeID]*kv.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		d0 := c.StateMachine(1).(*kv.Store).Digest()
		same := true
		for _, id := range c.IDs() {
			if c.StateMachine(id).(*kv.Store).Digest() != d0 {
				same = false
			}
		}
		if same {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("stores did not converge")
}

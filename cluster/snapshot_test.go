package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/netstack"
)

// snapshotCatchUpEntries is the number of commands committed while the
// follower is cut off (fewer under the race detector, which is ~10x slower).
var snapshotCatchUpEntries = 10000

// TestSnapshotCatchUpNetstack is the snapshot issue's acceptance run: a
// follower partitioned away while 10,000 commands commit catches up by
// snapshot over netstack UDP with 10% loss on every link, and every node
// ends with the same key-value state. It reports the most log entries any
// node held in memory (memory storage) during the run.
func TestSnapshotCatchUpNetstack(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the acceptance run takes a few seconds")
	}
	const snapEntries, margin = 256, 64
	c, err := cluster.Start(context.Background(), cluster.Config{
		Nodes: 5, Storage: cluster.StorageMemory, Transport: cluster.TransportNetstack,
		ClusterID: 8, Seed: 8, TickInterval: 5 * time.Millisecond,
		Faults:          netstack.Faults{Loss: 0.10},
		SnapshotEntries: snapEntries, SnapshotMargin: margin,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return kv.New(kv.Options{}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	lead, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := raft.NodeID(5)
	if lead == victim {
		victim = 4
	}
	var rest []raft.NodeID
	var ps []kv.Proposer
	for _, id := range c.IDs() {
		if id != victim {
			rest = append(rest, id)
			ps = append(ps, c.Node(id))
		}
	}
	c.Switch().Partition(rest, []raft.NodeID{victim})
	peak := sampleStoredEntries(c)
	commitMany(ctx, t, ps, snapshotCatchUpEntries)
	before := c.Node(victim).Status()
	c.Switch().Heal()
	waitConverged(ctx, t, c)
	after := c.Node(victim).Status()
	maxHeld := peak.stop()
	t.Logf("%d commands committed while node %d was cut off (its applied index %d); after healing it installed %d snapshot(s) (last: %d bytes at index %d) and applied %d; most log entries held in memory by any node: %d",
		snapshotCatchUpEntries, victim, before.Applied, after.Stats.SnapshotsInstalled, after.SnapshotBytes, after.SnapshotIndex, after.Applied, maxHeld)
	if after.Stats.SnapshotsInstalled == 0 {
		t.Fatalf("node %d caught up without a snapshot: %+v", victim, after.Stats)
	}
	// The log stays bounded: a snapshot every snapEntries applied entries,
	// margin entries kept below it, plus what is in flight (the core's
	// MaxEntriesInMemory bounds unpersisted entries).
	if bound := snapEntries + margin + raft.DefaultMaxEntriesInMemory; maxHeld > bound {
		t.Fatalf("a node held %d log entries, over the bound %d", maxHeld, bound)
	}
}

// commitMany commits n puts through kv clients, 32 at a time.
func commitMany(ctx context.Context, t *testing.T, ps []kv.Proposer, n int) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kv.NewClient(ctx, ps, kv.ClientOptions{Seed: uint64(w + 1), AttemptTimeout: 300 * time.Millisecond})
			if err != nil {
				errs <- err
				return
			}
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				key := fmt.Appendf(nil, "key-%04d", i%2000)
				val := fmt.Appendf(nil, "value-%06d-padding-padding", i)
				if res, err := cl.Do(ctx, kv.OpPut, key, val, nil); err != nil || res.Status != kv.StatusOK {
					errs <- fmt.Errorf("put %d: %+v %v", i, res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitConverged waits until every node applied the same index with the same
// key-value state.
func waitConverged(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	t.Helper()
	for ctx.Err() == nil {
		sts := make([]node.Status, 0, len(c.IDs()))
		for _, id := range c.IDs() {
			sts = append(sts, c.Node(id).Status())
		}
		same := true
		for _, st := range sts[1:] {
			same = same && st.Applied == sts[0].Applied && st.Applied == st.Commit
		}
		if same {
			d0 := c.StateMachine(c.IDs()[0]).(*kv.Store).Digest()
			for _, id := range c.IDs() {
				same = same && c.StateMachine(id).(*kv.Store).Digest() == d0
			}
			if same {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range c.IDs() {
		st := c.Node(id).Status()
		t.Logf("node %d: %v applied %d commit %d first %d last %d stats %+v", id, st.Role, st.Applied, st.Commit, st.FirstIndex, st.LastIndex, st.Stats)
	}
	t.Fatal("the cluster did not converge")
}

// entrySampler polls every node's log length (entries from FirstIndex to
// LastIndex: those held in memory with memory storage) and keeps the peak.
type entrySampler struct {
	peak atomic.Int64
	done chan struct{}
	wg   sync.WaitGroup
}

func sampleStoredEntries(c *cluster.Cluster) *entrySampler {
	s := &entrySampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			for _, id := range c.IDs() {
				st := c.Node(id).Status()
				if held := int64(st.LastIndex) - int64(st.FirstIndex) + 1; held > s.peak.Load() {
					s.peak.Store(held)
				}
			}
		}
	}()
	return s
}

func (s *entrySampler) stop() int {
	close(s.done)
	s.wg.Wait()
	return int(s.peak.Load())
}

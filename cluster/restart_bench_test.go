package cluster_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
)

// BenchmarkRestartWithSnapshot measures the recovery of a node with file
// storage holding a snapshot of about 1 MB (10,000 keys of ~100-byte
// values) and a 256-entry log tail: one op is node.Start until the state
// machine has applied everything it had applied before the stop.
func BenchmarkRestartWithSnapshot(b *testing.B) {
	const keys, tail = 10000, 256
	c, err := cluster.Start(context.Background(), cluster.Config{
		Nodes: 1, Storage: cluster.StorageFile, Transport: cluster.TransportChannel,
		ClusterID: 3, Seed: 3, DataDir: b.TempDir(), SnapshotEntries: keys,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return kv.New(kv.Options{}) },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	ps := []kv.Proposer{c.Node(1)}
	loadKeys(ctx, b, ps, 0, keys, 64) // a snapshot is taken at 10,000 entries
	st := c.Node(1).Status()
	if st.SnapshotIndex == 0 || st.LastIndex-st.SnapshotIndex >= tail {
		b.Fatalf("after loading: snapshot at %d, last index %d", st.SnapshotIndex, st.LastIndex)
	}
	// Top the tail up to 256 entries: one client (one registration entry)
	// and the puts.
	more := tail - int(st.LastIndex-st.SnapshotIndex) - 1
	loadKeys(ctx, b, ps, keys, more, 1)
	before := c.Node(1).Status()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := c.StopNode(1); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := c.RestartNode(1); err != nil {
			b.Fatal(err)
		}
		for c.Node(1).Status().Applied < before.Applied {
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(before.SnapshotBytes), "snapshot-bytes")
	b.ReportMetric(float64(before.LastIndex-before.SnapshotIndex), "tail-entries")
	if got, want := c.StateMachine(1).(*kv.Store).Len(), keys+more; got != want {
		b.Fatalf("restored store holds %d keys, want %d", got, want)
	}
}

// loadKeys puts keys from..from+n-1 (values of 100 bytes) with up to
// clients concurrent clients, each registering a session first.
func loadKeys(ctx context.Context, b *testing.B, ps []kv.Proposer, from, n, clients int) {
	b.Helper()
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range min(clients, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kv.NewClient(ctx, ps, kv.ClientOptions{Seed: uint64(w + 1)})
			if err != nil {
				errs <- err
				return
			}
			val := make([]byte, 100)
			for i := next.Add(1) - 1; i < int64(from+n); i = next.Add(1) - 1 {
				key := strconv.AppendInt([]byte("key-"), i, 10)
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
		b.Fatal(err)
	}
}

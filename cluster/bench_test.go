package cluster_test

import (
	"context"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
)

// countSM applies nothing but a count: the benchmark measures replication.
type countSM struct{ n atomic.Uint64 }

func (c *countSM) Apply(raft.Index, []byte) []byte { c.n.Add(1); return nil }
func (c *countSM) Snapshot(io.Writer) error        { return nil }
func (c *countSM) Restore(io.Reader) error         { return nil }

// BenchmarkClusterPropose: 3 nodes in one process, memory storage, channel
// transport, 64 concurrent proposers at the leader, 128-byte commands. One
// op is one command committed and applied on the leader.
func BenchmarkClusterPropose(b *testing.B) {
	const proposers = 64
	c, err := cluster.Start(context.Background(), cluster.Config{
		Nodes: 3, Storage: cluster.StorageMemory, Transport: cluster.TransportChannel, Seed: 1,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return &countSM{} },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	lead, err := c.WaitLeader(ctx)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	n := c.Node(lead)
	cmd := make([]byte, 128)
	var next atomic.Int64
	lats := make([][]time.Duration, proposers)
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range proposers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := n.Propose(context.Background(), cmd); err != nil {
					failed.Add(1)
					continue
				}
				lats[p] = append(lats[p], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lats...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-us")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-us")
	}
	b.ReportMetric(float64(failed.Load()), "failed")
}

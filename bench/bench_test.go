package bench

import (
	"context"
	"testing"
	"time"
)

// TestSmoke runs every library briefly in memory and durably, so that the
// comparison keeps building and producing numbers as the libraries change.
// `cd bench && go test ./...`
func TestSmoke(t *testing.T) {
	for _, durable := range []bool{false, true} {
		for _, lib := range Libraries {
			if durable && lib == Etcd {
				continue
			}
			r := Run(context.Background(), Workload{
				Library: lib, Nodes: 3, Proposers: 4, Durable: durable, TempDir: t.TempDir(),
				CmdBytes: 128, Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond,
				Tick: 10 * time.Millisecond,
			})
			if r.Err != nil {
				t.Fatalf("%s durable=%v: %v", lib, durable, r.Err)
			}
			if r.Ops == 0 || r.P50 <= 0 || r.P99 < r.P50 {
				t.Fatalf("%s durable=%v: implausible result %+v", lib, durable, r)
			}
			if durable && r.SyncsPerNode <= 0 {
				t.Fatalf("%s durable: no fsyncs counted", lib)
			}
			t.Logf("%-9s durable=%-5v %8.0f ops/s p50 %v p99 %v %.1f allocs/op fsync/entry/node %.3f failed %d",
				lib, durable, r.OpsPerSec, r.P50, r.P99, r.AllocsPerOp, r.SyncsPerNode, r.Failed)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}} {
		got := quantile(&h, 1000, c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.035 || d > 0.035 {
			t.Errorf("q%.2f = %v, want %v ±3.5%%", c.q, got, c.want)
		}
	}
	for _, v := range []time.Duration{0, 1, 31, 32, 33, 1 << 40, 1<<62 + 12345} {
		var h hist
		h.record(v)
		if got := quantile(&h, 1, 0.5); v > 32 && (got < v-v/30 || got > v+v/30) || v <= 32 && got != v {
			t.Errorf("record(%d) reads back %d", v, got)
		}
	}
}

package bench

import (
	"context"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Workload is one cell of the comparison.
type Workload struct {
	Library   Library
	Nodes     int
	Proposers int
	// Durable selects durable storage in a fresh temporary directory
	// under TempDir.
	Durable bool
	TempDir string
	// CmdBytes is the command size (128 in the comparison).
	CmdBytes int
	Warmup   time.Duration
	Duration time.Duration
	Tick     time.Duration
	// Progress, if set, is called about every 100 ms with ops done so far.
	Progress func(phase string, ops int64)
}

// Result is what one cell measured. Ops, failures and latencies count the
// commands that completed inside the measured window.
type Result struct {
	Workload
	Ops          int64
	Failed       int64
	Elapsed      time.Duration
	OpsPerSec    float64
	P50, P99     time.Duration
	AllocsPerOp  float64
	HeapPerNode  int64 // live heap after GC, cluster running, minus the pre-start baseline, / nodes
	SyncsPerNode float64
	TermChanges  uint64
	// Dropped counts messages lost to full receive queues during the
	// window (embraft's channel transport, the etcd driver's inboxes;
	// hashicorp's InmemTransport blocks instead of dropping).
	Dropped uint64
	Err     error
}

// hist is a log-linear latency histogram: 32 sub-buckets per power of two
// (error < 3.2%), fixed size so recording allocates nothing.
type hist [histBuckets]uint64

const (
	histSub     = 5
	histBuckets = (64 - histSub) << histSub
)

func (h *hist) record(d time.Duration) {
	v := uint64(max(d, 0))
	if v < 1<<histSub {
		h[v]++
		return
	}
	e := bits.Len64(v) - histSub - 1
	h[(e+1)<<histSub+int(v>>e-1<<histSub)]++
}

// value returns the midpoint of bucket i.
func histValue(i int) time.Duration {
	if i < 1<<histSub {
		return time.Duration(i)
	}
	e := i>>histSub - 1
	m := uint64(i&(1<<histSub-1)) + 1<<histSub
	return time.Duration(m<<e + (1<<e)/2)
}

func quantile(h *hist, total uint64, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	var seen uint64
	for i, c := range h {
		seen += c
		if seen > rank {
			return histValue(i)
		}
	}
	return histValue(len(h) - 1)
}

const (
	phaseWarmup = iota
	phaseMeasure
	phaseDone
)

// Run starts the cell's cluster, runs its proposers through the warm-up
// and the measured window, measures, and stops the cluster.
func Run(ctx context.Context, w Workload) (res Result) {
	res.Workload = w
	type proposer struct {
		h      hist
		ops    int64
		failed int64
		_      [64]byte
	}
	ps := make([]proposer, w.Proposers)
	cmd := make([]byte, w.CmdBytes)
	for i := range cmd {
		cmd[i] = byte('a' + i%26)
	}
	o := Options{Nodes: w.Nodes, Tick: w.Tick}
	if w.Durable {
		dir, err := mkTemp(w.TempDir, string(w.Library))
		if err != nil {
			res.Err = err
			return res
		}
		defer removeAll(dir)
		o.Dir = dir
	}

	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBase := ms.HeapAlloc

	c, err := Start(ctx, w.Library, o)
	if err != nil {
		res.Err = err
		return res
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = c.Stop()
		}
	}()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var phase atomic.Int32
	var done atomic.Int64 // ops completed in any phase, for progress
	var wg sync.WaitGroup
	for i := range ps {
		p := &ps[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if phase.Load() == phaseDone {
					return
				}
				t0 := time.Now()
				err := c.Propose(runCtx, cmd)
				d := time.Since(t0)
				done.Add(1)
				if phase.Load() != phaseMeasure {
					if err != nil && runCtx.Err() == nil {
						runtime.Gosched()
					}
					continue // completed outside the window
				}
				if err != nil {
					p.failed++
					if runCtx.Err() == nil {
						runtime.Gosched() // e.g. ErrBusy: yield, then retry
					}
					continue
				}
				p.ops++
				p.h.record(d)
			}
		}()
	}

	sleep := func(name string, d time.Duration) {
		end := time.Now().Add(d)
		for {
			left := time.Until(end)
			if left <= 0 || ctx.Err() != nil {
				return
			}
			if w.Progress != nil {
				w.Progress(name, done.Load())
			}
			time.Sleep(min(left, 100*time.Millisecond))
		}
	}
	sleep("warm-up", w.Warmup)

	term0, drop0 := c.Term(), dropped(c)
	sync0 := c.Syncs()
	runtime.ReadMemStats(&ms)
	mallocs0 := ms.Mallocs
	t0 := time.Now()
	phase.Store(phaseMeasure)
	sleep("measure", w.Duration)
	phase.Store(phaseDone)
	res.Elapsed = time.Since(t0)
	runtime.ReadMemStats(&ms)
	mallocs1 := ms.Mallocs
	sync1 := c.Syncs()
	res.Dropped = dropped(c) - drop0

	// Let the proposers finish their last command; cut stragglers off.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		cancel()
		<-waited
	}
	res.TermChanges = c.Term() - term0

	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapPerNode = (int64(ms.HeapAlloc) - int64(heapBase)) / int64(w.Nodes)

	// BENCH_DEBUG=1 prints the fsyncs counted since the cluster started, to
	// check the counters against strace -f -c -e trace=fsync,fdatasync.
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "\nbench: %s: counted fsyncs since start %d (before Stop)\n", w.Library, c.Syncs())
	}
	stopped = true
	if err := c.Stop(); err != nil && res.Err == nil {
		res.Err = err
	}

	var all hist
	for i := range ps {
		res.Ops += ps[i].ops
		res.Failed += ps[i].failed
		for j, n := range ps[i].h {
			all[j] += n
		}
	}
	if res.Ops > 0 {
		res.OpsPerSec = float64(res.Ops) / res.Elapsed.Seconds()
		res.P50 = quantile(&all, uint64(res.Ops), 0.50)
		res.P99 = quantile(&all, uint64(res.Ops), 0.99)
		res.AllocsPerOp = float64(mallocs1-mallocs0) / float64(res.Ops)
		res.SyncsPerNode = float64(sync1-sync0) / float64(w.Nodes) / float64(res.Ops)
	}
	return res
}

func dropped(c Cluster) uint64 {
	if d, ok := c.(interface{ Dropped() uint64 }); ok {
		return d.Dropped()
	}
	return 0
}

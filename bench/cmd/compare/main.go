// Command compare runs identical workloads on embraft, etcd-io/raft and
// hashicorp/raft in this process and prints one table: throughput of
// committed-and-applied commands, latency, allocations, heap, fsyncs.
//
//	cd bench && go run ./cmd/compare            # the full comparison (~2-3 min)
//	cd bench && go run ./cmd/compare -markdown  # the table as Markdown
//
// See docs/BENCHMARKS.md for what every column means and how each library
// is driven.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/embraft/embraft/bench"
)

func main() {
	var (
		nodesF     = flag.String("nodes", "3,5", "cluster sizes (in-memory rows)")
		propsF     = flag.String("proposers", "1,64,256", "concurrent proposers (in-memory rows)")
		libsF      = flag.String("libs", "embraft,etcd-raft,hashicorp", "libraries")
		durable    = flag.Bool("durable", true, "add the durable rows (embraft file storage vs hashicorp raft-boltdb)")
		dNodesF    = flag.String("durable-nodes", "3", "cluster sizes (durable rows)")
		dPropsF    = flag.String("durable-proposers", "1,64,256", "concurrent proposers (durable rows)")
		memory     = flag.Bool("memory", true, "run the in-memory rows")
		tmp        = flag.String("tmp", os.TempDir(), "parent directory for durable storage (use a real disk, not tmpfs)")
		cmdBytes   = flag.Int("cmd", 128, "command size in bytes")
		warmup     = flag.Duration("warmup", 500*time.Millisecond, "warm-up per cell")
		duration   = flag.Duration("duration", 2*time.Second, "measured window per cell")
		tick       = flag.Duration("tick", 10*time.Millisecond, "tick interval for embraft and etcd-raft")
		markdown   = flag.Bool("markdown", false, "print the table as Markdown")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		repeat     = flag.Int("repeat", 1, "run the whole sweep this many times (interleaved) and report each cell's median run by ops/s")
	)
	flag.BoolVar(&bench.EtcdMarshal, "etcd-marshal", false, "encode etcd-raft messages with protobuf in transit (as a network would)")
	flag.IntVar(&bench.EmbraftInbox, "embraft-inbox", 0, "experiment: embraft channel-transport inbox bound in frames (0: embraft's default, 32)")
	flag.Parse()

	nodes, err1 := ints(*nodesF)
	props, err2 := ints(*propsF)
	dNodes, err3 := ints(*dNodesF)
	dProps, err4 := ints(*dPropsF)
	libs, err5 := libraries(*libsF)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}

	var cells []bench.Workload
	base := bench.Workload{CmdBytes: *cmdBytes, Warmup: *warmup, Duration: *duration, Tick: *tick, TempDir: *tmp}
	if *memory {
		for _, n := range nodes {
			for _, p := range props {
				for _, l := range libs {
					w := base
					w.Library, w.Nodes, w.Proposers = l, n, p
					cells = append(cells, w)
				}
			}
		}
	}
	if *durable {
		for _, n := range dNodes {
			for _, p := range dProps {
				for _, l := range libs {
					if l == bench.Etcd {
						continue // etcd-io/raft ships no durable log store to compare with
					}
					w := base
					w.Library, w.Nodes, w.Proposers, w.Durable = l, n, p, true
					cells = append(cells, w)
				}
			}
		}
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	if *repeat < 1 {
		*repeat = 1
	}
	started := time.Now()
	runs := make([][]bench.Result, len(cells))
	total := len(cells) * *repeat
	for k := range total {
		i, w := k%len(cells), cells[k%len(cells)]
		label := fmt.Sprintf("[%2d/%d] %-9s %d nodes %3d proposers %-7s", k+1, total, w.Library, w.Nodes, w.Proposers, storageName(w))
		w.Progress = func(phase string, ops int64) {
			fmt.Fprintf(os.Stderr, "\r%s %-8s %10d ops  (%s elapsed)\x1b[K", label, phase, ops, time.Since(started).Round(time.Second))
		}
		fmt.Fprintf(os.Stderr, "\r%s starting\x1b[K", label)
		r := bench.Run(context.Background(), w)
		if r.Err != nil && !errors.Is(r.Err, bench.ErrUnsupported) {
			fmt.Fprintf(os.Stderr, "\r%s error: %v\x1b[K\n", label, r.Err)
		}
		runs[i] = append(runs[i], r)
	}
	fmt.Fprintf(os.Stderr, "\rdone: %d cells in %s\x1b[K\n", total, time.Since(started).Round(time.Second))
	results := make([]bench.Result, len(cells))
	spread = map[*bench.Result][2]float64{}
	for i, rs := range runs {
		slices.SortFunc(rs, func(a, b bench.Result) int { return cmp.Compare(a.OpsPerSec, b.OpsPerSec) })
		results[i] = rs[(len(rs)-1)/2]
		if len(rs) > 1 {
			spread[&results[i]] = [2]float64{rs[0].OpsPerSec, rs[len(rs)-1].OpsPerSec}
		}
	}

	med := ""
	if *repeat > 1 {
		med = fmt.Sprintf(", median of %d interleaved runs", *repeat)
	}
	fmt.Printf("%s %s/%s, %d CPUs (GOMAXPROCS %d), %d-byte commands, %s warm-up + %s per cell%s, tick %s%s%s\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		*cmdBytes, *warmup, *duration, med, *tick, map[bool]string{true: ", etcd messages protobuf-encoded"}[bench.EtcdMarshal],
		map[bool]string{true: fmt.Sprintf(", embraft inbox %d frames", bench.EmbraftInbox)}[bench.EmbraftInbox != 0])
	if *repeat > 1 {
		header = slices.Insert(header, 5, "ops/s range")
	}
	if *markdown {
		writeMarkdown(os.Stdout, results)
	} else {
		writeText(os.Stdout, results)
	}
}

// spread holds each median result's min and max ops/s over the repeats.
var spread map[*bench.Result][2]float64

func storageName(w bench.Workload) string {
	if w.Durable {
		return "durable"
	}
	return "memory"
}

// row formats one result's cells.
func row(r *bench.Result, all []bench.Result) []string {
	name := []string{string(r.Library), strconv.Itoa(r.Nodes), strconv.Itoa(r.Proposers), storageName(r.Workload)}
	if r.Err != nil {
		why := r.Err.Error()
		if errors.Is(r.Err, bench.ErrUnsupported) {
			why = "skipped: not available yet (TODO)"
		}
		out := append(name, why)
		for len(out) < len(header) {
			out = append(out, "")
		}
		return out
	}
	ops := []string{fmt.Sprintf("%.0f", r.OpsPerSec)}
	if sp, ok := spread[r]; ok {
		ops = append(ops, fmt.Sprintf("%.0f-%.0f", sp[0], sp[1]))
	}
	fsync := "-"
	if r.Durable {
		fsync = fmt.Sprintf("%.3f", r.SyncsPerNode)
	}
	ratio := "-"
	for _, e := range all {
		if e.Library == bench.Embraft && e.Nodes == r.Nodes && e.Proposers == r.Proposers &&
			e.Durable == r.Durable && e.Err == nil && e.OpsPerSec > 0 {
			ratio = fmt.Sprintf("%.2fx", r.OpsPerSec/e.OpsPerSec)
		}
	}
	name = append(name, ops...)
	return append(name, dur(r.P50), dur(r.P99),
		fmt.Sprintf("%.1f", r.AllocsPerOp), bytes(r.HeapPerNode), fsync, ratio,
		strconv.FormatInt(r.Failed, 10), strconv.FormatUint(r.Dropped, 10), strconv.FormatUint(r.TermChanges, 10))
}

var header = []string{"library", "nodes", "proposers", "storage", "ops/s", "p50", "p99",
	"allocs/op", "heap/node", "fsync/entry/node", "vs embraft", "failed", "dropped msgs", "new terms"}

func writeText(w io.Writer, rs []bench.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for i := range rs {
		fmt.Fprintln(tw, strings.Join(row(&rs[i], rs), "\t")+"\t")
	}
	_ = tw.Flush()
}

func writeMarkdown(w io.Writer, rs []bench.Result) {
	fmt.Fprintln(w, "| "+strings.Join(header, " | ")+" |")
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---:"
		if i == 0 || i == 3 {
			seps[i] = "---"
		}
	}
	fmt.Fprintln(w, "|"+strings.Join(seps, "|")+"|")
	for i := range rs {
		fmt.Fprintln(w, "| "+strings.Join(row(&rs[i], rs), " | ")+" |")
	}
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", d.Seconds()*1e3)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", d.Seconds()*1e3)
	default:
		return fmt.Sprintf("%.0f us", d.Seconds()*1e6)
	}
}

func bytes(n int64) string {
	switch {
	case n >= 10<<20 || n <= -10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<20 || n <= -1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func libraries(s string) ([]bench.Library, error) {
	var out []bench.Library
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch bench.Library(f) {
		case bench.Embraft, bench.Etcd, bench.Hashicorp:
			out = append(out, bench.Library(f))
		case "etcd":
			out = append(out, bench.Etcd)
		default:
			return nil, fmt.Errorf("unknown library %q (have: embraft, etcd-raft, hashicorp)", f)
		}
	}
	return out, nil
}

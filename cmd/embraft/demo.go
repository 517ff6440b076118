package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

type demoFlags struct {
	snapEvery  int
	membership bool
	nodes      int
	storage    string
	transport  string
	duration   time.Duration
	ops        int
	payload    int
	clients    int
	seed       uint64
	drop       float64
	logLevel   string
	tick       time.Duration
	noFailover bool
	dataDir    string
	loss, dup  float64
	delay      time.Duration
	jitter     time.Duration
	partition  string
	partAt     time.Duration
	healAt     time.Duration
}

func parseDemoFlags(args []string, out io.Writer) (demoFlags, error) {
	var f demoFlags
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.IntVar(&f.nodes, "nodes", 5, "cluster size (1-7)")
	fs.StringVar(&f.storage, "storage", "file", "storage kind: "+strings.Join(kindNames(cluster.StorageKinds), ", "))
	fs.StringVar(&f.transport, "transport", "netstack", "transport kind: "+strings.Join(kindNames(cluster.TransportKinds), ", "))
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "how long the client workload runs")
	fs.IntVar(&f.ops, "ops", 0, "stop after this many operations (0: run for -duration)")
	fs.IntVar(&f.payload, "payload", 128, "value size in bytes")
	fs.IntVar(&f.clients, "clients", 8, "concurrent client sessions")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for the cores, the fault injection and the workload")
	fs.Float64Var(&f.drop, "drop", 0, "fraction of frames the transport drops (0-0.9)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.tick, "tick", 10*time.Millisecond, "Raft tick (heartbeat 10 ticks, election 30-60 ticks)")
	fs.BoolVar(&f.noFailover, "no-failover", false, "do not stop the leader mid-run")
	fs.StringVar(&f.dataDir, "data-dir", "persistency", "directory for file storage (one subdirectory per node); a second run resumes from it")
	fs.Float64Var(&f.loss, "loss", 0, "netstack: probability that the switch drops a frame")
	fs.Float64Var(&f.dup, "dup", 0, "netstack: probability that the switch duplicates a frame")
	fs.DurationVar(&f.delay, "delay", 0, "netstack: delay added to every frame")
	fs.DurationVar(&f.jitter, "jitter", 0, "netstack: random extra delay, up to this much, per frame")
	fs.BoolVar(&f.membership, "membership", false, "membership scenario instead of the failover: node N+1 starts empty, is added as a learner, promoted; node 1 is removed; leadership moves to the new node")
	fs.IntVar(&f.snapEvery, "snapshot-entries", 256, "take a snapshot every this many applied entries and compact the log (-1: never)")
	fs.StringVar(&f.partition, "partition", "", "split the cluster, e.g. 1,2/3,4,5, or 'leader' to cut the leader off with a minority (channel or netstack transport)")
	fs.DurationVar(&f.partAt, "partition-at", 0, "when to apply -partition (default: 30% of -duration)")
	fs.DurationVar(&f.healAt, "heal-at", 0, "when to heal the partition (default: 70% of -duration)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case f.nodes < 1 || f.nodes > cluster.MaxNodes:
		return f, fmt.Errorf("-nodes must be 1..%d", cluster.MaxNodes)
	case f.duration <= 0 && f.ops <= 0:
		return f, errors.New("-duration or -ops must be positive")
	case f.payload < 0 || f.payload > 900:
		return f, errors.New("-payload must be 0..900 bytes (one datagram per entry)")
	case f.clients < 1 || f.clients > 1000:
		return f, errors.New("-clients must be 1..1000")
	case f.drop < 0 || f.drop > 0.9:
		return f, errors.New("-drop must be 0..0.9")
	case f.membership && (f.nodes < 2 || f.nodes >= cluster.MaxNodes || f.duration <= 0 || f.partition != ""):
		return f, fmt.Errorf("-membership needs -nodes 2..%d, a -duration and no -partition", cluster.MaxNodes-1)
	case f.snapEvery == 0 || f.snapEvery < -1:
		return f, errors.New("-snapshot-entries must be positive, or -1 for no snapshots")
	case f.tick <= 0:
		return f, errors.New("-tick must be positive")
	case !slices.Contains(cluster.StorageKinds, cluster.StorageKind(f.storage)):
		return f, fmt.Errorf("-storage %q: have %v", f.storage, kindNames(cluster.StorageKinds))
	case !slices.Contains(cluster.TransportKinds, cluster.TransportKind(f.transport)):
		return f, fmt.Errorf("-transport %q: have %v", f.transport, kindNames(cluster.TransportKinds))
	case f.loss < 0 || f.loss > 0.9 || f.dup < 0 || f.dup > 0.9 || f.delay < 0 || f.jitter < 0:
		return f, errors.New("-loss and -dup must be 0..0.9, -delay and -jitter non-negative")
	case (f.loss > 0 || f.dup > 0 || f.delay > 0 || f.jitter > 0) && f.transport != "netstack":
		return f, errors.New("-loss, -dup, -delay and -jitter need -transport netstack (use -drop otherwise)")
	}
	return f, f.checkPartition()
}

func kindNames[K ~string](ks []K) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// runDemo runs the demo and returns the process exit code.
func runDemo(args []string, out io.Writer) int {
	f, err := parseDemoFlags(args, out)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(out, "embraft demo:", err)
		return 2
	}
	level, err := parseLevel(f.logLevel)
	if err != nil {
		fmt.Fprintln(out, "embraft demo: -log-level:", err)
		return 2
	}
	// The nodes' goroutines log while the demo prints its tables: one lock
	// keeps each write whole, whatever out is.
	out = &lockedWriter{w: out}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	d := &demo{f: f, log: log, out: out, stores: map[raft.NodeID]*kv.Store{}}
	if err := d.run(); err != nil {
		log.Error("demo failed", "err", err)
		return 1
	}
	return 0
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

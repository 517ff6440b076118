package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/netstack"
)

type demo struct {
	f   demoFlags
	log *slog.Logger
	out io.Writer
	c   *cluster.Cluster

	mu        sync.Mutex
	stores    map[raft.NodeID]*kv.Store
	latencies []time.Duration
	ops       atomic.Int64
	failures  atomic.Int64
	retries   atomic.Uint64

	elections  int
	failover   time.Duration
	stoppedAt  time.Time
	lastLeader leaderTerm
	elapsed    time.Duration // how long the workload ran
	resumed    bool          // file storage held a previous run's state
}

type leaderTerm struct {
	id   raft.NodeID
	term raft.Term
}

func (d *demo) run() error {
	f := d.f
	d.log.Info("starting Raft cluster in one process", "nodes", f.nodes, "storage", f.storage,
		"transport", f.transport, "seed", f.seed, "drop", f.drop)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes, voters := f.nodes, 0
	if f.membership {
		nodes, voters = f.nodes+1, f.nodes // the newcomer starts empty
	}
	c, err := cluster.Start(ctx, cluster.Config{
		Nodes: nodes, Voters: voters, Storage: cluster.StorageKind(f.storage), Transport: cluster.TransportKind(f.transport),
		ClusterID: 0xEB, Seed: f.seed, TickInterval: f.tick, DropRate: f.drop, Logger: d.log,
		DataDir: f.dataDir, NewStateMachine: d.newStore, SnapshotEntries: f.snapEvery,
		Faults: netstack.Faults{Loss: f.loss, Duplicate: f.dup, Delay: f.delay, Jitter: f.jitter},
	})
	if err != nil {
		return err
	}
	d.c = c
	defer c.Stop() // graceful shutdown of every node, whatever happens
	d.describe()

	start := time.Now()
	lead, err := d.waitLeader(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	d.log.Info("leader elected", "leader", uint64(lead), "after", time.Since(start).Round(time.Millisecond))
	if err := d.workload(ctx); err != nil {
		return err
	}
	if err := d.converge(); err != nil {
		return err
	}
	d.summary()
	c.Stop()
	d.log.Info("cluster stopped cleanly")
	return nil
}

// describe prints each node's network configuration and, on file
// storage, what it resumed from.
func (d *demo) describe() {
	for _, id := range d.c.IDs() {
		switch d.f.transport {
		case "netstack":
			if nc, err := netstack.NetworkFor(id); err == nil {
				fmt.Fprintf(d.out, "Node %d network configured: %v\n", id, nc)
			}
		case "udp":
			fmt.Fprintf(d.out, "Node %d UDP socket: %s\n", id, d.c.Addrs()[id])
		}
	}
	if d.f.storage != "file" {
		return
	}
	for _, id := range d.c.IDs() {
		st := d.c.Node(id).Status()
		if st.LastIndex > 0 {
			d.resumed = true
			fmt.Fprintf(d.out, "Node %d resumed from %s: term %d, snapshot at %d, log %d..%d, commit %d (state restored from the snapshot, the rest replays from the log)\n",
				id, d.c.NodeDir(id), st.Term, st.SnapshotIndex, st.FirstIndex, st.LastIndex, st.Commit)
		} else {
			fmt.Fprintf(d.out, "Node %d starts fresh in %s\n", id, d.c.NodeDir(id))
		}
	}
}

func (d *demo) newStore(id raft.NodeID) node.StateMachine {
	s := kv.New(kv.Options{})
	d.mu.Lock()
	d.stores[id] = s
	d.mu.Unlock()
	return s
}

// waitLeader polls until a leader exists, counting each new (leader, term).
func (d *demo) waitLeader(ctx context.Context, limit time.Duration) (raft.NodeID, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if l := d.observeLeader(); l != raft.None {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return raft.None, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return raft.None, errors.New("no leader elected within " + limit.String())
}

func (d *demo) observeLeader() raft.NodeID {
	l := d.c.Leader()
	if l == raft.None {
		return l
	}
	lt := leaderTerm{l, d.c.Node(l).Status().Term}
	if lt != d.lastLeader && lt.term > d.lastLeader.term {
		d.elections++
		first := d.lastLeader.term == 0
		d.lastLeader = lt
		switch {
		case !d.stoppedAt.IsZero() && d.failover == 0:
			d.failover = time.Since(d.stoppedAt)
			d.log.Info("re-election complete", "new_leader", uint64(l), "term", uint64(lt.term),
				"failover", d.failover.Round(time.Millisecond))
		case !first:
			d.log.Info("new leader observed", "leader", uint64(l), "term", uint64(lt.term))
		}
	}
	return l
}

// workload runs the clients; mid-run it stops the leader, watches the
// re-election, and later restarts the stopped node.
func (d *demo) workload(ctx context.Context) error {
	var replicas []kv.Proposer
	for _, id := range d.c.IDs() {
		replicas = append(replicas, proposerOf{d.c, id})
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	if d.f.duration > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(wctx, d.f.duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	for i := 0; i < d.f.clients; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); d.client(wctx, stop, replicas, i) }()
	}
	d.log.Info("client workload started", "clients", d.f.clients, "payload_bytes", d.f.payload,
		"duration", d.f.duration, "ops", d.f.ops)
	t0 := time.Now()
	d.chaos(wctx)
	wg.Wait()
	d.elapsed = time.Since(t0)
	if d.ops.Load() == 0 {
		return errors.New("no operation committed")
	}
	return nil
}

// proposerOf always proposes to member id's current node, so clients keep
// working across a node's restart.
type proposerOf struct {
	c  *cluster.Cluster
	id raft.NodeID
}

func (p proposerOf) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	return p.c.Node(p.id).Propose(ctx, cmd)
}

func (d *demo) client(ctx context.Context, stop context.CancelFunc, replicas []kv.Proposer, n int) {
	cl, err := kv.NewClient(ctx, replicas, kv.ClientOptions{Seed: d.f.seed + uint64(n), AttemptTimeout: 300 * time.Millisecond})
	if err != nil {
		return // the workload ended before this client registered
	}
	rng := rand.New(rand.NewPCG(d.f.seed, uint64(n)))
	value := make([]byte, d.f.payload)
	var lat []time.Duration
	for ctx.Err() == nil {
		key := []byte("c" + strconv.Itoa(n) + "-k" + strconv.Itoa(rng.IntN(100)))
		for i := range value {
			value[i] = byte(rng.Uint32())
		}
		t0 := time.Now()
		res, err := cl.Do(ctx, kv.OpPut, key, value, nil)
		if err != nil {
			if ctx.Err() == nil {
				d.failures.Add(1)
			}
			continue
		}
		if res.Status != kv.StatusOK {
			d.failures.Add(1)
			continue
		}
		lat = append(lat, time.Since(t0))
		if total := d.ops.Add(1); d.f.ops > 0 && total >= int64(d.f.ops) {
			stop()
		}
	}
	d.retries.Add(cl.Retries)
	d.mu.Lock()
	d.latencies = append(d.latencies, lat...)
	d.mu.Unlock()
}

// chaos stops the leader at 40% of the run and restarts it at 70%, while
// polling for leader changes; without a duration it only polls.
func (d *demo) chaos(ctx context.Context) {
	start := time.Now()
	var stopped raft.NodeID
	restarted := false
	var part *partitionScenario
	if d.f.partition != "" {
		part = &partitionScenario{d: d}
	}
	var members *membershipScenario
	if d.f.membership {
		members = &membershipScenario{d: d}
	}
	for ctx.Err() == nil {
		elapsed := time.Since(start)
		if part != nil {
			part.step(ctx, elapsed)
		}
		if members != nil {
			members.step(ctx, elapsed)
		}
		failover := part == nil && members == nil && !d.f.noFailover && d.f.nodes >= 3 && d.f.duration > 0
		if failover && stopped == raft.None && elapsed >= d.f.duration*4/10 {
			if l := d.c.Leader(); l != raft.None {
				d.log.Info("stopping the leader to force a re-election", "leader", uint64(l),
					"term", uint64(d.c.Node(l).Status().Term))
				d.stoppedAt = time.Now()
				_ = d.c.StopNode(l)
				stopped = l
			}
		}
		if stopped != raft.None && !restarted && elapsed >= d.f.duration*7/10 {
			d.log.Info("restarting the stopped node on its stored state", "node", uint64(stopped))
			if err := d.c.RestartNode(stopped); err != nil {
				d.log.Error("restart failed", "err", err)
			}
			restarted = true
		}
		d.observeLeader()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// converge waits until every node applied the same sequence and holds the
// same key-value state.
func (d *demo) converge() error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		rows, same := d.nodeRows()
		if same {
			d.printNodes(rows)
			return nil
		}
		if time.Now().After(deadline) {
			d.printNodes(rows)
			return errors.New("nodes did not converge on one applied sequence")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type nodeRow struct {
	id     raft.NodeID
	st     node.Status
	digest uint64
	keys   int
}

func (d *demo) nodeRows() ([]nodeRow, bool) {
	var rows []nodeRow
	same := true
	for _, id := range d.members() {
		s := d.c.StateMachine(id).(*kv.Store)
		r := nodeRow{id: id, st: d.c.Node(id).Status(), digest: s.Digest(), keys: s.Len()}
		if len(rows) > 0 {
			p := rows[0]
			same = same && r.st.Applied == p.st.Applied && r.st.AppliedHash == p.st.AppliedHash && r.digest == p.digest
		}
		rows = append(rows, r)
	}
	return rows, same
}

func (d *demo) printNodes(rows []nodeRow) {
	fmt.Fprintf(d.out, "\n%-5s %-10s %-5s %-8s %-8s %-18s %-18s %-6s %-8s\n",
		"node", "role", "term", "commit", "applied", "applied-hash", "kv-digest", "keys", "drops")
	for _, r := range rows {
		tr := r.st.Transport
		fmt.Fprintf(d.out, "%-5d %-10s %-5d %-8d %-8d %016x   %016x   %-6d %-8d\n",
			r.id, r.st.Role, r.st.Term, r.st.Commit, r.st.Applied, r.st.AppliedHash, r.digest, r.keys,
			tr.DroppedFull+tr.DroppedFault+r.st.FramesBad)
	}
}

func (d *demo) summary() {
	lat := d.latencies
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	var drops, taken, installed uint64
	var term raft.Term
	var longest raft.Index
	for _, id := range d.c.IDs() {
		st := d.c.Node(id).Status()
		drops += st.Transport.DroppedFull + st.Transport.DroppedFault + st.FramesBad
		term = max(term, st.Term)
		taken, installed = taken+st.SnapshotsTaken, installed+st.Stats.SnapshotsInstalled
		longest = max(longest, st.LastIndex+1-st.FirstIndex)
	}
	ops := d.ops.Load()
	secs := max(d.elapsed.Seconds(), 1e-9)
	fmt.Fprintf(d.out, "\nsummary: all %d nodes applied the same sequence and hold the same state\n", d.f.nodes)
	if d.resumed {
		fmt.Fprintf(d.out, "  resumed         from the state persisted in %s by an earlier run\n", d.f.dataDir)
	}
	fmt.Fprintf(d.out, "  ops committed   %d (%.0f ops/s), failed attempts %d, client retries %d\n",
		ops, float64(ops)/secs, d.failures.Load(), d.retries.Load())
	fmt.Fprintf(d.out, "  latency         p50 %v  p99 %v  max %v\n", pct(0.50).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Fprintf(d.out, "  elections       %d leaders observed, final term %d", d.elections, term)
	if d.failover > 0 {
		fmt.Fprintf(d.out, ", failover in %v", d.failover.Round(time.Millisecond))
	}
	fmt.Fprintf(d.out, "\n  snapshots       %d taken, %d installed from a leader; longest log now %d entries\n", taken, installed, longest)
	fmt.Fprintf(d.out, "  frames dropped  %d\n\n", drops)
}

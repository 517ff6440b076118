package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/embraft/embraft/sim"
)

type simFlags struct {
	seed, startSeed uint64
	seeds           int
	nodes, steps    int
	clients, keys   int
	valueBytes      int
	workers         int
	noFaults        bool
	noPreVote       bool
	noReadIndex     bool
	readLease       bool
	noReadyBatching bool
	skewMax         int
	noCheckQuorum   bool
	spares          int
	churn           float64
	noChurn         bool
	script          string
	scriptEvery     int
	quiet           bool
}

func parseSimFlags(args []string, out io.Writer) (simFlags, sim.Config, error) {
	var f simFlags
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Uint64Var(&f.seed, "seed", 1, "seed of a single run")
	fs.IntVar(&f.seeds, "seeds", 0, "run a campaign of this many seeds (from --start-seed) instead of one run")
	fs.Uint64Var(&f.startSeed, "start-seed", 1, "first seed of a campaign")
	fs.IntVar(&f.nodes, "nodes", sim.DefaultNodes, fmt.Sprintf("cluster size (1-%d)", sim.MaxNodes))
	fs.IntVar(&f.steps, "steps", sim.DefaultSteps, "virtual time units of the faulty phase")
	fs.IntVar(&f.clients, "clients", sim.DefaultClients, "client sessions")
	fs.IntVar(&f.keys, "keys", sim.DefaultKeys, "distinct keys")
	fs.IntVar(&f.valueBytes, "value-bytes", 0, fmt.Sprintf("pad client values to this size (0: 0, 32, 100 or 250 by seed; -1: no padding; max %d)", sim.MaxValueBytes))
	fs.IntVar(&f.workers, "workers", runtime.NumCPU(), "seeds run in parallel in a campaign")
	fs.BoolVar(&f.noFaults, "no-faults", false, "inject no faults")
	fs.BoolVar(&f.noPreVote, "no-prevote", false, "run the cores without pre-vote")
	fs.BoolVar(&f.noReadIndex, "no-read-index", false, "send every get through the log (default: half use ReadIndex)")
	fs.BoolVar(&f.noReadyBatching, "no-ready-batching", false, "hand each delivered append's Ready to its follower at once (default: half wait for the end of the time unit, as group commit does)")
	fs.BoolVar(&f.readLease, "read-lease", false, "turn on the cores' read leases (equal clock rates unless --skew-max is set)")
	fs.IntVar(&f.skewMax, "skew-max", 0, "nodes tick every 1..N units (default 3; 1 with --read-lease)")
	fs.BoolVar(&f.noCheckQuorum, "no-check-quorum", false, "run the cores without check-quorum")
	fs.IntVar(&f.spares, "spares", sim.DefaultSpares, fmt.Sprintf("nodes that start empty and join when churn adds them (0-%d)", sim.MaxSpares))
	fs.Float64Var(&f.churn, "churn", 0, "per-step probability of a membership change or leadership transfer (0: the default, 0.006)")
	fs.BoolVar(&f.noChurn, "no-churn", false, "no membership changes or leadership transfers")
	fs.StringVar(&f.script, "script", "", "fault script (hex bytes, as FuzzCluster finds them) instead of random faults")
	fs.IntVar(&f.scriptEvery, "script-every", 0, "steps between script actions (default: spread over --steps)")
	fs.BoolVar(&f.quiet, "quiet", false, "campaign: no progress line")
	if err := fs.Parse(args); err != nil {
		return f, sim.Config{}, err
	}
	cfg := sim.Config{Seed: f.seed, Nodes: f.nodes, Steps: f.steps, Clients: f.clients, Keys: f.keys,
		ValueBytes: f.valueBytes, NoFaults: f.noFaults, ScriptEvery: f.scriptEvery,
		DisablePreVote: f.noPreVote, DisableCheckQuorum: f.noCheckQuorum, NoReadIndex: f.noReadIndex,
		ReadLease: f.readLease, NoReadyBatching: f.noReadyBatching, Faults: sim.Faults{SkewMax: f.skewMax, Churn: f.churn}, Spares: f.spares}
	if f.spares == 0 {
		cfg.Spares = -1 // sim.Config: 0 takes the default, negative means none
	}
	if f.noChurn {
		cfg.Faults.Churn = -1
	}
	switch {
	case fs.NArg() > 0:
		return f, cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case f.nodes < 1 || f.nodes > sim.MaxNodes:
		return f, cfg, fmt.Errorf("--nodes must be 1..%d", sim.MaxNodes)
	case f.steps < 1:
		return f, cfg, errors.New("--steps must be positive")
	case f.clients < 0 || f.keys < 1:
		return f, cfg, errors.New("--clients must be >= 0 and --keys >= 1")
	case f.valueBytes > sim.MaxValueBytes:
		return f, cfg, fmt.Errorf("--value-bytes must be <= %d", sim.MaxValueBytes)
	case f.seeds < 0 || f.workers < 1:
		return f, cfg, errors.New("--seeds must be >= 0 and --workers >= 1")
	case f.skewMax < 0:
		return f, cfg, errors.New("--skew-max must be >= 0")
	case f.spares < 0 || f.spares > sim.MaxSpares:
		return f, cfg, fmt.Errorf("--spares must be 0..%d", sim.MaxSpares)
	case f.churn < 0 || f.churn > 1:
		return f, cfg, errors.New("--churn must be a probability, 0..1")
	case f.scriptEvery < 0:
		return f, cfg, errors.New("--script-every must be >= 0")
	}
	if f.script != "" {
		s, err := hex.DecodeString(f.script)
		if err != nil {
			return f, cfg, fmt.Errorf("--script: %v", err)
		}
		cfg.Script = s
	}
	return f, cfg, nil
}

// runSim runs the simulator (one seed, or a campaign) and returns the exit
// code: 0 if every run passed, 1 on a violation, 2 on bad flags.
func runSim(args []string, out io.Writer) int {
	f, cfg, err := parseSimFlags(args, out)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(out, "embraft sim:", err)
		return 2
	}
	if f.seeds > 0 {
		return runCampaign(f, cfg, out)
	}
	start := time.Now()
	rep, err := sim.Run(cfg)
	var v *sim.Violation
	switch {
	case errors.As(err, &v):
		fmt.Fprintf(out, "VIOLATION: seed %d: %s\n%v\n", v.Seed, v.Property, v)
		return 1
	case err != nil:
		fmt.Fprintln(out, "embraft sim:", err)
		return 2
	}
	fmt.Fprintf(out, "%v\nok: no violation (%v)\n", rep, time.Since(start).Round(time.Millisecond))
	return 0
}

type seedResult struct {
	seed uint64
	rep  sim.Report
	err  error
}

// campaign accumulates the results of many seeds.
type campaign struct {
	f     simFlags
	cfg   sim.Config
	out   io.Writer
	start time.Time

	done, unknownLin    int
	steps, healed       int64
	maxLive             int
	faults              sim.FaultCounts
	ops, pending, retry int64
	readIndexReads      int64
	readiesBatched      int64
	acksMerged          uint64
	elections, restarts int64
	msgs, applied       uint64
	maxTerm, maxCommit  uint64
	snap                sim.SnapshotStats
	churn               sim.ChurnStats
	violations          []seedResult
	byProperty          map[string]int
	invalid             error
	lastDraw            time.Time
}

// runCampaign runs f.seeds seeds on a pool of f.workers goroutines (each
// run is single-goroutine and deterministic on its own), shows progress on
// one \r-updated line and ends with a table.
func runCampaign(f simFlags, cfg sim.Config, out io.Writer) int {
	c := &campaign{f: f, cfg: cfg, out: out, start: time.Now(), byProperty: map[string]int{}}
	seeds := make(chan uint64)
	results := make(chan seedResult, f.workers)
	var wg sync.WaitGroup
	for range f.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range seeds {
				cf := cfg
				cf.Seed = s
				rep, err := sim.Run(cf)
				results <- seedResult{s, rep, err}
			}
		}()
	}
	go func() {
		for i := range f.seeds {
			seeds <- f.startSeed + uint64(i)
		}
		close(seeds)
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	for r := range results {
		c.add(r)
		c.draw(false)
	}
	c.draw(true)
	if c.invalid != nil {
		fmt.Fprintln(out, "embraft sim:", c.invalid)
		return 2
	}
	return c.table()
}

func (c *campaign) add(r seedResult) {
	c.done++
	var v *sim.Violation
	switch {
	case errors.As(r.err, &v):
		c.violations = append(c.violations, r)
		c.byProperty[v.Property]++
	case r.err != nil:
		c.invalid = r.err
	}
	rep := r.rep
	c.steps += int64(rep.Steps)
	c.healed += int64(rep.LivenessSteps)
	c.maxLive = max(c.maxLive, rep.LivenessSteps)
	c.faults.Add(rep.Faults)
	c.ops += int64(rep.ClientOps)
	c.pending += int64(rep.Pending)
	c.retry += int64(rep.Retries)
	c.readIndexReads += int64(rep.ReadIndexReads)
	c.readiesBatched += int64(rep.ReadiesBatched)
	c.acksMerged += rep.AcksMerged
	c.elections += int64(rep.Elections)
	c.restarts += int64(rep.Restarts)
	c.msgs += rep.Messages
	c.applied += rep.Applied
	c.maxTerm = max(c.maxTerm, uint64(rep.MaxTerm))
	c.maxCommit = max(c.maxCommit, uint64(rep.Commits))
	c.snap.Add(rep.Snap)
	c.churn.Add(rep.Churn)
	if rep.LinearizabilityUnknown {
		c.unknownLin++
	}
}

func (c *campaign) rate() float64 {
	if m := time.Since(c.start).Minutes(); m > 0 {
		return float64(c.done) / m
	}
	return 0
}

// draw updates the progress line (at most four times a second).
func (c *campaign) draw(final bool) {
	if c.f.quiet || (!final && time.Since(c.lastDraw) < 250*time.Millisecond) {
		return
	}
	c.lastDraw = time.Now()
	const width = 30
	total := c.f.seeds
	fill := c.done * width / total
	eta := ""
	if r := c.rate(); r > 0 && c.done < total {
		eta = " eta " + time.Duration(float64(total-c.done)/r*float64(time.Minute)).Round(time.Second).String()
	}
	fmt.Fprintf(c.out, "\r[%s%s] %d/%d seeds  violations %d  %.0f seeds/min%s   ", strings.Repeat("#", fill),
		strings.Repeat(".", width-fill), c.done, total, len(c.violations), c.rate(), eta)
	if final {
		fmt.Fprintln(c.out)
	}
}

// table prints the campaign's summary and returns the exit code.
func (c *campaign) table() int {
	out, f := c.out, c.f
	elapsed := time.Since(c.start)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(out, "%-30s "+format+"\n", append([]any{name}, args...)...)
	}
	fmt.Fprintln(out)
	row("seeds", "%d (%d..%d; %d nodes, %d clients, %d workers)", f.seeds, f.startSeed,
		f.startSeed+uint64(f.seeds)-1, c.cfg.Nodes, c.cfg.Clients, f.workers)
	row("steps (virtual time units)", "%d faulty + %d healed (longest liveness phase %d)", c.steps, c.healed, c.maxLive)
	row("faults injected", "%d", c.faults.Total())
	for k := range sim.NumFaultKinds {
		row("  "+k.String(), "%d", c.faults[k])
	}
	row("messages sent", "%d", c.msgs)
	row("elections", "%d (max term %d)", c.elections, c.maxTerm)
	row("node restarts", "%d", c.restarts)
	row("entries applied", "%d (max commit index %d)", c.applied, c.maxCommit)
	row("appends batched", "%d Readys left to the end of the unit, %d acknowledgements merged", c.readiesBatched, c.acksMerged)
	row("client ops checked", "%d (%d retries, %d pending)", c.ops, c.retry, c.pending)
	row("  gets served by ReadIndex", "%d", c.readIndexReads)
	s := c.snap
	row("snapshots taken", "%d (%d compactions; longest stored log %d)", s.Taken, s.Compactions, s.MaxLogLen)
	row("snapshot transfers", "%d sent, %d installed, %d refused as damaged", s.Sent, s.Installed, s.Bad)
	row("restarts from a snapshot", "%d", s.Restored)
	ch := c.churn
	row("membership events", "%d (%d found no leader), %d changes proposed, %d committed", ch.Attempts, ch.NoLeader, ch.Proposed, ch.Committed)
	row("  joint configurations", "%d entered, %d left", ch.JointEntered, ch.JointLeft)
	row("  requests accepted", "%s", ch.KindString())
	row("  requests refused", "%s", ch.RejectString())
	row("  nodes re-added", "%d", ch.ReAdded)
	row("  leadership transfers", "%d requested, %d completed", ch.TransfersRequested, ch.TransfersCompleted)
	row("  removed leaders", "%d handed off, %d stepped down", ch.HandOffs, ch.RemovedLeaderStepDowns)
	if ch.Retired > 0 {
		row("  removed nodes retired", "%d (at the heal: neither pre-vote nor check-quorum)", ch.Retired)
	}
	row("  voters", "%d..%d (members up to %d)", ch.MinVoters, ch.MaxVoters, ch.MaxMembers)
	if c.unknownLin > 0 {
		row("linearizability timed out", "%d", c.unknownLin)
	}
	row("violations", "%d", len(c.violations))
	row("elapsed", "%v", elapsed.Round(time.Second))
	row("seeds/minute", "%.1f", float64(f.seeds)/elapsed.Minutes())
	if len(c.violations) == 0 {
		return 0
	}
	props := make([]string, 0, len(c.byProperty))
	for p := range c.byProperty {
		props = append(props, p)
	}
	sort.Strings(props)
	for _, p := range props {
		row("  "+p, "%d", c.byProperty[p])
	}
	sort.Slice(c.violations, func(i, j int) bool { return c.violations[i].seed < c.violations[j].seed })
	fmt.Fprintln(out, "\nviolating seeds:")
	for i, r := range c.violations {
		if i == 20 {
			fmt.Fprintf(out, "  ... and %d more\n", len(c.violations)-20)
			break
		}
		var v *sim.Violation
		errors.As(r.err, &v)
		fmt.Fprintf(out, "  seed %-8d %s: %s\n", r.seed, v.Property, v.Detail)
	}
	fmt.Fprintf(out, "\nfirst violation in full:\n%v\n", c.violations[0].err)
	return 1
}

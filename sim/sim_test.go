package sim

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// seedBudget is how many seeds TestSimSeeds runs: 200 normally, 50 under
// the race detector, which slows a run about 15-fold (200 seeds would take
// about 75 s of the CI's race step on their own; 50 take about 20 s). The
// full 200 run in the plain `go test ./...`; the race build checks the
// same code paths for data races, and each run is single-goroutine anyway.
func seedBudget() int {
	if raceEnabled {
		return 50
	}
	return 200
}

// TestSimSeeds runs seeds 1..200 of the default configuration (5 nodes,
// 5000 steps, every fault kind) and requires zero violations. Each seed is
// a parallel subtest: reproduce one with
// go test -run 'TestSimSeeds/seed=17' ./sim/ or with the CLI.
func TestSimSeeds(t *testing.T) {
	n := seedBudget()
	var mu sync.Mutex
	var total FaultCounts
	var snap SnapshotStats
	var churn ChurnStats
	var ops, elections, withInstall, batched int
	var merged uint64
	start := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		t.Logf("%d seeds x %d steps in %v (%.0f seeds/min on %d CPUs): %d client ops checked, %d elections; faults: %v; snapshots: %v",
			n, DefaultSteps, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Minutes(),
			runtime.GOMAXPROCS(0), ops, elections, total, snap)
		t.Logf("membership: %v", churn)
		for k, v := range total {
			if v == 0 {
				t.Errorf("fault kind %v never injected over %d seeds", FaultKind(k), n)
			}
		}
		// The default seeds must exercise snapshots: taken and compacted
		// everywhere, transferred and installed in most seeds, restored
		// at restarts (including after an interrupted install), and
		// crashes must hit transfers in progress.
		switch {
		case snap.Taken == 0 || snap.Compactions == 0 || snap.Sent == 0 || snap.Installed == 0 || snap.Restored == 0 || snap.LogRestarted == 0:
			t.Errorf("over %d seeds, snapshots were not all exercised: %v", n, snap)
		case withInstall < n*3/4:
			t.Errorf("only %d of %d seeds installed a snapshot", withInstall, n)
		case total[FaultCrashInTransfer] == 0 || total[FaultLostSnapshot] == 0:
			t.Errorf("no crash during a snapshot transfer over %d seeds: %v", n, total)
		}
		// And membership churn: every kind of request accepted, joint
		// configurations entered and left, removed nodes re-added,
		// transfers completed, removed leaders handing off.
		for k, v := range churn.ByKind {
			if v == 0 {
				t.Errorf("over %d seeds, no %s request was accepted: %v", n, churnNames[k], churn)
			}
		}
		if churn.Committed == 0 || churn.JointLeft == 0 || churn.ReAdded == 0 || churn.TransfersCompleted == 0 || churn.HandOffs == 0 {
			t.Errorf("over %d seeds, membership changes were not all exercised: %v", n, churn)
		}
		// And group commit: followers' appends sharing a Ready, their
		// acknowledgements merged by the cores.
		if batched == 0 || merged == 0 {
			t.Errorf("over %d seeds, %d Readys batched and %d acknowledgements merged", n, batched, merged)
		}
	})
	for seed := 1; seed <= n; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rep, err := Run(Config{Seed: uint64(seed)})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Linearizable || rep.Pending != 0 || rep.Steps != DefaultSteps {
				t.Fatalf("seed %d: %v", seed, rep)
			}
			mu.Lock()
			total.Add(rep.Faults)
			snap.Add(rep.Snap)
			churn.Add(rep.Churn)
			if rep.Snap.Installed > 0 {
				withInstall++
			}
			ops += rep.ClientOps
			elections += rep.Elections
			batched += rep.ReadiesBatched
			merged += rep.AcksMerged
			mu.Unlock()
		})
	}
}

// TestDeterminism: the same seed gives the same events and report; other
// seeds give other runs.
func TestDeterminism(t *testing.T) {
	cfg := Config{Seed: 42, Steps: 2000}
	a, errA := Run(cfg)
	b, errB := Run(cfg)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a != b {
		t.Fatalf("same seed, different reports:\n%v\n%v", a, b)
	}
	wa, wb := newWorld(cfg.withDefaults()), newWorld(cfg.withDefaults())
	wa.run()
	wb.run()
	if ea, eb := strings.Join(wa.ev.last(ringSize), "\n"), strings.Join(wb.ev.last(ringSize), "\n"); ea != eb {
		t.Fatalf("same seed, different last events:\n%s\n---\n%s", ea, eb)
	}
	seen := map[uint64]uint64{a.EventHash: 42}
	for seed := uint64(43); seed < 48; seed++ {
		r, err := Run(Config{Seed: seed, Steps: 2000})
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[r.EventHash]; dup {
			t.Fatalf("seeds %d and %d produced the same event hash %016x", prev, seed, r.EventHash)
		}
		seen[r.EventHash] = seed
	}
}

// TestCleanRun: without faults every operation is answered on the first
// try and every node applies everything.
func TestCleanRun(t *testing.T) {
	rep, err := Run(Config{Seed: 7, NoFaults: true, Steps: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Faults.Total() != rep.Faults[FaultReorder] || rep.Restarts != 0 || rep.Elections != 1 {
		t.Fatalf("a fault-free run saw faults or re-elections: %v", rep)
	}
	if rep.ClientOps < 500 || !rep.Linearizable || rep.Pending != 0 {
		t.Fatalf("clean run: %v", rep)
	}
}

// TestClusterSizes runs small and large clusters, scripts and all.
func TestClusterSizes(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, MaxNodes} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= 3; seed++ {
				if _, err := Run(Config{Seed: seed, Nodes: n, Steps: 2000}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestLyingDiskIsCaught proves the checkers bite in the clean build: a
// disk whose Sync does nothing loses votes and acknowledged entries at
// every crash, which must surface as a safety violation.
func TestLyingDiskIsCaught(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		_, err := Run(Config{Seed: seed, lyingDisk: true, Faults: Faults{Crash: 0.01}})
		var v *Violation
		if errors.As(err, &v) {
			t.Logf("seed %d caught the lying disk: %s: %s", seed, v.Property, v.Detail)
			if !strings.Contains(v.Error(), "last 32 events") || !strings.Contains(v.Error(), "--seed "+fmt.Sprint(seed)) {
				t.Errorf("violation lacks events or a reproduction line:\n%v", v)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("50 seeds with a disk that never syncs found no violation")
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Nodes: MaxNodes + 1}, {Nodes: -1}, {Steps: -1}, {ElectionTicks: 2, HeartbeatTicks: 2},
		{Faults: Faults{Loss: 0.95}}, {Faults: Faults{Crash: 2}}, {Keys: -1},
	} {
		if _, err := Run(c); err == nil {
			t.Errorf("%+v: no error", c)
		} else if errors.As(err, new(*Violation)) {
			t.Errorf("%+v: a bad config reported as a violation: %v", c, err)
		}
	}
}

func TestFaultsDisable(t *testing.T) {
	rep, err := Run(Config{Seed: 3, Steps: 2000, Faults: Faults{Loss: -1, Duplicate: -1, Corrupt: -1,
		LongDelay: -1, Partition: -1, Crash: -1, Skew: -1, ResponseLoss: -1, LocalDrop: -1,
		CrashInTransfer: -1, CrashAtInstall: -1, CrashAfterInstall: -1}})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range rep.Faults {
		if v != 0 && FaultKind(k) != FaultReorder {
			t.Errorf("%v: %d injected although disabled", FaultKind(k), v)
		}
	}
}

// TestStaleReadsAreCaught proves the linearizability check bites on real
// runs: answering gets from the local replica, without the log, returns
// stale values under partitions and lagging followers.
func TestStaleReadsAreCaught(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		_, err := Run(Config{Seed: seed, staleReads: true})
		var v *Violation
		if errors.As(err, &v) {
			if v.Property != "linearizability" {
				t.Fatalf("seed %d: stale reads reported as %s: %v", seed, v.Property, v)
			}
			t.Logf("seed %d caught stale reads: %s", seed, v.Detail)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("50 seeds of local (stale) reads passed the linearizability check")
}

// TestReadPaths runs the read variants: every get through the log, and
// ReadIndex with the cores' read leases (equal clock rates, which the
// lease assumes), and checks that ReadIndex reads are served.
func TestReadPaths(t *testing.T) {
	for _, c := range []Config{
		{NoReadIndex: true},
		{ReadLease: true},
	} {
		for seed := uint64(1); seed <= 5; seed++ {
			c.Seed, c.Steps = seed, 2000
			rep, err := Run(c)
			if err != nil {
				t.Fatal(err)
			}
			if (rep.ReadIndexReads == 0) != c.NoReadIndex {
				t.Fatalf("NoReadIndex=%v but %d ReadIndex reads", c.NoReadIndex, rep.ReadIndexReads)
			}
			if c.ReadLease && rep.Faults[FaultSkew] != 0 {
				t.Fatalf("read leases run with clock skew by default: %v", rep)
			}
		}
	}
}

// TestEarlyReadIndexReadsAreCaught: a runtime that serves a ReadIndex read
// before its node applied the read index returns stale values from
// lagging followers; the linearizability check must notice.
func TestEarlyReadIndexReadsAreCaught(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		_, err := Run(Config{Seed: seed, readsIgnoreApplied: true})
		var v *Violation
		if errors.As(err, &v) {
			if v.Property != "linearizability" {
				t.Fatalf("seed %d: early reads reported as %s: %v", seed, v.Property, v)
			}
			t.Logf("seed %d caught ReadIndex reads served before the read index was applied: %s", seed, v.Detail)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("50 seeds of early ReadIndex reads passed the linearizability check")
}

// TestReadyBatching: by default followers' appends share Readys and the
// cores merge their acknowledgements; NoReadyBatching hands every Ready
// over at once, so nothing is merged. Both runs are clean.
func TestReadyBatching(t *testing.T) {
	for _, off := range []bool{false, true} {
		rep, err := Run(Config{Seed: 3, Steps: 2000, NoReadyBatching: off})
		if err != nil {
			t.Fatalf("NoReadyBatching=%v: %v", off, err)
		}
		if got := rep.ReadiesBatched > 0 && rep.AcksMerged > 0; got == off {
			t.Fatalf("NoReadyBatching=%v: %d Readys batched, %d acknowledgements merged", off, rep.ReadiesBatched, rep.AcksMerged)
		}
	}
}

// TestRemovedNodesRetiredWithoutProtections: with neither pre-vote nor
// check-quorum, removed nodes that never learned of their removal kept
// deposing the members' leader through the whole liveness phase (seed
// 1583: four of them, term 466); the heal retires them, as an operator
// would, and the run converges. With the protections on, none is retired.
func TestRemovedNodesRetiredWithoutProtections(t *testing.T) {
	rep, err := Run(Config{Seed: 1583, DisablePreVote: true, DisableCheckQuorum: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Churn.Retired == 0 {
		t.Fatalf("seed 1583 without protections retired no node: %v", rep.Churn)
	}
	rep, err = Run(Config{Seed: 1583})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Churn.Retired != 0 {
		t.Fatalf("with pre-vote and check-quorum on, %d nodes were retired", rep.Churn.Retired)
	}
}

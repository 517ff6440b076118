package mcu

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/embraft/embraft/firmware/hostcheck"
)

// The firmware's scenario, run by the host's Go: the same code TinyGo
// builds for the Cortex-M4, with package semihost on package os.

var okLine = regexp.MustCompile(`(?m)^FIRMWARE OK: leader=[1-5] terms=[0-9]+ committed=([0-9]+) on all 5 nodes$`)

func runOnce(t *testing.T, cfg Config) (Report, string) {
	t.Helper()
	var out bytes.Buffer
	cfg.Out = &out
	if cfg.Tick == 0 {
		cfg.Tick = time.Millisecond
	}
	cfg.Seed = 7
	cfg.Deadline = time.Minute
	rep := Run(cfg)
	text := out.String() + strings.Join(Summary(cfg, rep), "\n") + "\n"
	if !rep.OK {
		t.Fatalf("run failed: %v\n%s", rep.Err, text)
	}
	m := okLine.FindStringSubmatch(text)
	if m == nil || m[1] != strconv.Itoa(cfg.Commands) {
		t.Fatalf("no final OK line for %d commands:\n%s", cfg.Commands, text)
	}
	return rep, text
}

func TestRunMemory(t *testing.T) {
	rep, text := runOnce(t, Config{Commands: 60})
	if rep.FailedLeader == 0 || rep.NewLeader == 0 || rep.NewLeader == rep.FailedLeader {
		t.Fatalf("no failover: stopped %d, new leader %d\n%s", rep.FailedLeader, rep.NewLeader, text)
	}
	for _, want := range []string{"starting election (term 1)", "became Leader for term",
		"FAILOVER: stopping the leader", "RESTART: Node"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if rep.Committed != 60 || rep.CAS < 60/2-4 || rep.CAS > 60/2 {
		t.Fatalf("committed %d, CAS %d", rep.Committed, rep.CAS)
	}
}

// TestRunBoundedWindow runs many more commands than the RAM window holds,
// through a failover: compaction to the cluster's floor keeps every store
// within its bound, and the clients wait while the stopped node holds the
// floor down.
func TestRunBoundedWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	runOnce(t, Config{Commands: 1200, Window: 64})
}

// TestRunSemihostingResumes runs the semihosting configuration twice on
// the same directories: the second run resumes, and storage/file accepts
// what was written.
func TestRunSemihostingResumes(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 5; i++ {
		if err := os.Mkdir(filepath.Join(dir, "node-"+strconv.Itoa(i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Commands: 40, Storage: Semihosting, DataDir: dir}
	first, _ := runOnce(t, cfg)
	if first.Resumed {
		t.Fatal("the first run claims to resume")
	}
	second, text := runOnce(t, cfg)
	if !second.Resumed || second.ResumedAt.Commit != first.Index || second.StartTerm < first.Term {
		t.Fatalf("second run: resumed %v at %+v (start term %d); first ended at index %d term %d\n%s",
			second.Resumed, second.ResumedAt, second.StartTerm, first.Index, first.Term, text)
	}
	if !strings.Contains(text, "resumed from its files: term ") || second.Index <= first.Index ||
		second.Keys <= first.Keys {
		t.Fatalf("second run: index %d keys %d (first: %d, %d)\n%s", second.Index, second.Keys, first.Index, first.Keys, text)
	}
	nodes, commit, err := hostcheck.Check(dir, 5, DefaultCluster)
	if err != nil {
		t.Fatal(err)
	}
	if commit != second.Index || nodes[0].LastIndex != second.Index {
		t.Fatalf("storage/file sees commit %d, last %d; the run ended at %d", commit, nodes[0].LastIndex, second.Index)
	}
}

// TestRunFailureReported: a run that cannot finish says why, in the line
// CI looks for, instead of hanging or claiming success.
func TestRunFailureReported(t *testing.T) {
	var out bytes.Buffer
	cfg := Config{Commands: 10, Tick: time.Millisecond, Deadline: 5 * time.Millisecond, Out: &out}
	rep := Run(cfg)
	lines := Summary(cfg, rep)
	if rep.OK || len(lines) != 1 || !strings.HasPrefix(lines[0], "FIRMWARE FAIL: ") || okLine.MatchString(out.String()) {
		t.Fatalf("ok %v, summary %q\n%s", rep.OK, lines, out.String())
	}
}

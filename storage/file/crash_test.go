package file_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
)

// The crash test re-executes the test binary as a child that appends under
// load and reports each durable point on stdout; the parent kills it with
// SIGKILL at a random moment, reopens the directory and checks that
// everything reported durable is there and intact.
const (
	crashChildEnv = "EMBRAFT_CRASH_CHILD"
	crashDirEnv   = "EMBRAFT_CRASH_DIR"
	crashRoundEnv = "EMBRAFT_CRASH_ROUND"
	crashSeedEnv  = "EMBRAFT_CRASH_SEED"
	crashSegBytes = 8 << 10
)

func crashOpts(fs file.FS) file.Options {
	return opts(func(o *file.Options) { o.SegmentBytes = crashSegBytes; o.FS = fs })
}

// crashChild is the child's main. Its stdout lines:
//
//	R                        ready (opened, recovered)
//	T <start>                about to append from start, truncating a suffix
//	C <i>                    about to Compact(i)
//	S <start> <end> <term> <vote> <commit>   entries [start, end] and that hard state are durable
func crashChild() int {
	round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	fs := newFaultFS()
	fs.chunk = 8 // many write syscalls per record: kills tear records
	s, err := file.Open(os.Getenv(crashDirEnv), crashOpts(fs))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
	}
	say("R")
	if err := crashLoad(s, rand.New(rand.NewPCG(seed, uint64(round))), round, say); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	return 0
}

// crashLoad appends batches forever (until killed), with occasional
// truncating appends, term changes and compactions, like a Raft follower.
func crashLoad(s *file.Storage, rng *rand.Rand, round int, say func(string, ...any)) error {
	hs, _ := s.InitialState()
	last, _ := s.LastIndex()
	lastTerm, _ := s.Term(last)
	term := max(hs.Term, lastTerm, 1)
	for {
		first, _ := s.FirstIndex()
		last, _ = s.LastIndex()
		start := last + 1
		switch r := rng.IntN(100); {
		case r < 8 && last > hs.Commit && last >= first:
			start = max(hs.Commit+1, first) + raft.Index(rng.IntN(int(last-max(hs.Commit+1, first)+1)))
			term++
			say("T %d", start)
		case r < 12:
			term++
		case r < 14 && hs.Commit > first+20:
			i := hs.Commit - raft.Index(rng.IntN(10))
			say("C %d", i)
			if err := s.Compact(i); err != nil {
				return err
			}
		}
		end := start + raft.Index(rng.IntN(24))
		hs.Term, hs.Vote = term, raft.NodeID(term%5+1)
		if err := s.SetHardState(hs); err != nil {
			return err
		}
		if err := s.Append(mkEnts(start, end, term, round)); err != nil {
			return err
		}
		if err := s.Sync(); err != nil {
			return err
		}
		say("S %d %d %d %d %d", start, end, hs.Term, hs.Vote, hs.Commit)
		hs.Commit = max(hs.Commit, end-raft.Index(rng.IntN(int(min(end, 5)))))
	}
}

// crashModel is what the parent knows is durable.
type crashModel struct {
	ents map[raft.Index][2]uint64 // index -> term, round
	last raft.Index
	hs   raft.HardState // the last reported durable hard state
	// minCommit is the commit index of the last hard state that was
	// fsynced: one whose term or vote changed. Commit-only changes are
	// written without fsync and may be lost (the leader resends commit).
	minCommit raft.Index
	trunc     raft.Index // a truncating append announced after the last S (0: none)
	maxCompa  raft.Index // largest compaction announced
	// counts of what the children did, for the summary
	truncations, compactions int
}

func TestCrashRecovery(t *testing.T) {
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("EMBRAFT_CRASH_TEST_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (rerun with EMBRAFT_CRASH_TEST_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	m := &crashModel{ents: map[raft.Index][2]uint64{}}
	torn, removed := 0, 0
	for round := 1; round <= rounds; round++ {
		lines := runCrashChild(t, dir, round, seed, time.Duration(2+rng.IntN(48))*time.Millisecond)
		m.apply(t, lines)
		s, err := file.Open(dir, crashOpts(nil))
		if err != nil {
			t.Fatalf("seed %d round %d: reopen: %v", seed, round, err)
		}
		if s.Recovery().TornBytes > 0 {
			torn++
		}
		removed += s.Recovery().RemovedFiles
		m.check(t, s, round, seed)
		mustClose(t, s)
		checkIdempotent(t, dir, m.last, seed, round)
	}
	t.Logf("%d rounds: %d torn tails cut, %d files removed at open; children made %d truncating appends, %d compactions; log ends at %d",
		rounds, torn, removed, m.truncations, m.compactions, m.last)
	if torn == 0 || m.truncations == 0 {
		t.Errorf("seed %d: the crash test did not exercise torn tails (%d) or truncations (%d)", seed, torn, m.truncations)
	}
}

// runCrashChild starts a child, lets it run for d after it is ready, kills
// it with SIGKILL and returns its complete stdout lines.
func runCrashChild(t *testing.T, dir string, round int, seed uint64, d time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashDirEnv+"="+dir,
		crashRoundEnv+"="+strconv.Itoa(round), crashSeedEnv+"="+strconv.FormatUint(seed, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	linesc := make(chan []string)
	go func() { linesc <- readLines(stdout, ready) }()
	select {
	case <-ready:
		time.Sleep(d)
	case <-time.After(10 * time.Second):
		t.Errorf("round %d: child not ready", round)
	}
	_ = cmd.Process.Kill()
	lines := <-linesc
	_ = cmd.Wait()
	if len(lines) == 0 || lines[0] != "R" {
		t.Fatalf("seed %d round %d: child failed: %s", seed, round, stderr.String())
	}
	return lines[1:]
}

// readLines reads newline-terminated lines until EOF; a partial last line
// (the child was killed while writing it) is not a report.
func readLines(r io.Reader, ready chan struct{}) []string {
	br := bufio.NewReader(r)
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			if len(lines) == 0 {
				close(ready)
			}
			return lines
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
		if len(lines) == 1 {
			close(ready)
		}
	}
}

// apply folds the child's reports into the model.
func (m *crashModel) apply(t *testing.T, lines []string) {
	for _, l := range lines {
		var a [5]uint64
		switch l[0] {
		case 'T':
			fmt.Sscanf(l, "T %d", &a[0])
			m.truncations++
			if m.trunc == 0 || raft.Index(a[0]) < m.trunc {
				m.trunc = raft.Index(a[0])
			}
		case 'C':
			fmt.Sscanf(l, "C %d", &a[0])
			m.maxCompa = max(m.maxCompa, raft.Index(a[0]))
			m.compactions++
		case 'S':
			if _, err := fmt.Sscanf(l, "S %d %d %d %d %d", &a[0], &a[1], &a[2], &a[3], &a[4]); err != nil {
				t.Fatalf("bad child line %q", l)
			}
			m.durable(raft.Index(a[0]), raft.Index(a[1]), raft.Term(a[2]))
			hs := raft.HardState{Term: raft.Term(a[2]), Vote: raft.NodeID(a[3]), Commit: raft.Index(a[4])}
			if hs.Term != m.hs.Term || hs.Vote != m.hs.Vote {
				m.minCommit = hs.Commit
			}
			m.hs = hs
			m.trunc = 0
		}
	}
}

func (m *crashModel) durable(start, end raft.Index, term raft.Term) {
	for i := start; i <= m.last; i++ {
		delete(m.ents, i)
	}
	for i := start; i <= end; i++ {
		m.ents[i] = [2]uint64{uint64(term), 0} // round filled in by check
	}
	m.last = end
}

// check verifies the reopened log against the model, then makes the model
// what the log now holds.
func (m *crashModel) check(t *testing.T, s *file.Storage, round int, seed uint64) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Fatalf("seed %d round %d: "+format, append([]any{seed, round}, args...)...)
	}
	bound := m.last
	if m.trunc != 0 {
		bound = min(bound, m.trunc-1)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	hs, _ := s.InitialState()
	switch {
	case last < bound:
		fail("log ends at %d, but %d was reported durable", last, bound)
	case first-1 > m.maxCompa:
		fail("log starts at %d, beyond any compaction (%d)", first, m.maxCompa)
	case hs.Term < m.hs.Term || (hs.Term == m.hs.Term && m.hs.Vote != 0 && hs.Vote != m.hs.Vote):
		fail("hard state %+v, but %+v was durable", hs, m.hs)
	case hs.Commit < m.minCommit:
		fail("commit %d, but %d was fsynced", hs.Commit, m.minCommit)
	}
	m.verifyEntries(t, fail, allEntries(t, s), bound, round)
	m.last, m.trunc, m.hs, m.minCommit = last, 0, hs, hs.Commit // Open fsyncs what it found
}

func (m *crashModel) verifyEntries(t *testing.T, fail func(string, ...any), ents []raft.Entry, bound raft.Index, round int) {
	for i := range ents {
		e := ents[i]
		r, err := checkPayload(e)
		switch {
		case err != nil:
			fail("entry %d damaged: %v", e.Index, err)
		case r > round:
			fail("entry %d from a future round %d", e.Index, r)
		}
		want, known := m.ents[e.Index]
		if e.Index <= bound && known && (raft.Term(want[0]) != e.Term || (want[1] != 0 && int(want[1]) != r)) {
			fail("entry %d is term %d round %d, durable was term %d round %d", e.Index, e.Term, r, want[0], want[1])
		}
		if e.Index <= bound && !known {
			fail("durable entry %d missing from the model", e.Index)
		}
	}
	clear(m.ents)
	for _, e := range ents {
		r, _ := checkPayload(e)
		m.ents[e.Index] = [2]uint64{uint64(e.Term), uint64(r)}
	}
}

// checkIdempotent reopens once more: a second recovery must find nothing
// to repair (no torn bytes survived the first).
func checkIdempotent(t *testing.T, dir string, last raft.Index, seed uint64, round int) {
	t.Helper()
	s, err := file.Open(dir, crashOpts(nil))
	if err != nil {
		t.Fatalf("seed %d round %d: second reopen: %v", seed, round, err)
	}
	defer mustClose(t, s)
	l, _ := s.LastIndex()
	if rec := s.Recovery(); rec.TornBytes != 0 || rec.RemovedFiles != 0 || l != last {
		t.Fatalf("seed %d round %d: second reopen repaired again: %+v, last %d want %d", seed, round, rec, l, last)
	}
}

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
//	P <i> <term>             about to CreateSnapshot(i)
//	Q <i> <term>             that snapshot is durable
//	I <i> <term>             about to receive and install a snapshot (i is beyond the log)
//	J <i> <term>             that snapshot is installed, the log restarted after i
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
// truncating appends, term changes, snapshots, compactions and installs of
// a snapshot from a leader, like a Raft follower.
func crashLoad(s *file.Storage, rng *rand.Rand, round int, say func(string, ...any)) error {
	hs, _ := s.InitialState()
	last, _ := s.LastIndex()
	lastTerm, _ := s.Term(last)
	term := max(hs.Term, lastTerm, 1)
	for n := 0; ; n++ {
		first, _ := s.FirstIndex()
		last, _ = s.LastIndex()
		snap, _ := s.Snapshot()
		start := last + 1
		r := rng.IntN(100)
		switch {
		case n == 0 && round%5 == 0:
			r = 21 // every fifth round starts with an install
		case n == 8 && round%5 == 1:
			r = 18 // and one in five makes a snapshot early
		}
		switch {
		case r < 8 && last > hs.Commit && last >= first:
			start = max(hs.Commit+1, first) + raft.Index(rng.IntN(int(last-max(hs.Commit+1, first)+1)))
			term++
			say("T %d", start)
		case r < 12:
			term++
		case r < 16 && snap.Index > first+20:
			i := snap.Index - raft.Index(rng.IntN(10))
			say("C %d", i)
			if err := s.Compact(i); err != nil {
				return err
			}
		case r < 20 && hs.Commit > snap.Index && hs.Commit >= first:
			if err := crashSnapshot(s, hs.Commit, say); err != nil {
				return err
			}
		case r < 22:
			term++
			i := last + 1 + raft.Index(rng.IntN(30))
			if err := crashInstall(s, i, raft.Term(term), say); err != nil {
				return err
			}
			start, hs.Commit = i+1, i
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

// crashSnapData is the data of the child's snapshot (i, t).
func crashSnapData(i raft.Index, t raft.Term) []byte {
	return snapData(uint64(i)<<8|uint64(t), 2000+int(i*37%6000))
}

// crashConf is the configuration of the child's snapshot (i, t): none, a
// plain one with a learner, or a joint one with a learner.
func crashConf(i raft.Index, t raft.Term) raft.ConfState {
	switch (uint64(i) + uint64(t)) % 3 {
	case 1:
		return raft.ConfState{Voters: []raft.NodeID{1, 2, 3}, Learners: []raft.NodeID{4 + raft.NodeID(i%5)}}
	case 2:
		return raft.ConfState{Voters: []raft.NodeID{1, 2, 4}, VotersOutgoing: []raft.NodeID{1, 2, 3}, Learners: []raft.NodeID{10 + raft.NodeID(i%7)}}
	}
	return raft.ConfState{}
}

func crashSnapshot(s *file.Storage, i raft.Index, say func(string, ...any)) error {
	t, err := s.Term(i)
	if err != nil {
		return err
	}
	say("P %d %d", i, t)
	if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: i, Term: t, Conf: crashConf(i, t)}, writeData(crashSnapData(i, t))); err != nil {
		return err
	}
	say("Q %d %d", i, t)
	return nil
}

// crashInstall receives a snapshot in chunks of up to 3000 bytes and
// installs it.
func crashInstall(s *file.Storage, i raft.Index, t raft.Term, say func(string, ...any)) error {
	say("I %d %d", i, t)
	data := crashSnapData(i, t)
	meta := raft.SnapshotMeta{Index: i, Term: t, Size: uint64(len(data)), CRC: raft.SnapshotCRC(data), Conf: crashConf(i, t)}
	for off := 0; off < len(data); off += 3000 {
		c := raft.SnapshotChunk{Meta: meta, Offset: uint64(off), Data: data[off:min(off+3000, len(data))]}
		if err := s.WriteSnapshotChunk(c); err != nil {
			return err
		}
	}
	if err := s.InstallSnapshot(meta); err != nil {
		return err
	}
	say("J %d %d", i, t)
	return nil
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
	maxCompa  raft.Index // largest compaction announced (installs included)
	// snap is the durable snapshot; pend one announced (P, I) but not
	// reported done, which a reopen may or may not find; pendInstall says
	// that pend is an install.
	snap, pend  raft.SnapshotMeta
	pendInstall bool
	// counts of what the children did, for the summary
	truncations, compactions, snapshots, installs, installStarts, interrupted, installedAtKill int
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
	t.Logf("%d rounds: %d torn tails cut, %d files removed at open; children made %d truncating appends, %d compactions, %d snapshots, %d installs begun (%d completed); %d kills during a snapshot or install (%d found the install done); log ends at %d",
		rounds, torn, removed, m.truncations, m.compactions, m.snapshots, m.installStarts, m.installs, m.interrupted, m.installedAtKill, m.last)
	if torn == 0 || m.truncations == 0 || m.snapshots == 0 || m.installStarts == 0 {
		t.Errorf("seed %d: the crash test did not exercise torn tails (%d), truncations (%d), snapshots (%d) or installs (%d)",
			seed, torn, m.truncations, m.snapshots, m.installStarts)
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
	if len(lines) == 0 || lines[0] != "R" || stderr.Len() > 0 {
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
		case 'P', 'Q', 'I', 'J':
			if l[0] == 'I' {
				m.installStarts++
			}
			fmt.Sscanf(l[2:], "%d %d", &a[0], &a[1])
			m.applySnap(l[0], raft.SnapshotMeta{Index: raft.Index(a[0]), Term: raft.Term(a[1])})
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

func (m *crashModel) applySnap(op byte, meta raft.SnapshotMeta) {
	switch op {
	case 'P', 'I':
		m.pend, m.pendInstall = meta, op == 'I'
	case 'Q':
		m.snap, m.pend = meta, raft.SnapshotMeta{}
		m.snapshots++
	case 'J':
		m.snap, m.pend = meta, raft.SnapshotMeta{}
		m.installs++
		clear(m.ents)
		m.last, m.trunc = meta.Index, 0
		m.maxCompa = max(m.maxCompa, meta.Index)
	}
}

// checkSnapshot verifies the reopened snapshot: the durable one or the
// pending one, with the child's data and configuration. It reports whether a pending
// install took effect.
func (m *crashModel) checkSnapshot(t *testing.T, fail func(string, ...any), s *file.Storage) bool {
	got, _ := s.Snapshot()
	same := func(a, b raft.SnapshotMeta) bool { return a.Index == b.Index && a.Term == b.Term }
	pending := m.pend.Index != 0 && same(got, m.pend)
	if !same(got, m.snap) && !pending {
		fail("snapshot %+v, durable was %+v, pending %+v", got, m.snap, m.pend)
	}
	if !got.IsEmpty() {
		om, rc, err := s.OpenSnapshot()
		if err != nil {
			fail("OpenSnapshot: %v", err)
		}
		if want := crashConf(got.Index, got.Term); !got.Conf.Equal(want) || !om.Conf.Equal(want) {
			fail("snapshot %d configuration %+v (OpenSnapshot %+v), want %+v", got.Index, got.Conf, om.Conf, want)
		}
		data, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || !bytes.Equal(data, crashSnapData(got.Index, got.Term)) {
			fail("snapshot %d data: %d bytes, %v", got.Index, len(data), err)
		}
	}
	if m.pend.Index != 0 {
		m.interrupted++
	}
	installed := pending && m.pendInstall
	if installed {
		m.installedAtKill++
	}
	m.snap, m.pend = got, raft.SnapshotMeta{}
	if installed {
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if first != got.Index+1 || last != got.Index {
			fail("installed snapshot %d, log %d..%d", got.Index, first, last)
		}
		clear(m.ents)
		m.last, m.trunc, m.maxCompa = got.Index, 0, max(m.maxCompa, got.Index)
	}
	return installed
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
	m.checkSnapshot(t, fail, s)
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
	case hs.Commit < m.snap.Index:
		fail("commit %d below the snapshot %d", hs.Commit, m.snap.Index)
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

package raft

import (
	"slices"
	"testing"
)

// Figure 8 of the Raft paper, on the network harness. Every new leader
// here appends a no-op of its term (§8), so the indexes are one higher than
// in the figure; the terms are the figure's. The entry the figure is about,
// "index 2, term 2", is fig8X = (index 3, term 2).
const (
	fig8XIndex = Index(3)
	fig8XTerm  = Term(2)
)

// fig8Opt is the paper's algorithm (no pre-vote, no check-quorum lease, so
// that votes are decided by §5.2 and §5.4.1 alone), with MsgApps of one
// entry each: a leader can then replicate an old entry without its own
// no-op, as S1 does in Figure 8(c).
func fig8Opt(c *Config) {
	paperOpt(c)
	c.MaxMsgBytes = entryOverheadBytes + 1
}

// fig8Restart models a crash and restart of id: a new core built from what
// id persisted, with its state machine as it was.
func fig8Restart(nw *network, id NodeID) {
	n := nw.nodes[id]
	var applied Index
	if k := len(n.applied); k > 0 {
		applied = n.applied[k-1].Index
	}
	n.r = paperNew(nw, id, 8, n.st, applied, fig8Opt)
}

// fig8Run delivers messages like settle, calling watch after each delivery
// so that it can cut links between two specific messages.
func fig8Run(nw *network, watch func()) {
	for range 10000 {
		moved := false
		for _, id := range nw.ids {
			for nw.process(id) {
				moved = true
			}
		}
		if len(nw.queue) > 0 {
			nw.deliverOne()
			watch()
			moved = true
		}
		if !moved {
			return
		}
	}
	nw.t.Fatalf("network did not settle")
}

func fig8Partition(nw *network, a, b []NodeID) {
	for _, x := range a {
		for _, y := range b {
			nw.cut[[2]NodeID{x, y}] = true
			nw.cut[[2]NodeID{y, x}] = true
		}
	}
}

func fig8HasX(r *Raft) bool { return r.log.matchTerm(fig8XIndex, fig8XTerm) }

// fig8CheckXNotApplied fails if any node has committed or applied X while
// S5 could still be elected and overwrite it.
func fig8CheckXNotApplied(t *testing.T, nw *network, when string) {
	t.Helper()
	for _, id := range nw.ids {
		if c := nw.node(id).log.committed; c >= fig8XIndex {
			t.Fatalf("%s: S%d has committed index %d (up to X at %d, term %d) while S5 can still overwrite it",
				when, id, c, fig8XIndex, fig8XTerm)
		}
		for _, e := range nw.nodes[id].applied {
			if e.Index == fig8XIndex {
				t.Fatalf("%s: S%d applied %+v while S5 can still overwrite it", when, id, e)
			}
		}
	}
}

// fig8CampaignUntilLeader makes id campaign until it wins, at most 3 times.
func fig8CampaignUntilLeader(t *testing.T, nw *network, id NodeID) {
	t.Helper()
	for range 3 {
		nw.node(id).Campaign()
		nw.settle()
		if nw.node(id).role == RoleLeader {
			return
		}
	}
	t.Fatalf("S%d could not get elected (role %v term %d)", id, nw.node(id).role, nw.node(id).term)
}

// fig8Setup plays Figure 8 (a)–(c) and returns the cluster in state (c).
func fig8Setup(t *testing.T) *network {
	t.Helper()
	nw := newNetwork(t, 5, 8, fig8Opt)
	// Every server starts with the figure's first entry, committed.
	for _, id := range nw.ids {
		paperRestore(nw, id, 8, []Entry{{Term: 1, Index: 1, Data: []byte("1")}}, HardState{Term: 1, Commit: 1}, fig8Opt)
	}

	// (a) S1 leads term 2 and replicates X only to S2.
	nw.elect(1)
	if term := nw.node(1).term; term != 2 {
		t.Fatalf("(a) S1 leads term %d, want 2", term)
	}
	fig8Partition(nw, []NodeID{1, 2}, []NodeID{3, 4, 5})
	if p := nw.propose(1, "X"); p.Index != fig8XIndex || p.Term != fig8XTerm {
		t.Fatalf("(a) X proposed at %d, term %d", p.Index, p.Term)
	}
	for _, id := range nw.ids {
		if fig8HasX(nw.node(id)) != (id <= 2) {
			t.Fatalf("(a) S%d holds X: %v", id, fig8HasX(nw.node(id)))
		}
	}
	fig8CheckXNotApplied(t, nw, "(a)")

	// (b) S1 crashes; S5 is elected for term 3 with votes from S3, S4 and
	// itself, and accepts a different entry at X's index, then crashes
	// before replicating it.
	nw.isolate(1)
	nw.node(5).Campaign()
	fig8Run(nw, func() {
		if nw.node(5).role == RoleLeader {
			nw.isolate(5)
		}
	})
	if r := nw.node(5); r.role != RoleLeader || r.term != 3 || !r.log.matchTerm(fig8XIndex, 3) {
		t.Fatalf("(b) S5: role %v term %d log %s; want leader of term 3 with its entry at %d", r.role, r.term, fmtLog(paperLogOf(r)), fig8XIndex)
	}
	for _, id := range []NodeID{3, 4} {
		if last := nw.node(id).log.lastIndex(); last != fig8XIndex-1 {
			t.Fatalf("(b) S%d got S5's entry (last index %d)", id, last)
		}
	}

	// (c) S1 restarts and is elected for term 4 by S1, S3 and S4 (in term 3
	// S3 and S4 had voted for S5). It replicates X to S3 and S4 before they
	// get anything of term 4. X is now on S1–S4, and S1 knows it is on a
	// majority; it must not count those replicas to commit X (§5.4.2).
	fig8Restart(nw, 1)
	nw.heal()
	nw.isolate(2)
	nw.isolate(5)
	nw.node(1).Campaign()
	nw.settle()
	if r := nw.node(1); r.role == RoleLeader || r.term != 3 {
		t.Fatalf("(c) S1 won term 3, in which S3 and S4 voted for S5 (role %v term %d)", r.role, r.term)
	}
	nw.node(1).Campaign()
	fig8Run(nw, func() {
		for _, id := range []NodeID{3, 4} {
			if fig8HasX(nw.node(id)) {
				// Hold back S1's later MsgApps (its term-4 no-op) to id;
				// id's acknowledgement of X still reaches S1.
				nw.cut[[2]NodeID{1, id}] = true
			}
		}
	})
	lead := nw.node(1)
	if lead.role != RoleLeader || lead.term != 4 {
		t.Fatalf("(c) S1: role %v term %d; want leader of term 4", lead.role, lead.term)
	}
	for _, id := range []NodeID{1, 2, 3, 4} {
		if !fig8HasX(nw.node(id)) {
			t.Fatalf("(c) S%d does not hold X: %s", id, fmtLog(paperLogOf(nw.node(id))))
		}
	}
	for _, id := range []NodeID{3, 4} {
		if m := lead.progressOf(id).match; m != fig8XIndex {
			t.Fatalf("(c) S1 thinks S%d matches up to %d, want %d", id, m, fig8XIndex)
		}
	}
	fig8CheckXNotApplied(t, nw, "(c)")
	return nw
}

// TestFigure8: "a leader cannot immediately conclude that an entry from a
// previous term is committed once it is stored on a majority of servers.
// Figure 8 illustrates a situation where an old log entry is stored on a
// majority of servers, yet can still be overwritten by a future leader."
// (c) S1, leader of term 4, has replicated X (index 2 in the figure, term
// 2) to a majority; X must not be committed. (d) If S1 crashes, S5 can be
// elected for term 5 (by S2, S3 and S4) and overwrite X everywhere: since X
// was never reported committed, nothing applied it. (e) If instead S1
// replicates an entry of its own term 4 to a majority, that commits it
// and X with it; S5 can then no longer win an election.
// Reference: §5.4.2
func TestFigure8(t *testing.T) {
	t.Run("d: S5 overwrites the uncommitted entry", func(t *testing.T) {
		nw := fig8Setup(t)
		nw.isolate(1) // S1 crashes
		fig8Restart(nw, 5)
		nw.heal()
		nw.isolate(1)
		fig8CampaignUntilLeader(t, nw, 5)
		if term := nw.node(5).term; term != 5 {
			t.Fatalf("(d) S5 elected for term %d, want 5", term)
		}
		for _, id := range []NodeID{2, 3, 4, 5} {
			r := nw.node(id)
			if !r.log.matchTerm(fig8XIndex, 3) || r.log.committed < fig8XIndex+1 {
				t.Fatalf("(d) S%d: log %s commit %d; want S5's term-3 entry at %d, committed",
					id, fmtLog(paperLogOf(r)), r.log.committed, fig8XIndex)
			}
		}
		// S1 comes back and is brought in line with S5.
		fig8Restart(nw, 1)
		nw.heal()
		for range 3 {
			nw.node(5).Tick()
			nw.settle()
		}
		want := paperLogOf(nw.node(5))
		for _, id := range nw.ids {
			if got := paperLogOf(nw.node(id)); !sameLog(got, want) {
				t.Fatalf("(d) S%d's log %s, want S5's %s", id, fmtLog(got), fmtLog(want))
			}
			for _, e := range nw.nodes[id].applied {
				if e.Index == fig8XIndex && e.Term == fig8XTerm {
					t.Fatalf("(d) S%d applied X, which S5 overwrote", id)
				}
			}
		}
		nw.checkApplied()
	})

	t.Run("e: a term-4 entry on a majority commits X", func(t *testing.T) {
		nw := fig8Setup(t)
		delete(nw.cut, [2]NodeID{1, 3})
		delete(nw.cut, [2]NodeID{1, 4})
		for range 2 {
			nw.node(1).Tick() // a heartbeat makes S1 resend its no-op
			nw.settle()
		}
		for _, id := range []NodeID{1, 3, 4} {
			r := nw.node(id)
			if r.log.committed < fig8XIndex+1 {
				t.Fatalf("(e) S%d committed %d; want S1's term-4 no-op at %d committed", id, r.log.committed, fig8XIndex+1)
			}
			if a := nw.nodes[id].applied; len(a) < int(fig8XIndex) || a[fig8XIndex-1].Term != fig8XTerm || string(a[fig8XIndex-1].Data) != "X" {
				t.Fatalf("(e) S%d did not apply X at %d: %s", id, fig8XIndex, fmtLog(a))
			}
		}
		// S5 restarts: its log is now less up-to-date than a majority's.
		fig8Restart(nw, 5)
		nw.heal()
		nw.node(5).Campaign()
		nw.settle()
		if nw.node(5).role == RoleLeader {
			t.Fatalf("(e) S5 was elected after X was committed")
		}
		if r := nw.node(1); r.role != RoleLeader || r.term != 4 {
			t.Fatalf("(e) S1: role %v term %d; want still leader of term 4", r.role, r.term)
		}
		for range 3 {
			nw.node(1).Tick()
			nw.settle()
		}
		want := paperLogOf(nw.node(1))
		for _, id := range nw.ids {
			if got := paperLogOf(nw.node(id)); !sameLog(got, want) {
				t.Fatalf("(e) S%d's log %s, want S1's %s", id, fmtLog(got), fmtLog(want))
			}
			if d := nw.dataOf(id); !slices.Equal(d, []string{"1", "X"}) {
				t.Fatalf("(e) S%d applied %q, want [1 X]", id, d)
			}
		}
		nw.checkApplied()
	})
}

package raft

import (
	"reflect"
	"strconv"
	"testing"
)

// TestClusterUnderFaults drives a 5-node cluster through a network that
// drops, duplicates and reorders messages and isolates nodes, checking
// Election Safety (at most one leader per term, checked by the harness on
// every Ready) and State Machine Safety, and that the cluster commits.
func TestClusterUnderFaults(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			runFaultyCluster(t, seed)
		})
	}
}

func runFaultyCluster(t *testing.T, seed uint64) {
	nw := newNetwork(t, 5, seed, nil)
	nw.dropRate, nw.dupRate, nw.reorder = 0.2, 0.1, true
	proposed := 0
	for round := 0; round < 300; round++ {
		if round%50 == 10 { // churn: isolate a random node for a while
			nw.heal()
			nw.isolate(NodeID(nw.rng.IntN(5) + 1))
		}
		if round%50 == 40 {
			nw.heal()
		}
		nw.tick(1)
		id := NodeID(nw.rng.IntN(5) + 1)
		if _, err := nw.node(id).Propose([]byte("v" + strconv.Itoa(round))); err == nil {
			proposed++
		}
		nw.settle()
	}
	// Liveness phase: no faults, so everything settles.
	nw.heal()
	nw.dropRate, nw.dupRate, nw.reorder = 0, 0, false
	nw.tick(40)
	nw.checkApplied()
	lead := nw.leader()
	if lead == None {
		t.Fatalf("seed %d: no leader after healing", seed)
	}
	committed := len(nw.dataOf(lead))
	if committed == 0 || proposed == 0 {
		t.Fatalf("seed %d: nothing committed (proposed %d)", seed, proposed)
	}
	for _, id := range nw.ids {
		if got := len(nw.dataOf(id)); got != committed {
			t.Fatalf("seed %d: node %d applied %d entries, leader %d applied %d", seed, id, got, lead, committed)
		}
	}
}

// TestDeterminism runs the same faulty scenario twice with one seed and
// requires identical message streams; a different seed must differ.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) []Message {
		nw := newNetwork(t, 5, seed, nil)
		nw.dropRate, nw.dupRate, nw.reorder = 0.1, 0.05, true
		for round := 0; round < 100; round++ {
			nw.tick(1)
			_, _ = nw.node(NodeID(round%5 + 1)).Propose([]byte(strconv.Itoa(round)))
			nw.settle()
		}
		return nw.sent
	}
	a, b := run(7), run(7)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 7: runs differ (%d vs %d messages)", len(a), len(b))
	}
	if c := run(8); reflect.DeepEqual(a, c) {
		t.Fatalf("seeds 7 and 8 produced identical streams")
	}
}

// TestPreVotePartitionedNodeDoesNotDisrupt: a node cut off from the others
// keeps failing pre-votes without raising its term, and when it rejoins the
// leader stays in place (dissertation §9.6).
func TestPreVotePartitionedNodeDoesNotDisrupt(t *testing.T) {
	nw := newNetwork(t, 5, 3, nil)
	nw.elect(1)
	term := nw.node(1).term
	nw.isolate(5)
	nw.tick(100) // many election timeouts for node 5
	if got := nw.node(5).term; got != term {
		t.Fatalf("isolated node raised its term to %d (leader term %d)", got, term)
	}
	nw.heal()
	nw.propose(1, "after")
	nw.tick(30)
	if nw.leader() != 1 || nw.node(1).term != term {
		t.Fatalf("leader disrupted: leader %d term %d, want 1 term %d", nw.leader(), nw.node(1).term, term)
	}
	if got := nw.dataOf(5); len(got) != 1 || got[0] != "after" {
		t.Fatalf("rejoined node applied %v", got)
	}
}

// TestWithoutPreVoteRejoiningNodeDisrupts is the control for the pre-vote
// test: without pre-vote (and check-quorum) the same partition deposes the
// leader, so the pre-vote test can fail.
func TestWithoutPreVoteRejoiningNodeDisrupts(t *testing.T) {
	nw := newNetwork(t, 5, 3, func(c *Config) { c.DisablePreVote, c.DisableCheckQuorum = true, true })
	nw.elect(1)
	term := nw.node(1).term
	nw.isolate(5)
	nw.tick(100)
	if nw.node(5).term <= term {
		t.Fatalf("isolated node did not raise its term")
	}
	nw.heal()
	nw.tick(30)
	if nw.node(1).term == term {
		t.Fatalf("leader was not disrupted without pre-vote")
	}
}

// TestCheckQuorumIsolatedLeaderStepsDown: a leader that cannot reach a
// majority steps down within about two election timeouts (§6.2).
func TestCheckQuorumIsolatedLeaderStepsDown(t *testing.T) {
	nw := newNetwork(t, 5, 4, nil)
	nw.elect(1)
	nw.isolate(1)
	e := nw.node(1).cfg.ElectionTicks
	nw.tick(2 * e)
	if nw.node(1).role == RoleLeader {
		t.Fatalf("isolated leader still leads after %d ticks", 2*e)
	}
	if _, err := nw.node(1).Propose([]byte("x")); err != ErrNoLeader {
		t.Fatalf("propose at deposed leader: %v, want ErrNoLeader", err)
	}
	// The majority side elects a new leader meanwhile.
	nw.tick(4 * e)
	if l := nw.leader(); l == None || l == 1 {
		t.Fatalf("majority did not elect a new leader (leader %d)", l)
	}
}

// TestCheckQuorumDisabledLeaderStays is the control: without check-quorum
// an isolated leader keeps believing it leads.
func TestCheckQuorumDisabledLeaderStays(t *testing.T) {
	nw := newNetwork(t, 5, 4, func(c *Config) { c.DisableCheckQuorum = true })
	nw.elect(1)
	nw.isolate(1)
	nw.tick(40)
	if nw.node(1).role != RoleLeader {
		t.Fatalf("leader stepped down without check-quorum")
	}
}

// TestRestartFromStorage: a node rebuilt from its storage keeps its term,
// vote, log and commit index.
func TestRestartFromStorage(t *testing.T) {
	nw := newNetwork(t, 3, 5, nil)
	nw.elect(1)
	nw.propose(1, "a")
	nw.tick(2)
	old := nw.node(2)
	st := nw.nodes[2].st
	r, err := New(Config{ID: 2, Peers: nw.ids, Storage: st, ElectionTicks: 10, HeartbeatTicks: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.term != old.term || r.vote != old.vote || r.log.lastIndex() != old.log.lastIndex() || r.log.committed != old.log.committed {
		t.Fatalf("restarted state term=%d vote=%d last=%d commit=%d, want %d %d %d %d",
			r.term, r.vote, r.log.lastIndex(), r.log.committed, old.term, old.vote, old.log.lastIndex(), old.log.committed)
	}
	rd := r.Ready() // the restarted node re-applies its committed log
	if len(rd.Committed) != int(old.log.committed) {
		t.Fatalf("restarted node offers %d committed entries, want %d", len(rd.Committed), old.log.committed)
	}
}

// TestStepBetweenReadyAndAdvance: input that arrives while a Ready is being
// handled joins the next Ready, and the first Ready's slices stay intact.
func TestStepBetweenReadyAndAdvance(t *testing.T) {
	nw := newNetwork(t, 3, 6, nil)
	nw.elect(1)
	r := nw.node(1)
	if _, err := r.Propose([]byte("first")); err != nil {
		t.Fatal(err)
	}
	rd := r.Ready()
	if _, err := r.Propose([]byte("second")); err != nil {
		t.Fatal(err)
	}
	if r.HasReady() {
		t.Fatal("HasReady while a Ready is outstanding")
	}
	if len(rd.Entries) != 1 || string(rd.Entries[0].Data) != "first" {
		t.Fatalf("first Ready entries changed: %+v", rd.Entries)
	}
	nw.nodes[1].st.Append(rd.Entries)
	nw.queue = append(nw.queue, rd.Messages...)
	r.Advance(rd)
	rd2 := r.Ready()
	if len(rd2.Entries) != 1 || string(rd2.Entries[0].Data) != "second" {
		t.Fatalf("second Ready entries: %+v", rd2.Entries)
	}
	nw.nodes[1].st.Append(rd2.Entries)
	nw.queue = append(nw.queue, rd2.Messages...)
	r.Advance(rd2)
	nw.settle()
	if got := nw.dataOf(2); len(got) != 2 {
		t.Fatalf("follower applied %v", got)
	}
}

// TestProbeConfirmedResumesReplication: when a probe's answer confirms the
// follower's known match, the leader streams at once instead of waiting for
// the next heartbeat to unpause the probe.
func TestProbeConfirmedResumesReplication(t *testing.T) {
	nw, r := newLeader(t, 3, nil)
	pr := r.progressOf(2)
	pr.becomeProbe()
	r.maybeSendAppend(pr, true) // an empty probe at match
	nw.queue = nw.queue[:0]
	r.msgs = r.msgs[:0]
	_ = r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: r.term, Index: pr.match})
	if pr.state != StateReplicate {
		t.Fatalf("follower state %v after a confirming probe, want replicate", pr.state)
	}
	if _, err := r.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	sent := false
	for _, m := range r.msgs {
		sent = sent || (m.To == 2 && m.Type == MsgApp && len(m.Entries) == 1)
	}
	if !sent {
		t.Fatal("proposal not sent to the follower at once")
	}
}

// TestReportUnreachableResendsAtOnce: a MsgApp dropped by a full local
// queue leaves the in-flight window full, so nothing more would be sent to
// that follower until a heartbeat; reported, it is resent with the next
// send.
func TestReportUnreachableResendsAtOnce(t *testing.T) {
	nw, r := newLeader(t, 3, func(c *Config) { c.MaxInflightMsgs = 1 })
	pr := r.progressOf(2)
	if pr.state != StateReplicate {
		t.Fatalf("follower 2 in state %v, want replicate", pr.state)
	}
	nw.cut[[2]NodeID{1, 2}] = true
	nw.propose(1, "lost") // its MsgApp to 2 is lost
	nw.heal()
	r.ReportUnreachable(2)
	if pr.state != StateProbe || pr.next != pr.match+1 {
		t.Fatalf("after ReportUnreachable: state %v next %d match %d, want probe from match+1", pr.state, pr.next, pr.match)
	}
	nw.propose(1, "next") // no tick: the probe goes out with this proposal's broadcast
	if got := nw.dataOf(2); len(got) != 2 {
		t.Fatalf("follower applied %v without a heartbeat; want both entries", got)
	}
}

package raft

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// newMemberNetwork starts n nodes: 1..voters bootstrap as the voters, the
// others start empty and wait to be added (Peers empty).
func newMemberNetwork(t *testing.T, n, voters int, seed uint64) *network {
	return newNetwork(t, n, seed, func(c *Config) {
		c.Peers = ids(voters)
		if int(c.ID) > voters {
			c.Peers = nil
		}
	})
}

// change proposes changes at the leader and settles; it fails the test
// unless every node in want ends up with configuration want.
func (nw *network) change(want ConfState, changes ...ConfChange) {
	nw.t.Helper()
	lead := nw.leader()
	if _, err := nw.node(lead).ProposeConfChange(changes...); err != nil {
		nw.t.Fatalf("ProposeConfChange(%v) at %d: %v", changes, lead, err)
	}
	for i := 0; i < 200; i++ {
		nw.tick(1)
		if l := nw.leader(); l != None && nw.node(l).ConfState().Equal(want) && nw.allHave(want) {
			return
		}
	}
	nw.t.Fatalf("configuration %+v not reached; leader %d has %+v", want, nw.leader(), nw.node(nw.leader()).ConfState())
}

// allHave reports whether every member of want has applied want.
func (nw *network) allHave(want ConfState) bool {
	for _, id := range want.Members() {
		if !nw.node(id).ConfState().Equal(want) {
			return false
		}
	}
	return true
}

func conf(voters ...NodeID) ConfState { return ConfState{Voters: voters} }

func TestConfStateEncoding(t *testing.T) {
	for _, cs := range []ConfState{
		conf(1),
		conf(1, 2, 3),
		{Voters: []NodeID{3, 4, 5}, VotersOutgoing: []NodeID{1, 2, 3}, Learners: []NodeID{6}},
		{Voters: []NodeID{1, 1 << 40}, Learners: []NodeID{7, 9}},
	} {
		got, err := DecodeConfState(AppendConfState(nil, cs))
		if err != nil || !got.Equal(cs) {
			t.Fatalf("round trip of %+v: %+v, %v", cs, got, err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"no voters":      {0, 0, 0},
		"unsorted":       {2, 2, 1, 0, 0},
		"duplicate":      {2, 1, 1, 0, 0},
		"zero id":        {1, 0, 0, 0},
		"learner voter":  {1, 1, 0, 1, 1},
		"trailing":       {1, 1, 0, 0, 9},
		"truncated":      {3, 1, 2},
		"too many":       {200, 1},
		"overlong count": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, err := DecodeConfState(b); !errors.Is(err, ErrInvalidConf) {
			t.Errorf("%s: DecodeConfState = %v, want ErrInvalidConf", name, err)
		}
	}
}

func TestNextConf(t *testing.T) {
	base := ConfState{Voters: []NodeID{1, 2, 3}, Learners: []NodeID{4}}
	cases := []struct {
		name    string
		changes []ConfChange
		want    ConfState
		err     error
	}{
		{"add voter", []ConfChange{{ConfAddVoter, 5}}, ConfState{Voters: []NodeID{1, 2, 3, 5}, Learners: []NodeID{4}}, nil},
		{"promote", []ConfChange{{ConfAddVoter, 4}}, ConfState{Voters: []NodeID{1, 2, 3, 4}}, nil},
		{"add learner", []ConfChange{{ConfAddLearner, 6}}, ConfState{Voters: []NodeID{1, 2, 3}, Learners: []NodeID{4, 6}}, nil},
		{"remove", []ConfChange{{ConfRemove, 2}}, ConfState{Voters: []NodeID{1, 3}, Learners: []NodeID{4}}, nil},
		{"joint", []ConfChange{{ConfAddVoter, 5}, {ConfRemove, 1}},
			ConfState{Voters: []NodeID{2, 3, 5}, VotersOutgoing: []NodeID{1, 2, 3}, Learners: []NodeID{4}}, nil},
		{"demote alone", []ConfChange{{ConfAddLearner, 1}}, ConfState{}, ErrInvalidConfChange},
		{"demote by remove then add learner", []ConfChange{{ConfRemove, 1}, {ConfAddLearner, 1}},
			ConfState{Voters: []NodeID{2, 3}, Learners: []NodeID{1, 4}}, nil},
		{"no-op add", []ConfChange{{ConfAddVoter, 1}}, ConfState{}, ErrInvalidConfChange},
		{"remove absent", []ConfChange{{ConfRemove, 9}}, ConfState{}, ErrInvalidConfChange},
		{"remove all", []ConfChange{{ConfRemove, 1}, {ConfRemove, 2}, {ConfRemove, 3}}, ConfState{}, ErrInvalidConfChange},
		{"none", nil, ConfState{}, ErrInvalidConfChange},
		{"zero id", []ConfChange{{ConfAddVoter, 0}}, ConfState{}, ErrInvalidConfChange},
		{"bad type", []ConfChange{{9, 5}}, ConfState{}, ErrInvalidConfChange},
	}
	for _, c := range cases {
		got, err := nextConf(base, c.changes)
		if !errors.Is(err, c.err) || (err == nil && !got.Equal(c.want)) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// Two of five voters are replaced one server at a time (add as learner,
// promote, remove) while clients keep proposing: every acknowledged
// command survives, and the old members' replacements end up applying it.
func TestReplaceTwoOfFiveUnderLoad(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			nw := newMemberNetwork(t, 7, 5, seed)
			nw.elect(1)
			var acked []string
			load := func(k int) {
				for i := range k {
					cmd := fmt.Sprintf("cmd-%d-%d", len(acked), i)
					if _, err := nw.node(nw.leader()).Propose([]byte(cmd)); err == nil {
						nw.settle()
						acked = append(acked, cmd)
					}
				}
			}
			load(10)
			nw.change(ConfState{Voters: ids(5), Learners: []NodeID{6}}, ConfChange{ConfAddLearner, 6})
			load(10)
			nw.change(ConfState{Voters: ids(6)}, ConfChange{ConfAddVoter, 6})
			load(10)
			nw.change(conf(2, 3, 4, 5, 6), ConfChange{ConfRemove, 1})
			load(10)
			nw.change(ConfState{Voters: []NodeID{2, 3, 4, 5, 6}, Learners: []NodeID{7}}, ConfChange{ConfAddLearner, 7})
			load(10)
			nw.change(conf(2, 3, 4, 5, 6, 7), ConfChange{ConfAddVoter, 7})
			load(10)
			nw.change(conf(3, 4, 5, 6, 7), ConfChange{ConfRemove, 2})
			load(10)
			nw.tick(20)
			nw.checkApplied()
			for _, id := range []NodeID{3, 4, 5, 6, 7} {
				got := nw.dataOf(id)
				for _, cmd := range acked {
					if !slices.Contains(got, cmd) {
						t.Fatalf("seed %d: node %d lost acknowledged command %q", seed, id, cmd)
					}
				}
			}
			if l := nw.leader(); l < 3 {
				t.Fatalf("seed %d: removed node %d leads", seed, l)
			}
		})
	}
}

// A joint change from {1,2,3} to {3,4,5}: the configuration passes
// through the joint one and is left automatically; the cluster works on.
func TestJointChange(t *testing.T) {
	nw := newMemberNetwork(t, 5, 3, 7)
	nw.elect(1)
	nw.propose(1, "before")
	// 4 and 5 are added first as learners so they hold the log.
	nw.change(ConfState{Voters: ids(3), Learners: []NodeID{4, 5}}, ConfChange{ConfAddLearner, 4}, ConfChange{ConfAddLearner, 5})
	sawJoint := false
	lead := nw.leader()
	if _, err := nw.node(lead).ProposeConfChange(ConfChange{ConfAddVoter, 4}, ConfChange{ConfAddVoter, 5},
		ConfChange{ConfRemove, 1}, ConfChange{ConfRemove, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := nw.node(lead).ProposeConfChange(ConfChange{ConfAddLearner, 6}); !errors.Is(err, ErrConfChangePending) {
		t.Fatalf("a second change while one is pending: %v, want ErrConfChangePending", err)
	}
	final := conf(3, 4, 5)
	for i := 0; i < 200 && !(nw.leader() != None && nw.allHave(final)); i++ {
		nw.settle()
		for _, id := range nw.ids {
			sawJoint = sawJoint || nw.node(id).ConfState().Joint()
		}
		nw.tick(1)
	}
	if !sawJoint || !nw.allHave(final) {
		t.Fatalf("joint seen %v; configurations: 3 %+v, 4 %+v", sawJoint, nw.node(3).ConfState(), nw.node(4).ConfState())
	}
	l := nw.leader()
	if l != 3 && l != 4 && l != 5 {
		t.Fatalf("leader %d is not in the new configuration", l)
	}
	nw.propose(l, "after")
	nw.checkApplied()
	for _, id := range []NodeID{3, 4, 5} {
		if d := nw.dataOf(id); d[len(d)-1] != "after" {
			t.Fatalf("node %d did not apply the command after the change", id)
		}
	}
}

// Leadership transfer to a named node completes within one election
// timeout in a healthy cluster.
func TestLeadershipTransfer(t *testing.T) {
	nw := newNetwork(t, 5, 3, nil)
	nw.elect(1)
	for i := range 20 {
		nw.propose(1, fmt.Sprint("x", i))
	}
	term := nw.node(1).Term()
	if err := nw.node(1).TransferLeadership(4); err != nil {
		t.Fatal(err)
	}
	if _, err := nw.node(1).Propose([]byte("during")); !errors.Is(err, ErrBusy) {
		t.Fatalf("proposal during a transfer: %v, want ErrBusy", err)
	}
	ticks := 0
	for ; ticks <= nw.node(1).cfg.ElectionTicks && nw.leader() != 4; ticks++ {
		nw.settle()
		if nw.leader() == 4 {
			break
		}
		nw.tick(1)
	}
	if nw.leader() != 4 || nw.node(4).Term() != term+1 {
		t.Fatalf("after %d ticks the leader is %d (term %d), want 4 in term %d", ticks, nw.leader(), nw.node(4).Term(), term+1)
	}
	t.Logf("leadership moved to node 4 after %d ticks (election timeout %d)", ticks, nw.node(1).cfg.ElectionTicks)
	if err := nw.node(4).TransferLeadership(9); !errors.Is(err, ErrNotVoter) {
		t.Fatalf("transfer to a non-member: %v, want ErrNotVoter", err)
	}
	// A transfer to a node that cannot answer is abandoned after an
	// election timeout, and the leader takes proposals again.
	nw.isolate(2)
	if err := nw.node(4).TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
	nw.tick(nw.node(4).cfg.ElectionTicks + 1)
	if _, err := nw.node(4).Propose([]byte("resumed")); err != nil {
		t.Fatalf("proposal after an abandoned transfer: %v", err)
	}
}

// A removed node that keeps running does not raise the cluster's term,
// whether or not it can still reach the others.
func TestRemovedNodeDoesNotDisrupt(t *testing.T) {
	nw := newMemberNetwork(t, 5, 5, 4)
	nw.elect(1)
	nw.change(conf(1, 2, 3, 4), ConfChange{ConfRemove, 5})
	term := nw.node(1).Term()
	nw.tick(500) // node 5 times out again and again
	if nw.leader() != 1 || nw.node(1).Term() != term {
		t.Fatalf("leader %d term %d, want 1 in term %d", nw.leader(), nw.node(1).Term(), term)
	}
	if nw.node(5).Term() != term {
		t.Fatalf("removed node raised its own term to %d (pre-vote should hold it at %d)", nw.node(5).Term(), term)
	}
	// Control: a removed node that never learned of its removal (cut off
	// before it committed) still cannot disrupt: the members refuse its
	// vote requests.
	nw2 := newMemberNetwork(t, 5, 5, 5)
	nw2.elect(1)
	nw2.isolate(5)
	if _, err := nw2.node(1).ProposeConfChange(ConfChange{ConfRemove, 5}); err != nil {
		t.Fatal(err)
	}
	nw2.tick(50)
	nw2.heal()
	term = nw2.node(1).Term()
	nw2.tick(500)
	if nw2.leader() != 1 || nw2.node(1).Term() != term {
		t.Fatalf("stale removed node disrupted: leader %d term %d (was 1, %d)", nw2.leader(), nw2.node(1).Term(), term)
	}
}

// A leader that removes itself hands leadership to a remaining voter once
// the change commits (handOff), and steps down.
func TestRemovedLeaderStepsDown(t *testing.T) {
	nw := newMemberNetwork(t, 3, 3, 6)
	nw.elect(1)
	if _, err := nw.node(1).ProposeConfChange(ConfChange{ConfRemove, 1}); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	// It hands off (MsgTimeoutNow) without waiting for an election timeout.
	if nw.node(1).role == RoleLeader {
		t.Fatal("the removed leader still leads")
	}
	if l := nw.leader(); l != 2 && l != 3 {
		t.Fatalf("leader %d right after the removal, want 2 or 3", l)
	}
	nw.tick(100)
	if l := nw.leader(); l != 2 && l != 3 {
		t.Fatalf("leader %d, want 2 or 3", l)
	}
}

// Learners receive the log but never campaign, and do not count toward
// commitment.
func TestLearner(t *testing.T) {
	nw := newMemberNetwork(t, 4, 3, 8)
	nw.elect(1)
	nw.change(ConfState{Voters: ids(3), Learners: []NodeID{4}}, ConfChange{ConfAddLearner, 4})
	nw.propose(1, "a")
	if d := nw.dataOf(4); d[len(d)-1] != "a" {
		t.Fatal("the learner did not apply the log")
	}
	nw.isolate(2)
	nw.isolate(3) // the leader and the learner alone: no majority of voters
	if _, err := nw.node(1).Propose([]byte("b")); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if nw.node(1).log.committed >= nw.node(1).log.lastIndex() {
		t.Fatal("an entry committed with a learner's acknowledgement")
	}
	nw.heal()
	nw.isolate(1)
	nw.tick(200)
	if nw.node(4).role != RoleFollower || nw.node(4).Term() > nw.node(2).Term() {
		t.Fatalf("the learner campaigned: role %v term %d", nw.node(4).role, nw.node(4).Term())
	}
}

// The configuration survives a restart: from the log, and from a snapshot
// once the log holding the configuration entries is compacted.
func TestConfSurvivesRestart(t *testing.T) {
	nw := newMemberNetwork(t, 4, 3, 9)
	nw.snapEvery, nw.snapMargin = 10, 2
	nw.elect(1)
	want := ConfState{Voters: ids(3), Learners: []NodeID{4}}
	nw.change(want, ConfChange{ConfAddLearner, 4})
	restart := func() *Raft {
		n := nw.nodes[2]
		snap, _ := n.st.SnapshotData()
		r, err := New(Config{ID: 2, Peers: ids(3), Storage: n.st, Applied: snap.Index, Seed: 1, ElectionTicks: 10, HeartbeatTicks: 1})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got := restart().ConfState(); !got.Equal(want) {
		t.Fatalf("after restart (log): %+v, want %+v", got, want)
	}
	for i := range 40 {
		nw.propose(1, fmt.Sprint("c", i))
	}
	if fi, _ := nw.nodes[2].st.FirstIndex(); fi < 20 {
		t.Fatalf("log not compacted (first index %d)", fi)
	}
	if got := restart().ConfState(); !got.Equal(want) {
		t.Fatalf("after restart (snapshot): %+v, want %+v", got, want)
	}
}

// A node that joins after the leader compacted its log learns the
// configuration from the snapshot it receives.
func TestJoinBySnapshot(t *testing.T) {
	nw := newMemberNetwork(t, 4, 3, 10)
	nw.snapEvery, nw.snapMargin = 10, 2
	nw.elect(1)
	for i := range 50 {
		nw.propose(1, fmt.Sprint("c", i))
	}
	nw.change(ConfState{Voters: ids(3), Learners: []NodeID{4}}, ConfChange{ConfAddLearner, 4})
	nw.change(ConfState{Voters: ids(4)}, ConfChange{ConfAddVoter, 4})
	if nw.node(4).Status().Stats.SnapshotsInstalled == 0 {
		t.Fatal("node 4 joined without a snapshot; the test needs one")
	}
	nw.checkApplied()
	if len(nw.dataOf(4)) != 50 {
		t.Fatalf("node 4 holds %d commands, want 50", len(nw.dataOf(4)))
	}
}

// In a joint configuration an entry commits only with a majority of both
// the outgoing and the incoming voters.
func TestJointQuorum(t *testing.T) {
	stuck := func(nw *network, cmd, why string) {
		t.Helper()
		if _, err := nw.node(1).Propose([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		nw.settle()
		if slices.Contains(nw.dataOf(1), cmd) || !nw.node(1).ConfState().Joint() {
			t.Fatalf("committed with %s alone (configuration %+v)", why, nw.node(1).ConfState())
		}
		nw.heal()
		nw.tick(5)
		if !slices.Contains(nw.dataOf(1), cmd) || !nw.allHave(conf(1, 4, 5)) {
			t.Fatalf("after healing: applied %v, configuration %+v", nw.dataOf(1), nw.node(1).ConfState())
		}
	}
	for _, side := range []struct {
		cut []NodeID
		why string
	}{{[]NodeID{4, 5}, "the outgoing majority {1,2,3}"}, {[]NodeID{2, 3}, "the incoming majority {1,4,5}"}} {
		nw := newMemberNetwork(t, 5, 3, 11)
		nw.elect(1)
		nw.change(ConfState{Voters: ids(3), Learners: []NodeID{4, 5}}, ConfChange{ConfAddLearner, 4}, ConfChange{ConfAddLearner, 5})
		// {1,2,3} -> {1,4,5} through the joint configuration. Deliver one
		// message at a time until the leader enters it, then cut one side
		// off before the entry that leaves it reaches anyone.
		if _, err := nw.node(1).ProposeConfChange(ConfChange{ConfRemove, 2}, ConfChange{ConfRemove, 3},
			ConfChange{ConfAddVoter, 4}, ConfChange{ConfAddVoter, 5}); err != nil {
			t.Fatal(err)
		}
		for steps := 0; !nw.node(1).ConfState().Joint(); steps++ {
			if steps > 1000 {
				t.Fatal("the joint configuration never committed")
			}
			for _, id := range nw.ids {
				nw.process(id)
			}
			if len(nw.queue) > 0 {
				nw.deliverOne()
			}
		}
		for _, id := range side.cut {
			nw.isolate(id)
		}
		stuck(nw, "x", side.why)
	}
}

// A configuration whose entry would not fit one message is refused.
func TestConfChangeTooLarge(t *testing.T) {
	nw := newNetwork(t, 3, 12, func(c *Config) { c.MaxMsgBytes = 40 })
	nw.elect(1)
	var changes []ConfChange
	for id := NodeID(1 << 60); len(changes) < 3; id++ {
		changes = append(changes, ConfChange{ConfAddLearner, id})
	}
	if _, err := nw.node(1).ProposeConfChange(changes...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized configuration: %v, want ErrTooLarge", err)
	}
	if _, err := nw.node(1).ProposeConfChange(ConfChange{ConfAddLearner, 4}); err != nil {
		t.Fatalf("a small change after the refusal: %v", err)
	}
}

// A node that has not learned the configuration that made it a voter still
// answers vote requests, so a cluster whose quorum needs it elects a leader
// (found by the simulator's membership churn: the joiner used to refuse
// requests from nodes outside its empty configuration, forever).
func TestJoinerVotesBeforeLearningConf(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		nw := newMemberNetwork(t, 2, 1, seed)
		nw.elect(1)
		nw.isolate(2)
		if _, err := nw.node(1).ProposeConfChange(ConfChange{ConfAddVoter, 2}); err != nil {
			t.Fatal(err)
		}
		nw.tick(30) // commits with 1 alone; then check-quorum deposes 1
		nw.heal()
		for i := 0; i < 300 && nw.leader() == None; i++ {
			nw.tick(1)
		}
		if nw.leader() == None {
			t.Fatalf("seed %d: no leader after healing; node 2 configuration %+v", seed, nw.node(2).ConfState())
		}
	}
}

// A learner keeps counting election time, so it leaves the leader lease
// when no leader is heard and votes once it turns out to be a voter (found
// by the simulator: it used to reset its clock at each timeout and ignore
// vote requests as if it heard a leader).
func TestPromotedLearnerLeavesLease(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		nw := newMemberNetwork(t, 3, 2, seed)
		nw.elect(1)
		nw.change(ConfState{Voters: ids(2), Learners: []NodeID{3}}, ConfChange{ConfAddLearner, 3})
		nw.isolate(3)
		if _, err := nw.node(1).ProposeConfChange(ConfChange{ConfAddVoter, 3}); err != nil {
			t.Fatal(err)
		}
		nw.settle() // the promotion commits on 1 and 2 only
		nw.heal()
		nw.isolate(1)
		for i := 0; i < 300 && (nw.leader() == None || nw.leader() == 1); i++ {
			nw.tick(1)
		}
		if l := nw.leader(); l != 2 && l != 3 {
			t.Fatalf("seed %d: {2,3} elected no leader (leader %d); node 3 configuration %+v", seed, l, nw.node(3).ConfState())
		}
	}
}

// A refused vote carries the responder's commit index and the term there;
// the candidate commits up to it only if its log holds that very entry
// (log matching), and a refusal states it whatever the refusal's term.
func TestLearnCommitFromRefusedVote(t *testing.T) {
	for _, c := range []struct {
		name    string
		commit  Index
		logTerm Term
		term    Term
		want    Index
	}{
		{"matching entry", 3, 2, 3, 3},
		{"matching entry, stale refusal", 3, 2, 1, 3},
		{"other term at that index", 3, 3, 3, 1},
		{"beyond our log", 5, 2, 3, 1},
		{"below our commit", 1, 1, 3, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPaperNode(t, 1, 3, paperEnts(1, 1, 2), HardState{Term: 3, Commit: 1})
			p.step(Message{Type: MsgPreVoteResp, From: 2, Term: c.term, Reject: true, Commit: c.commit, LogTerm: c.logTerm})
			if got := p.r.log.committed; got != c.want {
				t.Fatalf("commit %d after a refusal stating commit %d of term %d; want %d", got, c.commit, c.logTerm, c.want)
			}
		})
	}
	// And the refusal says it: a voter with a longer log refuses with its
	// commit index.
	p := newPaperNode(t, 1, 3, paperEnts(1, 1, 2), HardState{Term: 3, Commit: 2})
	p.step(Message{Type: MsgVote, From: 2, Term: 4, Index: 1, LogTerm: 1})
	out := p.flush()
	if len(out) != 1 || out[0].Type != MsgVoteResp || !out[0].Reject || out[0].Commit != 2 || out[0].LogTerm != 1 {
		t.Fatalf("refusal %+v; want a MsgVoteResp refusal carrying commit 2 of term 1", out)
	}
}

// A removed leader whose hand-off target dies (its MsgTimeoutNow lost, it
// never answers again) hands off to another voter at the retry: picking
// the same target again would keep it leading, refusing every proposal
// with ErrBusy, for as long as the rest keep check-quorum satisfied.
func TestHandOffRetriesAnotherVoter(t *testing.T) {
	nw := newMemberNetwork(t, 5, 5, 9)
	nw.elect(1)
	nw.propose(1, "a")
	if _, err := nw.node(1).ProposeConfChange(ConfChange{ConfRemove, 1}); err != nil {
		t.Fatal(err)
	}
	// Settle, but lose the first MsgTimeoutNow and cut its target off.
	target := None
	for steps := 0; steps < 100000; steps++ {
		moved := false
		for _, id := range nw.ids {
			for nw.process(id) {
				moved = true
			}
		}
		if i := slices.IndexFunc(nw.queue, func(m Message) bool { return m.Type == MsgTimeoutNow }); i >= 0 && target == None {
			target = nw.queue[i].To
			nw.queue = slices.Delete(nw.queue, i, i+1)
			nw.isolate(target)
		}
		if len(nw.queue) > 0 {
			nw.deliverOne()
			moved = true
		}
		if !moved {
			break
		}
	}
	if target == None || nw.node(1).role != RoleLeader || nw.node(1).ConfState().IsVoter(1) {
		t.Fatalf("setup: target %d, node 1 %v in %v; want a hand-off under way", target, nw.node(1).role, nw.node(1).ConfState())
	}
	nw.tick(3 * nw.node(1).cfg.ElectionTicks)
	l := nw.leader()
	if l == None || l == 1 || l == target {
		t.Fatalf("leader %d after the hand-off to %d failed; want another voter", l, target)
	}
	// The new leader can now remove the dead node.
	if _, err := nw.node(l).ProposeConfChange(ConfChange{ConfRemove, target}); err != nil {
		t.Fatalf("removing the dead target at the new leader %d: %v", l, err)
	}
}

// A candidate whose commit index advances, by a refused vote, past the
// configuration that removes it stops campaigning: it must not win with
// the votes of the new configuration (it would lead as a non-member).
func TestCandidateRemovedByLearnedCommitStops(t *testing.T) {
	cs := ConfState{Voters: []NodeID{2, 3, 4, 5}}
	ents := []Entry{{Index: 1, Term: 1, Type: EntryNoop},
		{Index: 2, Term: 1, Type: EntryConfChange, Data: AppendConfState(nil, cs)}}
	p := newPaperNode(t, 1, 5, ents, HardState{Term: 1, Commit: 1}, func(c *Config) { c.DisablePreVote = true })
	p.r.Campaign()
	p.flush()
	if p.r.role != RoleCandidate {
		t.Fatalf("setup: role %v", p.r.role)
	}
	p.step(Message{Type: MsgVoteResp, From: 2, Term: p.r.term, Reject: true, Commit: 2, LogTerm: 1})
	for _, id := range []NodeID{3, 4, 5} {
		p.step(Message{Type: MsgVoteResp, From: id, Term: p.r.term})
	}
	if p.r.role != RoleFollower || !p.r.ConfState().Equal(cs) {
		t.Fatalf("role %v in %v; want a follower of %v", p.r.role, p.r.ConfState(), cs)
	}
}

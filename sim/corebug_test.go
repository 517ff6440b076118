package sim

import (
	"errors"
	"testing"

	"github.com/embraft/embraft/raft"
)

// Minimal reproductions, on bare cores (no simulator), of the core liveness
// bugs that membership churn found; each failed before its fix:
//
//	go test -run TestCore -v ./sim/

type bareNode struct {
	r  *raft.Raft
	st *raft.MemoryStorage
}

func newBare(t *testing.T, id raft.NodeID, peers []raft.NodeID, seed uint64) *bareNode {
	t.Helper()
	st := raft.NewMemoryStorage()
	r, err := raft.New(raft.Config{ID: id, Peers: peers, Storage: st, ElectionTicks: 10, HeartbeatTicks: 2, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return &bareNode{r: r, st: st}
}

// ready handles every pending Ready (persist, then hand out the messages).
func (n *bareNode) ready(t *testing.T) []raft.Message {
	t.Helper()
	var out []raft.Message
	for n.r.HasReady() {
		rd := n.r.Ready()
		if err := n.st.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		if !rd.HardState.IsEmpty() {
			n.st.SetHardState(rd.HardState)
		}
		out = append(out, rd.Messages...)
		n.r.Advance(rd)
	}
	return out
}

// bareNet delivers messages among nodes; drop decides which are lost.
type bareNet struct {
	t     *testing.T
	nodes map[raft.NodeID]*bareNode
	q     []raft.Message
	// refused counts Step errors by message type.
	refused map[raft.MessageType]int
}

func (b *bareNet) flush(drop func(m raft.Message) bool) {
	for ids := 0; ids < 1000 && len(b.q) > 0; ids++ {
		q := b.q
		b.q = nil
		for _, m := range q {
			to, ok := b.nodes[m.To]
			if !ok || drop(m) {
				continue
			}
			if err := to.r.Step(m); err != nil {
				if !errors.Is(err, raft.ErrUnknownPeer) {
					b.t.Fatalf("node %d refused %v from %d: %v", m.To, m.Type, m.From, err)
				}
				b.refused[m.Type]++
			}
			b.q = append(b.q, to.ready(b.t)...)
		}
	}
}

func (b *bareNet) tick(ids []raft.NodeID, drop func(m raft.Message) bool) {
	for _, id := range ids {
		n := b.nodes[id]
		n.r.Tick()
		b.q = append(b.q, n.ready(b.t)...)
	}
	b.flush(drop)
}

func leaderOf(b *bareNet, ids []raft.NodeID) raft.NodeID {
	for _, id := range ids {
		if b.nodes[id].r.SoftState().Role == raft.RoleLeader {
			return id
		}
	}
	return raft.None
}

// TestCoreJoinerAnswersVotesBeforeLearningConf: node 3 is the only voter;
// node 2 is a fresh node (no Peers: it joins). 3 adds 2 as a voter: with 3
// the only voter, the change commits at once, and from then on every
// quorum needs 2. 2 misses the leader's first messages (loss, a partition,
// a crash of 3) long enough for 3 to step down (check-quorum). A leader
// must then be elected once the network is whole: 2, knowing no
// configuration, must answer 3's MsgPreVote and MsgVote although 3 is not
// a member of its (empty) configuration. Found by the simulator's churn:
// the core refused every request but a leader's traffic from non-members
// (raft.ErrUnknownPeer, checkMessage), which deadlocked the cluster; the
// same happened with a learner promoted, or voters added through a joint
// configuration, before they heard from a leader.
func TestCoreJoinerAnswersVotesBeforeLearningConf(t *testing.T) {
	b := &bareNet{t: t, nodes: map[raft.NodeID]*bareNode{
		3: newBare(t, 3, []raft.NodeID{3}, 1),
		2: newBare(t, 2, nil, 2),
	}, refused: map[raft.MessageType]int{}}
	all := []raft.NodeID{2, 3}
	none := func(raft.Message) bool { return false }
	for i := 0; i < 100 && leaderOf(b, all) != 3; i++ {
		b.tick(all, none)
	}
	if leaderOf(b, all) != 3 {
		t.Fatal("3 did not elect itself")
	}
	if _, err := b.nodes[3].r.ProposeConfChange(raft.ConfChange{Type: raft.ConfAddVoter, Node: 2}); err != nil {
		t.Fatal(err)
	}
	b.q = append(b.q, b.nodes[3].ready(t)...)
	// 2 is cut off until 3 steps down (check-quorum: it cannot hear from
	// a majority of {2, 3}).
	to2 := func(m raft.Message) bool { return m.To == 2 }
	for i := 0; i < 100 && leaderOf(b, all) == 3; i++ {
		b.tick(all, to2)
	}
	if cs := b.nodes[3].r.ConfState(); !cs.IsVoter(2) || leaderOf(b, all) != raft.None {
		t.Fatalf("setup: 3 in %v, leader %d", cs, leaderOf(b, all))
	}
	// The network is whole again, for 2000 ticks.
	for i := 0; i < 2000 && leaderOf(b, all) == raft.None; i++ {
		b.tick(all, none)
	}
	if l := leaderOf(b, all); l == raft.None {
		t.Errorf("no leader after 2000 ticks of a whole network: node 2 (term %d, configuration %v) refused %d MsgPreVote and %d MsgVote from node 3 (configuration %v)",
			b.nodes[2].r.Term(), b.nodes[2].r.ConfState(), b.refused[raft.MsgPreVote], b.refused[raft.MsgVote], b.nodes[3].r.ConfState())
	}
}

// TestCorePromotedLearnerLeavesLeaderLease: learner 3 is promoted; the
// promotion commits on 1 and 2 only (3 does not hear of it), and then
// leader 1 is gone for good. {2, 3} must elect a leader: 3, a voter of a
// configuration it has not learned, must leave the leader lease when no
// leader is heard, and answer 2. Found by the simulator's churn: a node
// that cannot campaign (a learner, or a node outside its own
// configuration) reset electionElapsed to 0 at each election timeout
// (tickElection) but kept its leader (lead), so inLease() (lead != None &&
// electionElapsed < ElectionTicks) stayed true for ElectionTicks ticks out
// of every randomizedElectionTimeout, for ever, and always when that
// timeout drew ElectionTicks: it ignored MsgPreVote and MsgVote
// (onHigherTerm) long after its leader was gone.
func TestCorePromotedLearnerLeavesLeaderLease(t *testing.T) {
	stuck := 0
	const seeds = 20
	for seed := uint64(1); seed <= seeds; seed++ {
		b := &bareNet{t: t, nodes: map[raft.NodeID]*bareNode{
			1: newBare(t, 1, []raft.NodeID{1, 2}, 100*seed+1),
			2: newBare(t, 2, []raft.NodeID{1, 2}, 100*seed+2),
			3: newBare(t, 3, nil, 100*seed+3),
		}, refused: map[raft.MessageType]int{}}
		all := []raft.NodeID{1, 2, 3}
		none := func(raft.Message) bool { return false }
		// 1 leads {1, 2} (ask it to campaign) and adds learner 3, which
		// catches up and follows 1.
		b.nodes[1].r.Campaign()
		b.q = append(b.q, b.nodes[1].ready(t)...)
		b.flush(none)
		if leaderOf(b, all) != 1 {
			t.Fatal("setup: 1 did not win")
		}
		if _, err := b.nodes[1].r.ProposeConfChange(raft.ConfChange{Type: raft.ConfAddLearner, Node: 3}); err != nil {
			t.Fatal(err)
		}
		b.q = append(b.q, b.nodes[1].ready(t)...)
		for range 20 {
			b.tick(all, none)
		}
		if b.nodes[3].r.SoftState().Lead != 1 {
			t.Fatalf("setup: learner 3 follows %d", b.nodes[3].r.SoftState().Lead)
		}
		// 1 promotes 3; the change commits on {1, 2}; 3 does not hear of
		// it, and then 1 is gone for good.
		if _, err := b.nodes[1].r.ProposeConfChange(raft.ConfChange{Type: raft.ConfAddVoter, Node: 3}); err != nil {
			t.Fatal(err)
		}
		b.q = append(b.q, b.nodes[1].ready(t)...)
		to3 := func(m raft.Message) bool { return m.To == 3 }
		for range 3 {
			b.tick([]raft.NodeID{1, 2}, to3)
		}
		if !b.nodes[1].r.ConfState().IsVoter(3) || !b.nodes[2].r.ConfState().IsVoter(3) {
			t.Fatalf("setup: promotion not committed on 1 and 2: %v %v", b.nodes[1].r.ConfState(), b.nodes[2].r.ConfState())
		}
		delete(b.nodes, 1)
		rest := []raft.NodeID{2, 3}
		from1 := func(m raft.Message) bool { return m.From == 1 || m.To == 1 }
		for i := 0; i < 2000 && leaderOf(b, rest) == raft.None; i++ {
			b.tick(rest, from1)
		}
		if leaderOf(b, rest) == raft.None {
			stuck++
			t.Logf("seed %d: no leader among {2, 3} after 2000 ticks; 3 (a voter of %v, but in its own view %v, lead %d) never answered 2",
				seed, b.nodes[2].r.ConfState(), b.nodes[3].r.ConfState(), b.nodes[3].r.SoftState().Lead)
		}
	}
	if stuck > 0 {
		t.Errorf("%d of %d seeds: the promoted learner, still in its stale leader lease, never lets {2, 3} elect a leader", stuck, seeds)
	}
}

// TestCoreRemovedLeaderHandsOff: leader 1 of {1, 2} removes itself
// (configuration {2}, entry i) and appends a client entry at i+1 before
// the removal commits; the MsgApp that carries i+1 to 2 is lost, and no
// other message is. 2 stores i and acknowledges it: 1 commits i, and
// setConf makes it step down at once (raft/membership.go: a leader that
// is no longer a voter becomes a follower). The MsgApp that the commit
// advance then broadcasts (bcastAppend, sent by what is now a follower)
// carries commit i but starts after i+1, which 2 lacks: 2 rejects it and
// its commit stays below i, and 1, a follower, ignores the rejection and
// never sends again (it is not a voter of its configuration, so it never
// campaigns). 2 is still in {1, 2} (a configuration takes effect when its
// entry commits, and 2 does not know that i did), so it needs 1's vote;
// 1 refuses it for ever, since its log (i+1) is more up to date than 2's
// (i). No leader is ever elected, though the network is whole and both
// nodes are up. Found by the simulator's churn (default configuration:
// seeds 135, 600, 966, 1241 and 1243 of 1..2000; 600, 966 and 1243
// through a joint configuration: a leader that is only an outgoing voter
// commits the entry that leaves the joint configuration and steps down,
// with the same outcome; 16 of 1000 seeds with --nodes 3). The fix
// (raft.handOff): a leader whose removal commits keeps leading, without
// counting itself, until a voter of the new configuration holds its whole
// log, and then hands leadership to it with MsgTimeoutNow.
func TestCoreRemovedLeaderHandsOff(t *testing.T) {
	stuck := 0
	const seeds = 10
	for seed := uint64(1); seed <= seeds; seed++ {
		b := &bareNet{t: t, nodes: map[raft.NodeID]*bareNode{
			1: newBare(t, 1, []raft.NodeID{1, 2}, 100*seed+1),
			2: newBare(t, 2, []raft.NodeID{1, 2}, 100*seed+2),
		}, refused: map[raft.MessageType]int{}}
		all := []raft.NodeID{1, 2}
		none := func(raft.Message) bool { return false }
		b.nodes[1].r.Campaign()
		b.q = append(b.q, b.nodes[1].ready(t)...)
		b.flush(none)
		if leaderOf(b, all) != 1 {
			t.Fatal("setup: 1 did not win")
		}
		// 1 removes itself, then appends a client entry.
		p, err := b.nodes[1].r.ProposeConfChange(raft.ConfChange{Type: raft.ConfRemove, Node: 1})
		if err != nil {
			t.Fatal(err)
		}
		b.q = append(b.q, b.nodes[1].ready(t)...)
		if _, err := b.nodes[1].r.Propose([]byte("x")); err != nil {
			t.Fatal(err)
		}
		b.q = append(b.q, b.nodes[1].ready(t)...)
		// One message is lost: the MsgApp that carries the client entry.
		lost := 0
		b.flush(func(m raft.Message) bool {
			for _, e := range m.Entries {
				if m.Type == raft.MsgApp && e.Index == p.Index+1 && lost == 0 {
					lost++
					return true
				}
			}
			return false
		})
		if cs := b.nodes[1].r.ConfState(); lost != 1 || cs.IsVoter(1) {
			t.Fatalf("setup: %d messages lost; 1 should have committed its removal: configuration %v", lost, cs)
		}
		// Nothing else is lost: 1 hands off to 2.
		for i := 0; i < 2000 && leaderOf(b, all) != 2; i++ {
			b.tick(all, none)
		}
		if leaderOf(b, all) != 2 {
			stuck++
			s1, s2 := b.nodes[1].r.Status(), b.nodes[2].r.Status()
			t.Logf("seed %d: 2 not leader after 2000 ticks; 1: %v in term %d, configuration %v, last index %d, commit %d; 2: %v in term %d, configuration %v, last index %d, commit %d",
				seed, s1.Role, s1.Term, s1.Conf, s1.LastIndex, s1.Commit, s2.Role, s2.Term, s2.Conf, s2.LastIndex, s2.Commit)
		}
	}
	if stuck > 0 {
		t.Errorf("%d of %d seeds: the removed leader did not hand leadership to 2", stuck, seeds)
	}
}

// TestCoreLowerTermVoteAnswered (pre-vote off): a voter that holds a
// stale configuration which does not include a candidate, and a higher
// term, never lets that candidate win. Here (the state the simulator
// reached with --no-prevote, seed 358 of the default configuration,
// written to storage directly): the cluster bootstrapped as {1, 2, 4};
// 1 was cut off from the start and kept campaigning (pre-vote off), up
// to term 50. Meanwhile 2 led: added 3, removed 4, 1 and 2, and 3, alone,
// proposed the joint configuration {1} & outgoing {3}, which commits with
// 3 alone. To leave it, or elect anyone, every quorum needs 1. 3
// campaigns in terms 3, 4, ...; its MsgVotes reach 1, which drops them
// without an answer, since their term is below its own (onLowerTerm
// answers only MsgApp, MsgHeartbeat, MsgSnap and MsgPreVote), and 1
// campaigns in its own configuration {1, 2, 4}, so that nothing of its
// term ever reaches 3. The terms never meet: no leader, for ever, with
// the network whole. With pre-vote on, 1's term does not grow while it
// is cut off, and a lower-term MsgPreVote is answered. The fix: a
// lower-term MsgVote is refused with our term (§5.1), which 3 adopts.
func TestCoreLowerTermVoteAnswered(t *testing.T) {
	conf := func(i raft.Index, term raft.Term, cs raft.ConfState) raft.Entry {
		return raft.Entry{Index: i, Term: term, Type: raft.EntryConfChange, Data: raft.AppendConfState(nil, cs)}
	}
	v := func(ids ...raft.NodeID) []raft.NodeID { return ids }
	history := []raft.Entry{
		{Index: 1, Term: 1, Type: raft.EntryNoop},                      // 2 leads {1, 2, 4}
		conf(2, 1, raft.ConfState{Voters: v(1, 2, 3, 4)}),              // committed by 2, 3, 4
		conf(3, 1, raft.ConfState{Voters: v(1, 2, 3)}),                 // by 2, 3, 4
		conf(4, 1, raft.ConfState{Voters: v(2, 3)}),                    // by 2, 3
		conf(5, 1, raft.ConfState{Voters: v(3)}),                       // by 2, 3
		{Index: 6, Term: 2, Type: raft.EntryNoop},                      // 3 leads {3}
		conf(7, 2, raft.ConfState{Voters: v(1), VotersOutgoing: v(3)}), // by 3
	}
	stuck := 0
	const seeds = 10
	for seed := uint64(1); seed <= seeds; seed++ {
		st1, st3 := raft.NewMemoryStorage(), raft.NewMemoryStorage()
		if err := st1.Append(history[:1]); err != nil {
			t.Fatal(err)
		}
		st1.SetHardState(raft.HardState{Term: 50, Vote: 1, Commit: 1})
		if err := st3.Append(history); err != nil {
			t.Fatal(err)
		}
		st3.SetHardState(raft.HardState{Term: 2, Vote: 3, Commit: 7})
		mk := func(id raft.NodeID, peers []raft.NodeID, st *raft.MemoryStorage) *bareNode {
			r, err := raft.New(raft.Config{ID: id, Peers: peers, Storage: st, ElectionTicks: 10, HeartbeatTicks: 2,
				Seed: 100*seed + uint64(id), DisablePreVote: true})
			if err != nil {
				t.Fatal(err)
			}
			return &bareNode{r: r, st: st}
		}
		b := &bareNet{t: t, nodes: map[raft.NodeID]*bareNode{
			1: mk(1, v(1, 2, 4), st1),
			3: mk(3, nil, st3),
		}, refused: map[raft.MessageType]int{}}
		if cs := b.nodes[3].r.ConfState(); !cs.Joint() || !cs.IsVoter(1) {
			t.Fatalf("setup: 3 is in %v", cs)
		}
		all := []raft.NodeID{1, 3}
		none := func(raft.Message) bool { return false }
		for i := 0; i < 2000 && leaderOf(b, all) == raft.None; i++ {
			b.tick(all, none)
		}
		if leaderOf(b, all) == raft.None {
			stuck++
			s1, s3 := b.nodes[1].r.Status(), b.nodes[3].r.Status()
			t.Logf("seed %d: 2 not leader after 2000 ticks; 1: %v in term %d, configuration %v, last index %d; 3: %v in term %d, configuration %v, last index %d",
				seed, s1.Role, s1.Term, s1.Conf, s1.LastIndex, s3.Role, s3.Term, s3.Conf, s3.LastIndex)
		}
	}
	if stuck > 0 {
		t.Errorf("%d of %d seeds: 1 never answers 3's lower-term vote requests, and 3 never learns 1's term", stuck, seeds)
	}
}

// TestCoreVoterLearnsCommitFromRefusal: the removed node's refusal tells
// the remaining voter that its removal committed. Bootstrap {1, 2}; leader
// 2 removed itself (entry 2, configuration {1}), appended entry 3, and
// committed 2 with 1's acknowledgement; then it lost its quorum (1 cut off
// for an election timeout: check-quorum) before handing off, and no
// message told 1 that 2 committed. 1 is still in {1, 2} and needs 2's
// vote; 2 refuses it (its log, ending at 3, is longer) and, no longer a
// voter, never campaigns. Found by a 20,000-seed churn campaign (seeds
// 11241, 14888, 19320, through joint configurations too). The fix: a
// refused vote or pre-vote carries the responder's commit index and the
// term there (raft.learnCommit); 1's log holds entry 2 with that term, so
// it commits 2, is alone in {1} and elects itself.
func TestCoreVoterLearnsCommitFromRefusal(t *testing.T) {
	conf := func(i raft.Index, term raft.Term, cs raft.ConfState) raft.Entry {
		return raft.Entry{Index: i, Term: term, Type: raft.EntryConfChange, Data: raft.AppendConfState(nil, cs)}
	}
	history := []raft.Entry{
		{Index: 1, Term: 1, Type: raft.EntryNoop},
		conf(2, 1, raft.ConfState{Voters: []raft.NodeID{1}}),
		{Index: 3, Term: 1, Data: []byte("x")},
	}
	stuck := 0
	const seeds = 10
	for seed := uint64(1); seed <= seeds; seed++ {
		st1, st2 := raft.NewMemoryStorage(), raft.NewMemoryStorage()
		if err := st1.Append(history[:2]); err != nil {
			t.Fatal(err)
		}
		st1.SetHardState(raft.HardState{Term: 1, Vote: 2, Commit: 1})
		if err := st2.Append(history); err != nil {
			t.Fatal(err)
		}
		st2.SetHardState(raft.HardState{Term: 1, Vote: 2, Commit: 2})
		mk := func(id raft.NodeID, st *raft.MemoryStorage) *bareNode {
			r, err := raft.New(raft.Config{ID: id, Peers: []raft.NodeID{1, 2}, Storage: st, ElectionTicks: 10, HeartbeatTicks: 2, Seed: 100*seed + uint64(id)})
			if err != nil {
				t.Fatal(err)
			}
			return &bareNode{r: r, st: st}
		}
		b := &bareNet{t: t, nodes: map[raft.NodeID]*bareNode{1: mk(1, st1), 2: mk(2, st2)}, refused: map[raft.MessageType]int{}}
		if cs := b.nodes[1].r.ConfState(); !cs.IsVoter(2) {
			t.Fatalf("setup: 1 is in %v", cs)
		}
		if cs := b.nodes[2].r.ConfState(); cs.IsVoter(2) {
			t.Fatalf("setup: 2 is in %v", cs)
		}
		all := []raft.NodeID{1, 2}
		none := func(raft.Message) bool { return false }
		for i := 0; i < 2000 && leaderOf(b, all) != 1; i++ {
			b.tick(all, none)
		}
		if leaderOf(b, all) != 1 {
			stuck++
			s1 := b.nodes[1].r.Status()
			t.Logf("seed %d: 1 not leader after 2000 ticks: %v in term %d, configuration %v, commit %d", seed, s1.Role, s1.Term, s1.Conf, s1.Commit)
		}
	}
	if stuck > 0 {
		t.Errorf("%d of %d seeds: 1 never learned that its configuration {1} committed", stuck, seeds)
	}
}

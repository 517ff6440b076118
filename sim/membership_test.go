package sim

import (
	"errors"
	"slices"
	"testing"

	"github.com/embraft/embraft/raft"
)

// firstViolationOf runs seeds 1..n of cfg and returns the first violation.
func firstViolationOf(t *testing.T, cfg Config, n uint64) (uint64, *Violation) {
	t.Helper()
	for seed := uint64(1); seed <= n; seed++ {
		cfg.Seed = seed
		_, err := Run(cfg)
		var v *Violation
		if errors.As(err, &v) {
			return seed, v
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return 0, nil
}

// TestMembershipCheckersBite feeds the membership checkers wrong
// configurations (the core's own comparison with the expected one off, so
// that the fake reaches the other checks) and a runtime that forgets the
// configuration entries it applies: each must be reported as the property
// it breaks.
func TestMembershipCheckersBite(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"voters-superset", Config{noConfEquality: true, fakeConf: func(cs raft.ConfState) raft.ConfState {
			// Every node counts as a voter: the quorums the cores count are
			// not quorums of this.
			all := make([]raft.NodeID, MaxUniverse)
			for i := range all {
				all[i] = raft.NodeID(i + 1)
			}
			return raft.ConfState{Voters: all}
		}}, []string{"pre-vote quorum", "election quorum", "commit quorum"}},
		{"voters-superset-no-prevote", Config{DisablePreVote: true, noConfEquality: true, fakeConf: func(cs raft.ConfState) raft.ConfState {
			all := make([]raft.NodeID, MaxUniverse)
			for i := range all {
				all[i] = raft.NodeID(i + 1)
			}
			return raft.ConfState{Voters: all}
		}}, []string{"election quorum", "commit quorum"}},
		{"leader-not-voter", Config{noConfEquality: true, fakeConf: func(cs raft.ConfState) raft.ConfState {
			// The lowest voter is dropped: sooner or later it leads.
			v := slices.Clone(cs.Voters)
			if len(v) > 1 {
				v = v[1:]
			}
			return raft.ConfState{Voters: v, Learners: cs.Learners}
		}}, []string{"candidate is a voter", "leader is a voter", "pre-vote quorum", "election quorum", "commit quorum"}},
		{"nobody-member", Config{noConfEquality: true, fakeConf: func(cs raft.ConfState) raft.ConfState {
			// Nothing is a member: every candidate is a non-voter.
			return raft.ConfState{Voters: []raft.NodeID{MaxUniverse + 1}}
		}}, []string{"candidate is a voter", "leader is a voter"}},
		{"core-vs-expected", Config{fakeConf: func(cs raft.ConfState) raft.ConfState {
			return raft.ConfState{Voters: cs.Voters, Learners: append(slices.Clone(cs.Learners), MaxUniverse+1)}
		}}, []string{"configuration"}},
		{"runtime-forgets-conf", Config{ignoreConfOnApply: true}, []string{"configuration"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Steps = 3000
			seed, v := firstViolationOf(t, c.cfg, 30)
			if v == nil {
				t.Fatalf("30 seeds: no violation")
			}
			if !slices.Contains(c.want, v.Property) {
				t.Fatalf("seed %d: %s, want one of %v:\n%v", seed, v.Property, c.want, v)
			}
			t.Logf("seed %d: %s: %s", seed, v.Property, v.Detail)
		})
	}
}

// TestPendingConfsCheck: a leader log with two configuration entries above
// the committed index is reported (the check on its own: no core makes
// one).
func TestPendingConfsCheck(t *testing.T) {
	w := newWorld(Config{Seed: 1, Steps: 10}.withDefaults())
	n := w.nodes[0]
	conf := raft.Entry{Type: raft.EntryConfChange, Term: 1, Data: raft.AppendConfState(nil, raft.ConfState{Voters: []raft.NodeID{1}})}
	ents := []raft.Entry{{Index: 1, Term: 1, Type: raft.EntryNoop}, conf, conf}
	ents[1].Index, ents[2].Index = 2, 3
	if err := n.st.Append(ents); err != nil {
		t.Fatal(err)
	}
	w.checkPendingConfs(n, "test")
	if w.err == nil || w.err.Property != "one change at a time" {
		t.Fatalf("two uncommitted configuration entries not reported: %v", w.err)
	}
}

// TestTermRaiseCheck: a vote request from outside the receiver's
// configuration that raises its term is reported unless its sender was
// seen campaigning in that term; the traffic of that term's leader is
// accepted (the check on its own).
func TestTermRaiseCheck(t *testing.T) {
	for _, c := range []struct {
		name      string
		m         raft.Message
		candidate bool
		leader    bool
		bad       bool
	}{
		{"vote-from-stranger", raft.Message{Type: raft.MsgVote, From: 3, To: 1, Term: 2}, false, false, true},
		{"vote-from-candidate", raft.Message{Type: raft.MsgVote, From: 3, To: 1, Term: 2}, true, false, false},
		{"append-from-leader", raft.Message{Type: raft.MsgApp, From: 3, To: 1, Term: 2}, false, true, false},
		{"append-from-non-leader", raft.Message{Type: raft.MsgApp, From: 3, To: 1, Term: 2}, true, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(Config{Seed: 1, Nodes: 2, Spares: -1, Steps: 10}.withDefaults())
			w.chk.fake = func(raft.ConfState) raft.ConfState { return raft.ConfState{Voters: []raft.NodeID{1, 2}} }
			w.chk.candidates = make([]uint64, 3)
			w.chk.leaders = make([]raft.NodeID, 3)
			if c.candidate {
				w.chk.candidates[2] = idMask([]raft.NodeID{3})
			}
			if c.leader {
				w.chk.leaders[2] = 3
			}
			w.termRaised(w.nodes[0], &c.m, 1)
			if got := w.err != nil && w.err.Property == "non-member disruption"; got != c.bad {
				t.Fatalf("violation %v, want one: %v", w.err, c.bad)
			}
		})
	}
}

// TestHandOffCheck: a leader that is no longer a voter of its committed
// configuration may keep leading while it hands off, but its log must not
// grow (the check on its own).
func TestHandOffCheck(t *testing.T) {
	w := newWorld(Config{Seed: 1, Steps: 10}.withDefaults())
	w.chk.fake = func(raft.ConfState) raft.ConfState { return raft.ConfState{Voters: []raft.NodeID{2, 3}} }
	n := w.nodes[0]
	ents := []raft.Entry{{Index: 1, Term: 1, Type: raft.EntryNoop}, {Index: 2, Term: 1}}
	if err := n.st.Append(ents[:1]); err != nil {
		t.Fatal(err)
	}
	w.checkLeaderIsVoter(n)
	if w.err != nil || n.handOffLast != 1 {
		t.Fatalf("handing off: violation %v, hand-off from index %d", w.err, n.handOffLast)
	}
	if err := n.st.Append(ents[1:]); err != nil {
		t.Fatal(err)
	}
	w.checkLeaderIsVoter(n)
	if w.err == nil || w.err.Property != "removed leader appends nothing" {
		t.Fatalf("a removed leader's log grew, not reported: %v", w.err)
	}
}

// TestStalePreVoteGrantKeepsNewerRound is the regression test of seed 9554
// (false "pre-vote quorum" report): a late copy of a term-5 pre-vote grant
// reached a node pre-campaigning for term 9; the checker recorded it in the
// slot term 9 shares with term 5 and lost the round's real grants.
func TestStalePreVoteGrantKeepsNewerRound(t *testing.T) {
	w := newWorld(Config{Seed: 1, Steps: 10}.withDefaults())
	n := w.nodes[0]
	n.notePreVoteGrant(&raft.Message{Type: raft.MsgPreVoteResp, From: 3, Term: 9}, 8)
	n.notePreVoteGrant(&raft.Message{Type: raft.MsgPreVoteResp, From: 2, Term: 5}, 8)
	if !n.granted(3, 9) {
		t.Fatal("a stale term-5 grant erased the term-9 grant of node 3")
	}
	if n.granted(2, 5) {
		t.Fatal("a grant of an earlier term than the node's was recorded; its core ignores it")
	}
	if _, err := Run(Config{Seed: 9554, Steps: 5000}); err != nil {
		t.Fatalf("seed 9554: %v", err)
	}
}

package raft

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestStepRejectsBadMessages(t *testing.T) {
	nw, r := newLeader(t, 3, nil)
	_ = nw
	term := r.term
	cases := map[string]struct {
		m   Message
		err error
	}{
		"unknown type":   {Message{Type: 0, From: 2, To: 1, Term: term}, ErrInvalidMessage},
		"type too big":   {Message{Type: 200, From: 2, To: 1, Term: term}, ErrInvalidMessage},
		"unknown sender": {Message{Type: MsgHeartbeatResp, From: 9, To: 1, Term: term}, ErrUnknownPeer},
		"from self":      {Message{Type: MsgHeartbeatResp, From: 1, To: 1, Term: term}, ErrUnknownPeer},
		"wrong target":   {Message{Type: MsgHeartbeatResp, From: 2, To: 3, Term: term}, ErrUnknownPeer},
		"term zero":      {Message{Type: MsgAppResp, From: 2, To: 1}, ErrInvalidMessage},
		"entries in vote": {Message{Type: MsgVote, From: 2, To: 1, Term: term,
			Entries: []Entry{{Index: 1}}}, ErrInvalidMessage},
		"gap in append": {Message{Type: MsgApp, From: 2, To: 1, Term: term, Index: 1,
			Entries: []Entry{{Term: term, Index: 3}}}, ErrInvalidMessage},
		"entry from the future": {Message{Type: MsgApp, From: 2, To: 1, Term: term, Index: 1,
			Entries: []Entry{{Term: term + 1, Index: 2}}}, ErrInvalidMessage},
		"index overflow": {Message{Type: MsgApp, From: 2, To: 1, Term: term, Index: math.MaxUint64,
			Entries: []Entry{{Term: term, Index: 0}}}, ErrInvalidMessage},
		"empty prop":   {Message{Type: MsgProp, From: 2, To: 1}, ErrInvalidMessage},
		"noop prop":    {Message{Type: MsgProp, From: 2, To: 1, Entries: []Entry{{Type: EntryNoop}}}, ErrInvalidMessage},
		"bad entry":    {Message{Type: MsgApp, From: 2, To: 1, Term: term, Index: 1, Entries: []Entry{{Term: term, Index: 2, Type: 7}}}, ErrInvalidMessage},
		"logterm>term": {Message{Type: MsgApp, From: 2, To: 1, Term: term, LogTerm: term + 1}, ErrInvalidMessage},
	}
	for name, c := range cases {
		before := r.stats.Dropped
		if err := r.Step(c.m); !errors.Is(err, c.err) {
			t.Errorf("%s: Step error %v, want %v", name, err, c.err)
		}
		if r.stats.Dropped != before+1 {
			t.Errorf("%s: drop not counted", name)
		}
	}
	if r.role != RoleLeader || r.term != term {
		t.Fatalf("bad input changed the leader: role %v term %d", r.role, r.term)
	}
}

// TestStepRandomMessagesNeverPanic throws random messages at every role and
// checks that nothing panics and the core's invariants hold afterwards.
func TestStepRandomMessagesNeverPanic(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		nw := newNetwork(t, 3, seed, nil)
		nw.elect(1)
		nw.propose(1, "x")
		for i := 0; i < 2000; i++ {
			id := NodeID(rng.IntN(3) + 1)
			m := randomMessage(rng, id)
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("seed %d: Step(%+v) panicked: %v", seed, m, p)
					}
				}()
				_ = nw.node(id).Step(m)
				nw.process(id)
				nw.queue = nw.queue[:0]
			}()
			if r := nw.node(id); r.log.applied > r.log.committed || r.log.committed > r.log.lastIndex() {
				t.Fatalf("seed %d: invariant broken: applied %d commit %d last %d", seed, r.log.applied, r.log.committed, r.log.lastIndex())
			}
		}
	}
}

func randomMessage(rng *rand.Rand, to NodeID) Message {
	small := func() uint64 { return rng.Uint64N(8) }
	m := Message{
		Type: MessageType(rng.IntN(12)), From: NodeID(rng.IntN(4)), To: to,
		Term: Term(small()), LogTerm: Term(small()), Index: Index(small()),
		Commit: Index(small()), Hint: Index(small()), Reject: rng.IntN(2) == 0,
	}
	if m.Type == MsgApp || m.Type == MsgProp {
		for i := range rng.IntN(4) {
			m.Entries = append(m.Entries, Entry{Term: Term(small()), Index: m.Index + 1 + Index(i),
				Type: EntryType(rng.IntN(2)), Data: []byte{byte(i)}})
		}
	}
	return m
}

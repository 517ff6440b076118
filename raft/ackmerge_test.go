package raft

import "testing"

// TestAckMergeBurst: a follower that steps several appends before its Ready
// answers once, with the last index (acknowledgements are cumulative), so a
// burst costs the leader's bounded inbox one frame.
func TestAckMergeBurst(t *testing.T) {
	p := newPaperNode(t, 2, 3, nil, HardState{Term: 1})
	p.flush()
	for i := Index(0); i < 4; i++ {
		p.step(Message{Type: MsgApp, From: 1, Term: 1, Index: i, LogTerm: termAt(i),
			Entries: []Entry{{Index: i + 1, Term: 1, Data: []byte("x")}}})
	}
	got := appResps(p.flush())
	if len(got) != 1 || got[0].Index != 4 || got[0].Reject {
		t.Fatalf("answers to a burst of 4 appends: %+v, want one success at index 4", got)
	}
	if n := p.r.Status().Stats.AcksMerged; n != 3 {
		t.Fatalf("AcksMerged = %d, want 3", n)
	}
}

// TestAckMergeKeepsRejections: a rejection is never folded into, nor
// hidden behind, a success; an answer of another term stands alone.
func TestAckMergeKeepsRejections(t *testing.T) {
	p := newPaperNode(t, 2, 3, nil, HardState{Term: 1})
	p.flush()
	one := func(i Index, term Term) Message {
		return Message{Type: MsgApp, From: 1, Term: term, Index: i, LogTerm: termAt(i),
			Entries: []Entry{{Index: i + 1, Term: 1, Data: []byte("x")}}}
	}
	p.step(one(0, 1))
	p.step(Message{Type: MsgApp, From: 1, Term: 1, Index: 7, LogTerm: 1}) // gap: rejected
	p.step(one(1, 1))
	p.step(one(2, 2)) // a new term (the same leader re-elected)
	got := appResps(p.flush())
	want := []struct {
		reject bool
		index  Index
		term   Term
	}{{false, 1, 1}, {true, 7, 1}, {false, 2, 1}, {false, 3, 2}}
	if len(got) != len(want) {
		t.Fatalf("answers: %+v, want %d", got, len(want))
	}
	for i, w := range want {
		if got[i].Reject != w.reject || got[i].Index != w.index || got[i].Term != w.term {
			t.Fatalf("answer %d: %+v, want reject=%v index %d term %d", i, got[i], w.reject, w.index, w.term)
		}
	}
}

func termAt(i Index) Term {
	if i == 0 {
		return 0
	}
	return 1
}

func appResps(ms []Message) []Message {
	var out []Message
	for _, m := range ms {
		if m.Type == MsgAppResp {
			out = append(out, m)
		}
	}
	return out
}

// TestAckMergeNeverLowers: a late copy of an older append answers below the
// Ready's latest acknowledgement; that one is not lowered to it (nor is
// the older answer dropped: the leader ignores a stale success).
func TestAckMergeNeverLowers(t *testing.T) {
	p := newPaperNode(t, 2, 3, nil, HardState{Term: 1})
	p.flush()
	p.step(Message{Type: MsgApp, From: 1, Term: 1, Index: 0, LogTerm: 0,
		Entries: []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 1}}})
	p.step(Message{Type: MsgApp, From: 1, Term: 1, Index: 0, LogTerm: 0, Entries: []Entry{{Index: 1, Term: 1}}})
	got := appResps(p.flush())
	if len(got) != 2 || got[0].Index != 3 || got[1].Index != 1 || got[0].Reject || got[1].Reject {
		t.Fatalf("answers: %+v, want successes at 3 then 1", got)
	}
}

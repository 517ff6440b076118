package raft

import "testing"

// steadyLeader returns a 3-node leader (node 1) whose log holds n persisted
// entries, with both followers replicating and everything committed up to
// the leader's no-op, ready for a stream of append responses.
func steadyLeader(tb testing.TB, n int) *Raft {
	st := NewMemoryStorage()
	r, err := New(Config{ID: 1, Peers: []NodeID{1, 2, 3}, Storage: st, MaxInflightMsgs: 256,
		MaxEntriesInMemory: n + 1})
	if err != nil {
		tb.Fatal(err)
	}
	r.becomeCandidate()
	r.becomeLeader()
	for i := 1; i < n; i++ { // the no-op is entry 1
		r.appendEntry(Entry{Term: r.term, Index: r.log.lastIndex() + 1, Data: make([]byte, 8)})
	}
	rd := r.Ready()
	_ = st.Append(rd.Entries)
	r.Advance(rd)
	resetSteady(r)
	r.msgs = r.msgs[:0]
	return r
}

// resetSteady rewinds the leader's followers and commit index so a
// benchmark can cycle through the same log. Only tests may do this.
func resetSteady(r *Raft) {
	for _, id := range []NodeID{2, 3} {
		pr := r.progressOf(id)
		pr.match, pr.next = 0, 1
		pr.becomeReplicate()
	}
	r.log.committed = 0
}

// stepAppResps steps one acknowledgement per call, alternating followers
// and advancing the acknowledged index, as a leader sees in steady state.
type ackStream struct {
	r    *Raft
	n    Index
	next Index
	from NodeID
}

func (s *ackStream) step() {
	if s.next == 0 || s.next > s.n {
		resetSteady(s.r)
		s.next = 1
	}
	_ = s.r.Step(Message{Type: MsgAppResp, From: s.from, To: 1, Term: s.r.term, Index: s.next})
	if s.from == 2 {
		s.from = 3
	} else {
		s.from = 2
		s.next++
	}
	s.r.msgs = s.r.msgs[:0] // the caller has sent them
}

func TestAllocsStepAppendResponse(t *testing.T) {
	r := steadyLeader(t, 4096)
	s := &ackStream{r: r, n: 4096, from: 2}
	s.step()
	if a := testing.AllocsPerRun(1000, s.step); a != 0 {
		t.Fatalf("leader stepping MsgAppResp allocates %v per op, want 0", a)
	}
	if r.log.committed == 0 {
		t.Fatal("benchmark workload committed nothing; it measures the wrong path")
	}
}

// tickLoop ticks a leader, answering its heartbeats as live followers do.
func tickLoop(r *Raft) func() {
	return func() {
		r.Tick()
		for _, m := range r.msgs {
			if m.Type == MsgHeartbeat {
				_ = r.Step(Message{Type: MsgHeartbeatResp, From: m.To, To: 1, Term: r.term})
			}
		}
		r.msgs = r.msgs[:0]
	}
}

func TestAllocsTick(t *testing.T) {
	r := steadyLeader(t, 16)
	for _, id := range []NodeID{2, 3} {
		r.progressOf(id).match = r.log.lastIndex()
	}
	if a := testing.AllocsPerRun(1000, tickLoop(r)); a != 0 {
		t.Fatalf("leader Tick allocates %v per op, want 0", a)
	}
	if r.role != RoleLeader {
		t.Fatal("leader stepped down during the tick loop")
	}
	f := newNetwork(t, 3, 1, nil).node(2)
	follower := func() {
		f.Tick()
		f.electionElapsed = 0 // a heartbeat arrived
	}
	if a := testing.AllocsPerRun(1000, follower); a != 0 {
		t.Fatalf("follower Tick allocates %v per op, want 0", a)
	}
}

func BenchmarkStepAppendResp(b *testing.B) {
	r := steadyLeader(b, 4096)
	s := &ackStream{r: r, n: 4096, from: 2}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.step()
	}
}

func BenchmarkTick(b *testing.B) {
	r := steadyLeader(b, 16)
	for _, id := range []NodeID{2, 3} {
		r.progressOf(id).match = r.log.lastIndex()
	}
	tick := tickLoop(r)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tick()
	}
}

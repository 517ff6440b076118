package raft

import (
	"errors"
	"testing"
)

func readOf(nw *network, id NodeID, rid uint64) (ReadState, bool) {
	for _, rs := range nw.nodes[id].reads {
		if rs.ID == rid {
			return rs, true
		}
	}
	return ReadState{}, false
}

// TestReadIndexAtLeader: a read is answered only after a quorum echoed a
// heartbeat sent after the request, with the commit index at request time.
// Reference: dissertation §6.4.
func TestReadIndexAtLeader(t *testing.T) {
	nw := newNetwork(t, 3, 1, nil)
	nw.elect(1)
	nw.propose(1, "a")
	r := nw.node(1)
	commit := r.log.committed
	if err := r.ReadIndex(7); err != nil {
		t.Fatal(err)
	}
	if _, ok := readOf(nw, 1, 7); ok {
		t.Fatal("read answered before the confirmation round")
	}
	nw.isolate(2)
	nw.isolate(3)
	nw.settle()
	if _, ok := readOf(nw, 1, 7); ok {
		t.Fatal("read answered without a quorum's confirmation")
	}
	nw.heal()
	nw.tick(1) // the next heartbeat round reaches the quorum
	rs, ok := readOf(nw, 1, 7)
	if !ok || rs.Index != commit || rs.Err != nil {
		t.Fatalf("read state %+v (found %v), want index %d", rs, ok, commit)
	}
}

// TestReadIndexWaitsForFirstCommitOfTerm: a new leader does not know the
// commit index until its no-op commits; a read waits for it even when a
// quorum has confirmed the leadership. Reference: dissertation §6.4 step 1.
func TestReadIndexWaitsForFirstCommitOfTerm(t *testing.T) {
	nw := newNetwork(t, 3, 1, nil)
	r := nw.node(1)
	r.becomeCandidate()
	r.becomeLeader()
	nw.process(1)
	nw.queue = nw.queue[:0] // the no-op's MsgApps are lost
	if err := r.ReadIndex(9); err != nil {
		t.Fatal(err)
	}
	r.bcastHeartbeat()
	for _, id := range []NodeID{2, 3} {
		_ = r.Step(Message{Type: MsgHeartbeatResp, From: id, To: 1, Term: r.term, Index: Index(r.hbSeq)})
	}
	nw.process(1)
	nw.queue = nw.queue[:0]
	if _, ok := readOf(nw, 1, 9); ok {
		t.Fatal("read answered before the leader committed an entry of its term")
	}
	noop := r.log.lastIndex()
	_ = r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: r.term, Index: noop})
	nw.settle()
	nw.tick(1)
	rs, ok := readOf(nw, 1, 9)
	if !ok || rs.Index != noop {
		t.Fatalf("read state %+v (found %v), want index %d (the no-op)", rs, ok, noop)
	}
}

// TestReadIndexForwardedFromFollower: a follower's read goes to the leader
// and comes back as a ReadState at the follower.
func TestReadIndexForwardedFromFollower(t *testing.T) {
	nw := newNetwork(t, 3, 1, nil)
	nw.elect(1)
	nw.propose(1, "a")
	if err := nw.node(2).ReadIndex(5); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	nw.tick(1)
	rs, ok := readOf(nw, 2, 5)
	if !ok || rs.Index != nw.node(1).log.committed {
		t.Fatalf("follower read %+v (found %v), want index %d", rs, ok, nw.node(1).log.committed)
	}
}

// TestStaleLeaderCannotServeReads: a leader cut off from the majority
// keeps believing it leads for a while, but its reads never complete,
// while the majority elects a leader and commits a newer write.
func TestStaleLeaderCannotServeReads(t *testing.T) {
	nw := newNetwork(t, 5, 2, func(c *Config) { c.DisableCheckQuorum = true })
	nw.elect(1)
	nw.isolate(1)
	nw.elect(2)
	nw.propose(2, "newer")
	if err := nw.node(1).ReadIndex(3); err != nil {
		t.Fatal(err)
	}
	nw.tick(20)
	if _, ok := readOf(nw, 1, 3); ok {
		t.Fatal("an isolated stale leader answered a read: it could miss the newer write")
	}
}

func TestReadIndexRefusals(t *testing.T) {
	nw := newNetwork(t, 3, 1, func(c *Config) { c.MaxPendingReads = 2 })
	if err := nw.node(1).ReadIndex(1); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("read without a leader: %v, want ErrNoLeader", err)
	}
	nw.elect(1)
	r := nw.node(1)
	nw.isolate(2)
	nw.isolate(3)
	for id := uint64(1); id <= 2; id++ {
		if err := r.ReadIndex(id); err != nil {
			t.Fatalf("read %d within MaxPendingReads: %v", id, err)
		}
	}
	if err := r.ReadIndex(3); !errors.Is(err, ErrBusy) {
		t.Fatalf("read over MaxPendingReads: %v, want ErrBusy", err)
	}
	// A follower forwarding to a node that no longer leads is refused.
	_ = nw.node(3).Step(Message{Type: MsgReadIndex, From: 2, To: 3, Term: nw.node(3).term, Index: 4})
	nw.process(3)
	var refused bool
	for _, m := range nw.queue {
		refused = refused || (m.Type == MsgReadIndexResp && m.Reject && m.To == 2)
	}
	if !refused {
		t.Fatal("a non-leader did not refuse a forwarded read")
	}
}

// TestReadLease: with ReadLease a leader answers at once while a quorum
// echoed a recent heartbeat, and stops answering at once when it has not.
func TestReadLease(t *testing.T) {
	nw := newNetwork(t, 3, 1, func(c *Config) { c.ReadLease = true })
	// With ReadLease nodes refuse votes for their first election timeout,
	// so let an election happen on its own.
	for i := 0; i < 100 && nw.leader() == None; i++ {
		nw.tick(1)
	}
	lead := nw.leader()
	if lead == None {
		t.Fatal("no leader elected")
	}
	nw.propose(lead, "a")
	nw.tick(2) // heartbeats echoed: lease held
	r := nw.node(lead)
	others := []NodeID{}
	for _, id := range nw.ids {
		if id != lead {
			others = append(others, id)
		}
	}
	if err := r.ReadIndex(1); err != nil {
		t.Fatal(err)
	}
	if len(r.readStates) != 1 {
		t.Fatal("read under a valid lease was not answered at once")
	}
	nw.isolate(others[0])
	nw.isolate(others[1])
	for range r.cfg.ElectionTicks {
		r.Tick()
		nw.process(lead)
		nw.queue = nw.queue[:0]
	}
	if r.role == RoleLeader {
		if err := r.ReadIndex(2); err != nil {
			t.Fatal(err)
		}
		for _, rs := range r.readStates {
			if rs.ID == 2 {
				t.Fatal("read answered on an expired lease")
			}
		}
	}
}

func TestReadLeaseNeedsCheckQuorum(t *testing.T) {
	_, err := New(Config{ID: 1, Peers: []NodeID{1}, Storage: NewMemoryStorage(), ReadLease: true, DisableCheckQuorum: true})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("ReadLease without check-quorum: %v, want ErrConfig", err)
	}
}

func TestReadIndexSingleNode(t *testing.T) {
	nw := newNetwork(t, 1, 1, nil)
	nw.elect(1)
	if err := nw.node(1).ReadIndex(1); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if rs, ok := readOf(nw, 1, 1); !ok || rs.Index != nw.node(1).log.committed {
		t.Fatalf("single-node read %+v (found %v)", rs, ok)
	}
}

// TestReadLeaseRestartedVoterWaits: with ReadLease, a freshly (re)started
// node refuses votes for an election timeout, since a leader's lease may
// still count a heartbeat it acknowledged before the restart.
func TestReadLeaseRestartedVoterWaits(t *testing.T) {
	for _, lease := range []bool{false, true} {
		r, err := New(Config{ID: 1, Peers: []NodeID{1, 2, 3}, Storage: NewMemoryStorage(), ReadLease: lease})
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 5})
		if granted := r.vote == 2; granted == lease {
			t.Fatalf("ReadLease=%v: vote granted=%v right after start", lease, granted)
		}
		if lease {
			for range r.cfg.ElectionTicks {
				r.ticks++ // time passes without heartbeats (no election: tick() not called)
			}
			_ = r.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 5})
			if r.vote != 2 {
				t.Fatal("vote still refused after an election timeout")
			}
		}
	}
}

// TestReadLeaseEndsWithTransfer: a leadership transfer overrides the
// followers' leader lease (the target's MsgVote carries the transfer
// flag), so once a leader has sent MsgTimeoutNow its lease proves
// nothing: the target can be elected, and commit writes, while the old
// leader's last quorum echo is still fresh. Here the old leader hears
// nothing more (links towards it cut), the target wins and commits "b",
// and a read at the old leader must not be answered from its lease.
func TestReadLeaseEndsWithTransfer(t *testing.T) {
	nw := newNetwork(t, 3, 1, func(c *Config) { c.ReadLease = true })
	for i := 0; i < 100 && nw.leader() == None; i++ {
		nw.tick(1)
	}
	lead := nw.leader()
	if lead == None {
		t.Fatal("no leader elected")
	}
	nw.propose(lead, "a")
	nw.tick(2) // heartbeats echoed: lease held
	old := nw.node(lead)
	to := nw.ids[0]
	if to == lead {
		to = nw.ids[1]
	}
	if err := old.TransferLeadership(to); err != nil {
		t.Fatal(err)
	}
	for _, o := range nw.ids {
		if o != lead {
			nw.cut[[2]NodeID{o, lead}] = true
		}
	}
	nw.settle()
	if nw.node(to).role != RoleLeader || old.role != RoleLeader {
		t.Fatalf("setup: target %d is %v, old leader %d is %v; want both leaders (of different terms)",
			to, nw.node(to).role, lead, old.role)
	}
	nw.propose(to, "b")
	if err := old.ReadIndex(7); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if rs, ok := readOf(nw, lead, 7); ok {
		t.Fatalf("the old leader answered a read at index %d from its lease after handing leadership to %d, which committed index %d",
			rs.Index, to, nw.node(to).log.committed)
	}
}

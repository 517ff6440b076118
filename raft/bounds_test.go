package raft

import (
	"bytes"
	"errors"
	"testing"
)

// newLeader returns a network whose node 1 leads, with every Ready handled.
func newLeader(t *testing.T, n int, opt func(*Config)) (*network, *Raft) {
	t.Helper()
	nw := newNetwork(t, n, 11, opt)
	nw.elect(1)
	return nw, nw.node(1)
}

// drainTo handles node id's Ready and returns the messages it sent to peer.
func (nw *network) drainTo(id, peer NodeID) []Message {
	var out []Message
	nw.process(id)
	for _, m := range nw.queue {
		if m.To == peer {
			out = append(out, m)
		}
	}
	nw.queue = nw.queue[:0]
	return out
}

func TestBoundMaxInflightMsgs(t *testing.T) {
	const window = 3
	nw, r := newLeader(t, 3, func(c *Config) { c.MaxInflightMsgs = window })
	nw.isolate(2) // node 2 never answers; node 3 keeps committing
	var apps int
	for i := 0; i < 10; i++ {
		if _, err := r.Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		for _, m := range nw.drainTo(1, 2) {
			if m.Type == MsgApp && len(m.Entries) > 0 {
				apps++
			}
		}
	}
	if apps != window {
		t.Fatalf("sent %d MsgApps with entries to a silent follower, want the window %d", apps, window)
	}
	// One acknowledgement frees exactly one slot... or more: all <= index.
	pr := r.progressOf(2)
	first := pr.inflights.buf[pr.inflights.start]
	_ = r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: r.term, Index: first})
	sent := 0
	for _, m := range nw.drainTo(1, 2) {
		if m.Type == MsgApp && len(m.Entries) > 0 {
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("after one ack sent %d MsgApps, want 1", sent)
	}
}

func TestBoundMaxMsgBytes(t *testing.T) {
	const maxMsg = 256
	nw, r := newLeader(t, 3, func(c *Config) { c.MaxMsgBytes = maxMsg; c.MaxInflightMsgs = 64 })
	limit := maxMsg - entryOverheadBytes
	if _, err := r.Propose(make([]byte, limit+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("propose %d bytes: %v, want ErrTooLarge", limit+1, err)
	}
	if _, err := r.Propose(make([]byte, limit)); err != nil {
		t.Fatalf("propose exactly MaxEntryBytes: %v", err)
	}
	nw.settle()
	// Batching: many small entries must be split so each message's
	// accounted size stays within MaxMsgBytes.
	nw.isolate(2)
	for i := 0; i < 40; i++ {
		if _, err := r.Propose(bytes.Repeat([]byte{1}, 40)); err != nil {
			t.Fatal(err)
		}
	}
	nw.process(1) // persist: the entries now come from storage in batches
	nw.queue = nw.queue[:0]
	nw.heal()
	pr := r.progressOf(2)
	pr.becomeProbe()
	pr.next = pr.match + 1
	r.maybeSendAppend(pr, false)
	pr.becomeReplicate()
	for r.maybeSendAppend(pr, false) {
	}
	msgs := nw.drainTo(1, 2)
	if len(msgs) < 2 {
		t.Fatalf("40 entries of 40 bytes went in %d message(s); want batches", len(msgs))
	}
	for _, m := range msgs {
		size := 0
		for _, e := range m.Entries {
			size += len(e.Data) + entryOverheadBytes
		}
		if len(m.Entries) > 1 && size > maxMsg {
			t.Fatalf("MsgApp carries %d accounted bytes > MaxMsgBytes %d", size, maxMsg)
		}
	}
}

func TestBoundMaxUncommittedBytes(t *testing.T) {
	const budget = 100
	nw, r := newLeader(t, 3, func(c *Config) { c.MaxUncommittedBytes = budget; c.MaxMsgBytes = 64 })
	nw.isolate(2)
	nw.isolate(3) // nothing commits
	for i := 0; i < budget/10; i++ {
		if _, err := r.Propose(make([]byte, 10)); err != nil {
			t.Fatalf("proposal %d within budget: %v", i, err)
		}
	}
	if _, err := r.Propose(make([]byte, 1)); !errors.Is(err, ErrBusy) {
		t.Fatalf("proposal over MaxUncommittedBytes: %v, want ErrBusy", err)
	}
	if _, err := r.Propose(nil); err != nil {
		t.Fatalf("empty proposal at the edge: %v", err) // 100+0 fits
	}
	nw.heal()
	nw.tick(3) // commit and apply release the budget
	if _, err := r.Propose(make([]byte, 10)); err != nil {
		t.Fatalf("proposal after commit: %v", err)
	}
}

func TestBoundMaxEntriesInMemoryLeader(t *testing.T) {
	const max = 8
	nw, r := newLeader(t, 3, func(c *Config) { c.MaxEntriesInMemory = max })
	_ = nw
	// Without Advance the entries stay unstable, in the core's memory.
	for i := 0; i < max; i++ {
		if _, err := r.Propose([]byte{byte(i)}); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	if _, err := r.Propose([]byte{9}); !errors.Is(err, ErrBusy) {
		t.Fatalf("proposal %d: %v, want ErrBusy", max+1, err)
	}
	nw.settle() // persisting frees the buffer
	if _, err := r.Propose([]byte{9}); err != nil {
		t.Fatalf("after persist: %v", err)
	}
}

func TestBoundMaxEntriesInMemoryFollower(t *testing.T) {
	const max = 4
	nw, r := newLeader(t, 3, nil)
	f := nw.node(2)
	f.cfg.MaxEntriesInMemory = max
	last := r.log.lastIndex()
	ents := make([]Entry, max+3)
	for i := range ents {
		ents[i] = Entry{Term: r.term, Index: last + 1 + Index(i), Data: []byte{byte(i)}}
	}
	if err := f.Step(Message{Type: MsgApp, From: 1, To: 2, Term: r.term, Index: last, LogTerm: r.term, Entries: ents}); err != nil {
		t.Fatal(err)
	}
	resp := f.msgs[len(f.msgs)-1]
	if resp.Type != MsgAppResp || resp.Reject || resp.Index != last+max {
		t.Fatalf("response %+v, want success up to %d", resp, last+max)
	}
	if f.stats.Refused != 3 || f.log.lastIndex() != last+max {
		t.Fatalf("refused %d, last %d; want 3 refused, last %d", f.stats.Refused, f.log.lastIndex(), last+max)
	}
}

func TestBoundMaxCommittedBytesPerReady(t *testing.T) {
	const perReady = 30
	nw, r := newLeader(t, 3, func(c *Config) { c.MaxCommittedBytesPerReady = perReady })
	for i := 0; i < 10; i++ {
		if _, err := r.Propose(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
	}
	nw.settle()
	for _, id := range nw.ids {
		if got := len(nw.dataOf(id)); got != 10 {
			t.Fatalf("node %d applied %d entries, want 10", id, got)
		}
	}
	// Replay from scratch on a restarted node to look at single Readys.
	st := nw.nodes[2].st
	f, err := New(Config{ID: 2, Peers: nw.ids, Storage: st, MaxCommittedBytesPerReady: perReady})
	if err != nil {
		t.Fatal(err)
	}
	for f.HasReady() {
		rd := f.Ready()
		size := 0
		for _, e := range rd.Committed {
			size += len(e.Data)
		}
		if len(rd.Committed) > 1 && size > perReady {
			t.Fatalf("Ready carries %d committed bytes > %d", size, perReady)
		}
		f.Advance(rd)
	}
	if f.log.applied != f.log.committed {
		t.Fatalf("applied %d of %d", f.log.applied, f.log.committed)
	}
}

func TestBoundRejectedPerReady(t *testing.T) {
	nw, _ := newLeader(t, 3, nil)
	f := nw.node(2)
	f.propSeq = maxRejectedPerReady + 1
	for seq := 1; seq <= maxRejectedPerReady+1; seq++ {
		_ = f.Step(Message{Type: MsgPropResp, From: 1, To: 2, Index: Index(seq), Reject: true, Hint: Index(RejectBusy)})
	}
	rd := f.Ready()
	if len(rd.Rejected) != maxRejectedPerReady || f.stats.Dropped != 1 {
		t.Fatalf("got %d rejections, %d dropped; want %d and 1", len(rd.Rejected), f.stats.Dropped, maxRejectedPerReady)
	}
}

func TestForwardToLeader(t *testing.T) {
	nw, _ := newLeader(t, 3, nil)
	p, err := nw.node(2).Propose([]byte("fwd"))
	if err != nil || p.Seq == 0 || p.Index != 0 {
		t.Fatalf("follower propose: %+v, %v", p, err)
	}
	nw.settle()
	if got := nw.dataOf(3); len(got) != 1 || got[0] != "fwd" {
		t.Fatalf("node 3 applied %v", got)
	}
}

func TestProposeWithoutLeader(t *testing.T) {
	nw := newNetwork(t, 3, 12, nil)
	if _, err := nw.node(1).Propose([]byte("x")); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("propose with no leader: %v, want ErrNoLeader", err)
	}
}

// TestForwardedProposalRefused: a leader that cannot take a forwarded
// proposal says so, and the forwarder reports it in Ready.Rejected.
func TestForwardedProposalRefused(t *testing.T) {
	nw, r := newLeader(t, 5, func(c *Config) { c.MaxUncommittedBytes = 1010; c.MaxMsgBytes = 1024 })
	nw.isolate(3)
	nw.isolate(4)
	nw.isolate(5) // leader + node 2 are no majority: nothing commits
	if _, err := r.Propose(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	p, err := nw.node(2).Propose(make([]byte, 100))
	if err != nil {
		t.Fatal(err)
	}
	var rej []ProposalRejection
	for range 10 {
		for _, id := range nw.ids {
			if nw.nodes[id].r.HasReady() {
				rd := nw.nodes[id].r.Ready()
				if id == 2 {
					rej = append(rej, rd.Rejected...)
				}
				nw.nodes[id].st.Append(rd.Entries)
				nw.queue = append(nw.queue, rd.Messages...)
				nw.nodes[id].r.Advance(rd)
			}
		}
		for len(nw.queue) > 0 {
			nw.deliverOne()
		}
	}
	if len(rej) != 1 || rej[0].Seq != p.Seq || !errors.Is(rej[0].Err, ErrBusy) {
		t.Fatalf("rejections %+v, want seq %d ErrBusy", rej, p.Seq)
	}
}

func TestConfigValidation(t *testing.T) {
	st := NewMemoryStorage()
	base := func() Config { return Config{ID: 1, Peers: []NodeID{1, 2, 3}, Storage: st} }
	cases := map[string]func(*Config){
		"no ID":          func(c *Config) { c.ID = 0 },
		"no storage":     func(c *Config) { c.Storage = nil },
		"self missing":   func(c *Config) { c.Peers = []NodeID{2, 3} },
		"duplicate peer": func(c *Config) { c.Peers = []NodeID{1, 2, 2} },
		"zero peer":      func(c *Config) { c.Peers = []NodeID{1, 0} },
		"election<=hb":   func(c *Config) { c.ElectionTicks, c.HeartbeatTicks = 5, 5 },
		"negative":       func(c *Config) { c.MaxInflightMsgs = -1 },
		"tiny msg":       func(c *Config) { c.MaxMsgBytes = entryOverheadBytes },
		"budget<entry":   func(c *Config) { c.MaxUncommittedBytes = 10 },
	}
	for name, mut := range cases {
		c := base()
		mut(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New error %v, want ErrConfig", name, err)
		}
	}
	if _, err := New(base()); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

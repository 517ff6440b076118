package raft

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// converge ticks nw until every node applied what the leader applied, or
// fails after limit ticks.
func (nw *network) converge(limit int) {
	nw.t.Helper()
	for i := 0; i < limit; i++ {
		if nw.converged() {
			return
		}
		nw.tick(1)
	}
	for _, id := range nw.ids {
		st := nw.node(id).Status()
		nw.t.Logf("node %d: %v term %d commit %d applied %d last %d stats %+v", id, st.Role, st.Term, st.Commit, st.Applied, st.LastIndex, st.Stats)
	}
	nw.t.Fatalf("no convergence after %d ticks", limit)
}

func (nw *network) converged() bool {
	lead := nw.leader()
	if lead == None {
		return false
	}
	want := nw.node(lead).log.committed
	for _, id := range nw.ids {
		if n := nw.nodes[id]; len(n.applied) == 0 || n.applied[len(n.applied)-1].Index != want {
			return false
		}
	}
	return true
}

func payload(i int) string { return fmt.Sprintf("cmd-%04d-%s", i, strings.Repeat("x", 40)) }

// A follower cut off while the leader compacts its log catches up from a
// snapshot that spans many chunks, and ends with the same applied sequence.
func TestSnapshotCatchUp(t *testing.T) {
	nw := newNetwork(t, 3, 1, nil)
	nw.snapEvery, nw.snapMargin = 50, 5
	nw.elect(1)
	nw.isolate(3)
	for i := range 300 {
		nw.propose(1, payload(i))
	}
	if fi, _ := nw.nodes[1].st.FirstIndex(); fi < 200 {
		t.Fatalf("leader's log starts at %d: not compacted", fi)
	}
	nw.heal()
	nw.converge(200)
	nw.checkApplied()
	if got, want := nw.dataOf(3), nw.dataOf(1); !slices.Equal(got, want) {
		t.Fatalf("node 3 applied %d commands, leader %d", len(got), len(want))
	}
	if s := nw.node(1).Status().Stats; s.SnapshotsSent == 0 {
		t.Fatalf("leader sent no snapshot: %+v", s)
	}
	if s := nw.node(3).Status().Stats; s.SnapshotsInstalled != 1 {
		t.Fatalf("follower installed %d snapshots, want 1", s.SnapshotsInstalled)
	}
	snap, data := nw.nodes[3].st.SnapshotData()
	if snap.Size <= uint64(3*DefaultMaxMsgBytes) || uint64(len(data)) != snap.Size {
		t.Fatalf("snapshot of %d bytes (data %d): want several chunks", snap.Size, len(data))
	}
	// The follower replicates normally afterwards.
	nw.propose(1, "after")
	if d := nw.dataOf(3); d[len(d)-1] != "after" {
		t.Fatalf("follower did not apply the entry after the snapshot: %q", d[len(d)-1])
	}
}

// Over a network that drops, duplicates and reorders messages, snapshot
// transfers still complete and every node converges.
func TestSnapshotLossyNetwork(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			nw := newNetwork(t, 3, seed, nil)
			nw.snapEvery, nw.snapMargin = 40, 3
			nw.elect(1)
			nw.isolate(2)
			for i := range 200 {
				nw.propose(1, payload(i))
			}
			nw.heal()
			nw.dropRate, nw.dupRate, nw.reorder = 0.2, 0.1, true
			nw.converge(3000)
			nw.dropRate, nw.dupRate, nw.reorder = 0, 0, false
			nw.converge(100)
			nw.checkApplied()
			if len(nw.dataOf(2)) != 200 {
				t.Fatalf("seed %d: node 2 applied %d commands, want 200", seed, len(nw.dataOf(2)))
			}
		})
	}
}

// A restarted node that has a snapshot and a compacted log resumes from them.
func TestSnapshotRestart(t *testing.T) {
	nw := newNetwork(t, 3, 2, nil)
	nw.snapEvery, nw.snapMargin = 30, 4
	nw.elect(1)
	for i := range 100 {
		nw.propose(1, payload(i))
	}
	n := nw.nodes[2]
	snap, data := n.st.SnapshotData()
	if snap.IsEmpty() {
		t.Fatal("node 2 took no snapshot")
	}
	applied, err := decodeApplied(data)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{ID: 2, Peers: nw.ids, Storage: n.st, Applied: snap.Index, Seed: 9, ElectionTicks: 10, HeartbeatTicks: 1})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	n.r, n.applied = r, applied
	nw.propose(1, "after restart")
	nw.converge(100)
	nw.checkApplied()
	if d := nw.dataOf(2); len(d) != 101 || d[100] != "after restart" {
		t.Fatalf("restarted node applied %d commands", len(d))
	}
}

// stepSnap steps a MsgSnap chunk from leader 1 (term 2) into r and returns
// the messages r answered with.
func stepSnap(t *testing.T, r *Raft, meta SnapshotMeta, off uint64, data []byte) []Message {
	t.Helper()
	m := Message{Type: MsgSnap, From: 1, To: r.id, Term: 2, Index: meta.Index, LogTerm: meta.Term,
		Commit: Index(off), Hint: Index(uint64(len(snapHeader(meta))) + meta.Size + snapTrailerBytes), Entries: []Entry{{Data: data}}}
	if err := r.Step(m); err != nil {
		t.Fatalf("Step(chunk at %d): %v", off, err)
	}
	out := slices.Clone(r.msgs)
	r.msgs = r.msgs[:0]
	return out
}

// snapStream returns the stream a leader sends for meta and data, and the
// size of its header (the chunk at offset 0).
func snapStream(meta SnapshotMeta, data []byte) ([]byte, int) {
	var tr [4]byte
	putUint32(tr[:], SnapshotCRC(data))
	h := snapHeader(meta)
	return slices.Concat(h, data, tr[:]), len(h)
}

func newFollower(t *testing.T) *Raft {
	r, err := New(Config{ID: 2, Peers: ids(3), Storage: NewMemoryStorage(), ElectionTicks: 10, HeartbeatTicks: 1, MaxInflightMsgs: 4})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The follower accepts chunks in order only: duplicates are acknowledged,
// gaps refused with the offset it holds, and completion answered with
// MsgAppResp and a Ready that installs the snapshot.
func TestSnapshotChunkOrder(t *testing.T) {
	r := newFollower(t)
	data := []byte(strings.Repeat("snapshot data ", 20)) // 280 bytes
	meta := SnapshotMeta{Index: 50, Term: 1, Size: uint64(len(data)), Conf: ConfState{Voters: []NodeID{1, 2, 3}, Learners: []NodeID{4}}}
	s, h := snapStream(meta, data)
	expect := func(out []Message, typ MessageType, commit Index, reject bool) {
		t.Helper()
		if len(out) != 1 || out[0].Type != typ || out[0].Commit != commit || out[0].Reject != reject {
			t.Fatalf("answer %+v, want %v commit %d reject %v", out, typ, commit, reject)
		}
	}
	a, b := h+100, h+200 // chunk boundaries after the header
	at := func(i int) Index { return Index(i) }
	expect(stepSnap(t, r, meta, uint64(h), s[h:a]), MsgSnapResp, 0, true) // no transfer yet
	expect(stepSnap(t, r, meta, 0, s[:h]), MsgSnapResp, at(h), false)
	expect(stepSnap(t, r, meta, uint64(h), s[h:a]), MsgSnapResp, at(a), false)
	expect(stepSnap(t, r, meta, uint64(b), s[b:]), MsgSnapResp, at(a), true)   // gap
	expect(stepSnap(t, r, meta, uint64(h), s[h:a]), MsgSnapResp, at(a), false) // duplicate
	expect(stepSnap(t, r, meta, uint64(a), s[a:b]), MsgSnapResp, at(b), false)
	out := stepSnap(t, r, meta, uint64(b), s[b:])
	if len(out) != 1 || out[0].Type != MsgAppResp || out[0].Index != 50 || out[0].Reject {
		t.Fatalf("completion answered %+v, want MsgAppResp index 50", out)
	}
	rd := r.Ready()
	want := meta
	want.CRC = SnapshotCRC(data)
	if !SameSnapshot(rd.Snapshot, want) || !rd.Snapshot.Conf.Equal(meta.Conf) || len(rd.SnapshotChunks) != 3 || !rd.MustSync || len(rd.Committed) != 0 {
		t.Fatalf("Ready: snapshot %+v chunks %d mustSync %v", rd.Snapshot, len(rd.SnapshotChunks), rd.MustSync)
	}
	var got []byte
	for _, c := range rd.SnapshotChunks {
		if c.Offset != uint64(len(got)) {
			t.Fatalf("chunk at %d after %d bytes", c.Offset, len(got))
		}
		got = append(got, c.Data...)
	}
	if string(got) != string(data) {
		t.Fatal("chunks do not reassemble the snapshot data (without the trailer)")
	}
	if rd.HardState.Commit != 50 {
		t.Fatalf("hard state commit %d, want 50", rd.HardState.Commit)
	}
	st := r.Status()
	if st.Commit != 50 || st.Applied != 50 || st.LastIndex != 50 || st.Stats.SnapshotsInstalled != 1 {
		t.Fatalf("after install: %+v", st)
	}
	if !r.ConfState().Equal(meta.Conf) {
		t.Fatalf("configuration after install %+v, want the snapshot's %+v", r.ConfState(), meta.Conf)
	}
}

// A snapshot whose checksum fails is not installed; the transfer restarts.
func TestSnapshotBadChecksum(t *testing.T) {
	r := newFollower(t)
	data := []byte("some state")
	meta := SnapshotMeta{Index: 7, Term: 1, Size: uint64(len(data))}
	s, h := snapStream(meta, data)
	s[h+3] ^= 1 // damaged in flight, undetected by the frame checksum
	stepSnap(t, r, meta, 0, s[:h])
	r.Advance(r.Ready())
	out := stepSnap(t, r, meta, uint64(h), s[h:])
	if len(out) != 1 || out[0].Type != MsgSnapResp || !out[0].Reject || out[0].Commit != 0 {
		t.Fatalf("answer %+v, want a refusal at offset 0", out)
	}
	rd := r.Ready()
	if !rd.Snapshot.IsEmpty() {
		t.Fatalf("a bad snapshot reached the caller: %+v", rd)
	}
	if st := r.Status(); st.Stats.SnapshotsBad != 1 || st.Commit != 0 {
		t.Fatalf("after a bad snapshot: %+v", st)
	}
}

// Chunks awaiting a Ready are bounded by MaxInflightMsgs; over it they are
// dropped unanswered (the leader resends them).
func TestSnapshotChunkBound(t *testing.T) {
	r := newFollower(t) // MaxInflightMsgs 4
	data := make([]byte, 100)
	meta := SnapshotMeta{Index: 9, Term: 1, Size: uint64(len(data))}
	s, h := snapStream(meta, data)
	stepSnap(t, r, meta, 0, s[:h]) // the header produces no chunk for storage
	for i := range 4 {
		if out := stepSnap(t, r, meta, uint64(h+10*i), s[h+10*i:h+10*i+10]); len(out) != 1 || out[0].Reject {
			t.Fatalf("chunk %d refused: %+v", i, out)
		}
	}
	dropped := r.Status().Stats.Dropped
	if out := stepSnap(t, r, meta, uint64(h+40), s[h+40:h+50]); len(out) != 0 {
		t.Fatalf("chunk over the bound answered: %+v", out)
	}
	if r.Status().Stats.Dropped != dropped+1 {
		t.Fatal("chunk over the bound not counted")
	}
	rd := r.Ready()
	r.Advance(rd)
	if out := stepSnap(t, r, meta, uint64(h+40), s[h+40:h+50]); len(out) != 1 || out[0].Commit != Index(h+50) {
		t.Fatalf("after a Ready the chunk is taken: %+v", out)
	}
}

// A follower whose log already holds the snapshot's last entry takes no
// transfer: it commits up to it and tells the leader.
func TestSnapshotNotNeeded(t *testing.T) {
	st := NewMemoryStorage()
	_ = st.Append([]Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 1}})
	r, err := New(Config{ID: 2, Peers: ids(3), Storage: st, ElectionTicks: 10, HeartbeatTicks: 1})
	if err != nil {
		t.Fatal(err)
	}
	out := stepSnap(t, r, SnapshotMeta{Index: 2, Term: 1, Size: 10}, 0, make([]byte, 14))
	if len(out) != 1 || out[0].Type != MsgAppResp || out[0].Index != 2 {
		t.Fatalf("answer %+v, want MsgAppResp index 2", out)
	}
	if r.log.committed != 2 {
		t.Fatalf("commit %d, want 2", r.log.committed)
	}
}

// Malformed chunks are refused by Step without effect.
func TestSnapshotBadInput(t *testing.T) {
	r := newFollower(t)
	good := Message{Type: MsgSnap, From: 1, To: 2, Term: 2, Index: 5, LogTerm: 1, Commit: 0, Hint: 8, Entries: []Entry{{Data: []byte{0, 0}}}}
	cases := map[string]func(m *Message){
		"no entries":      func(m *Message) { m.Entries = nil },
		"two entries":     func(m *Message) { m.Entries = append(m.Entries, Entry{Data: []byte{1}}) },
		"empty chunk":     func(m *Message) { m.Entries = []Entry{{}} },
		"entry index":     func(m *Message) { m.Entries = []Entry{{Index: 1, Data: []byte{1}}} },
		"beyond stream":   func(m *Message) { m.Commit = 7 },
		"offset overflow": func(m *Message) { m.Commit = ^Index(0) },
		"short stream":    func(m *Message) { m.Hint = 3 },
		"index zero":      func(m *Message) { m.Index = 0 },
		"future term":     func(m *Message) { m.LogTerm = 3 },
	}
	for name, mut := range cases {
		m := good
		mut(&m)
		if err := r.Step(m); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: Step = %v, want ErrInvalidMessage", name, err)
		}
	}
	if r.HasReady() && len(r.Ready().SnapshotChunks) != 0 {
		t.Fatal("a malformed chunk was accepted")
	}
}

// A leader whose snapshot is replaced mid-transfer sends the new one.
func TestSnapshotReplacedMidTransfer(t *testing.T) {
	nw := newNetwork(t, 3, 3, nil)
	nw.snapEvery, nw.snapMargin = 20, 0
	nw.elect(1)
	nw.isolate(3)
	for i := range 100 {
		nw.propose(1, payload(i))
	}
	nw.heal()
	// Let the transfer start, then make the leader take newer snapshots
	// while chunks are in flight.
	nw.node(1).Tick()
	for i := 100; i < 160; i++ {
		if _, err := nw.node(1).Propose([]byte(payload(i))); err != nil {
			t.Fatal(err)
		}
		for nw.process(1) {
		}
		for k := 0; k < 3 && len(nw.queue) > 0; k++ {
			nw.deliverOne()
		}
	}
	nw.converge(500)
	nw.checkApplied()
	if len(nw.dataOf(3)) != 160 {
		t.Fatalf("node 3 applied %d, want 160", len(nw.dataOf(3)))
	}
}

// The stream header is pinned (docs/WIRE.md, wire/testdata/golden/
// snap_header.hex), and a damaged one is refused without touching the
// configuration.
func TestSnapshotHeader(t *testing.T) {
	h := snapHeader(SnapshotMeta{Conf: ConfState{Voters: []NodeID{1, 2, 3}}})
	if got, want := fmt.Sprintf("% x", h), "06 00 03 01 02 03 00 00 2d 8d a9 66"; got != want {
		t.Fatalf("header % x, want %s", h, want)
	}
	for i := range h {
		bad := slices.Clone(h)
		bad[i] ^= 0x10
		if _, ok := parseSnapHeader(bad); ok {
			t.Fatalf("header damaged at byte %d accepted", i)
		}
	}
	r := newFollower(t)
	before := r.ConfState()
	meta := SnapshotMeta{Index: 9, Term: 1, Size: 3, Conf: ConfState{Voters: []NodeID{7, 8, 9}}}
	s, hl := snapStream(meta, []byte("abc"))
	s[3] ^= 0x04 // a voter ID, past the frame check
	out := stepSnap(t, r, meta, 0, s[:hl])
	if len(out) != 1 || !out[0].Reject || r.Status().Stats.SnapshotsBad != 1 || !r.ConfState().Equal(before) {
		t.Fatalf("damaged header: answer %+v, stats %+v, configuration %+v", out, r.Status().Stats, r.ConfState())
	}
}

// A stored term below the log's last term (a crash between a snapshot
// install and the hard state's sync) is raised at start, with no vote.
func TestStartRaisesTermToLog(t *testing.T) {
	st := NewMemoryStorage()
	_ = st.Append([]Entry{{Index: 1, Term: 1}, {Index: 2, Term: 4}})
	st.SetHardState(HardState{Term: 2, Vote: 3, Commit: 1})
	r, err := New(Config{ID: 1, Peers: ids(3), Storage: st, ElectionTicks: 10, HeartbeatTicks: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Term() != 4 || r.vote != None {
		t.Fatalf("term %d vote %d, want 4 and none", r.Term(), r.vote)
	}
	if rd := r.Ready(); rd.HardState.Term != 4 || !rd.MustSync {
		t.Fatalf("the raised term is not persisted: %+v", rd.HardState)
	}
}

// A stale refusal (a delayed copy of an early answer) sends the leader back
// to an offset far behind the follower, which still receives the chunks
// sent before: its answers, beyond what the leader has sent since, must move
// the transfer on rather than be dropped as stale (sim seed 6052: the
// leader, limited to snapAcked + its window, never again reached the
// follower's offset, and the follower answered every chunk as a duplicate).
func TestSnapshotAckBeyondRewind(t *testing.T) {
	nw := newNetwork(t, 3, 1, func(c *Config) { c.MaxInflightMsgs = 2 })
	nw.snapEvery, nw.snapMargin = 50, 5
	nw.elect(1)
	nw.isolate(3)
	for i := range 300 {
		nw.propose(1, payload(i))
	}
	nw.heal()
	lead, f := nw.node(1), nw.node(3)
	window := lead.snapWindowBytes()
	for i := 0; i < 1000 && lead.progressOf(3).state != StateSnapshot; i++ {
		if len(nw.queue) == 0 {
			lead.Tick()
		} else {
			nw.deliverOne()
		}
		for _, id := range nw.ids {
			for nw.process(id) {
			}
		}
	}
	pr := lead.progressOf(3)
	if pr.state != StateSnapshot {
		t.Fatal("no snapshot transfer started")
	}
	hdr := uint64(len(pr.snapHdr))
	if total := hdr + pr.snap.Size + snapTrailerBytes; total < hdr+3*window {
		t.Fatalf("stream of %d bytes: want more than three windows of %d", total, window)
	}
	// Deliver in order until the follower holds more than two windows.
	for f.incoming.received <= hdr+2*window {
		if len(nw.queue) == 0 {
			t.Fatalf("transfer stalled at %d", f.incoming.received)
		}
		nw.deliverOne()
		for _, id := range nw.ids {
			for nw.process(id) {
			}
		}
	}
	// The old refusal of offset hdr arrives; what is in flight is lost.
	if err := lead.Step(Message{Type: MsgSnapResp, From: 3, To: 1, Term: lead.term, Index: pr.snap.Index,
		LogTerm: pr.snap.Term, Commit: Index(hdr), Reject: true}); err != nil {
		t.Fatal(err)
	}
	for nw.process(1) {
	}
	nw.queue = nw.queue[:0]
	nw.converge(100)
	nw.checkApplied()
	if s := f.Status().Stats; s.SnapshotsInstalled != 1 {
		t.Fatalf("follower installed %d snapshots, want 1", s.SnapshotsInstalled)
	}
}

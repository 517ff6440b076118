package raft

// This file checks the claims of §5.1–§5.4 of the Raft paper (Ongaro and
// Ousterhout, "In Search of an Understandable Consensus Algorithm"), one
// test per claim, in the style of etcd-io/raft's raft_paper_test.go. Each
// test's comment states the claim and ends with the section it comes from.
//
// Unless a test says otherwise, nodes run the paper's algorithm: no
// pre-vote phase and no check-quorum lease (paperOpt). Most tests drive a
// single core by hand (paperNode): they step messages into it and read its
// output through Ready, handled the way doc.go prescribes. The rest use the
// network harness of network_test.go. Figure 8 is in figure8_test.go.

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// paperOpt configures the algorithm exactly as the paper describes it.
func paperOpt(c *Config) {
	c.DisablePreVote = true
	c.DisableCheckQuorum = true
}

// withPreVote turns the pre-vote phase back on.
func withPreVote(c *Config) { c.DisablePreVote = false }

// paperNode is one core with its own storage and state machine, driven by
// hand: step delivers a message, flush handles the pending Readys.
type paperNode struct {
	t       *testing.T
	r       *Raft
	st      *MemoryStorage
	applied []Entry
}

// newPaperNode restores node id of an n-member cluster from a log and a
// hard state, as it would be after a restart.
func newPaperNode(t *testing.T, id NodeID, n int, ents []Entry, hs HardState, opts ...func(*Config)) *paperNode {
	t.Helper()
	st := NewMemoryStorage()
	if err := st.Append(ents); err != nil {
		t.Fatalf("storage append: %v", err)
	}
	st.SetHardState(hs)
	cfg := Config{ID: id, Peers: ids(n), Storage: st, Seed: 1, ElectionTicks: 10, HeartbeatTicks: 1}
	paperOpt(&cfg)
	for _, o := range opts {
		o(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &paperNode{t: t, r: r, st: st}
}

// flush handles every pending Ready in doc.go's order (persist, send,
// apply, Advance) and returns the messages sent.
func (p *paperNode) flush() []Message {
	p.t.Helper()
	var msgs []Message
	for p.r.HasReady() {
		rd := p.r.Ready()
		p.persist(rd)
		msgs = append(msgs, cloneMsgs(rd.Messages)...)
		p.applied = append(p.applied, rd.Committed...)
		p.r.Advance(rd)
	}
	return msgs
}

func (p *paperNode) persist(rd Ready) {
	p.t.Helper()
	if !rd.HardState.IsEmpty() {
		p.st.SetHardState(rd.HardState)
	}
	if err := p.st.Append(rd.Entries); err != nil {
		p.t.Fatalf("storage append: %v", err)
	}
}

func cloneMsgs(ms []Message) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		m.Entries = slices.Clone(m.Entries)
		out[i] = m
	}
	return out
}

// step delivers m (addressed to this node) and fails the test if the core
// refuses it as malformed.
func (p *paperNode) step(m Message) {
	p.t.Helper()
	m.To = p.r.id
	if err := p.r.Step(m); err != nil {
		p.t.Fatalf("Step(%+v): %v", m, err)
	}
}

// campaign makes node 1 campaign and grants it votes until it leads.
func (p *paperNode) campaign() {
	p.t.Helper()
	p.r.Campaign()
	p.flush()
	for _, id := range p.r.cfg.Peers {
		if p.r.role == RoleLeader {
			break
		}
		if id != p.r.id {
			p.step(Message{Type: MsgVoteResp, From: id, Term: p.r.term})
		}
	}
	if p.r.role != RoleLeader {
		p.t.Fatalf("node %d did not become leader: role %v term %d", p.r.id, p.r.role, p.r.term)
	}
	p.flush()
}

// newPaperLeader returns node 1 of an n-member cluster, elected leader of
// term 1, with its no-op acknowledged by every follower and committed.
func newPaperLeader(t *testing.T, n int, opts ...func(*Config)) *paperNode {
	t.Helper()
	p := newPaperNode(t, 1, n, nil, HardState{}, opts...)
	p.campaign()
	li := p.r.log.lastIndex()
	for _, id := range p.r.cfg.Peers[1:] {
		p.step(Message{Type: MsgAppResp, From: id, Term: p.r.term, Index: li})
	}
	p.flush()
	if p.r.log.committed != li {
		t.Fatalf("leader's no-op not committed: committed %d, last %d", p.r.log.committed, li)
	}
	return p
}

// paperEnts builds a log whose entry i+1 has term terms[i].
func paperEnts(terms ...Term) []Entry {
	ents := make([]Entry, len(terms))
	for i, tm := range terms {
		ents[i] = Entry{Term: tm, Index: Index(i + 1)}
	}
	return ents
}

// paperBlocks builds a log from runs of equal terms: {term, count}, ...
func paperBlocks(runs ...[2]int) []Entry {
	var terms []Term
	for _, run := range runs {
		for range run[1] {
			terms = append(terms, Term(run[0]))
		}
	}
	return paperEnts(terms...)
}

func lastTermOf(ents []Entry) Term {
	if len(ents) == 0 {
		return 0
	}
	return ents[len(ents)-1].Term
}

// paperEntryAt returns entry i (1 <= i <= lastIndex) of r's log, stable or
// not, without copying the log. The storage must be a *MemoryStorage.
func paperEntryAt(r *Raft, i Index) Entry {
	if u := &r.log.unstable; i >= u.offset {
		return u.entries[i-u.offset]
	}
	ms := r.log.storage.(*MemoryStorage)
	return ms.ents[i-ms.offset()]
}

// paperLogOf returns r's whole log.
func paperLogOf(r *Raft) []Entry {
	var out []Entry
	for i := Index(1); i <= r.log.lastIndex(); i++ {
		out = append(out, paperEntryAt(r, i))
	}
	return out
}

func sameEntry(a, b Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && bytes.Equal(a.Data, b.Data)
}

func sameLog(a, b []Entry) bool { return slices.EqualFunc(a, b, sameEntry) }

// fmtLog renders a log as "index:term" pairs.
func fmtLog(ents []Entry) string {
	var b bytes.Buffer
	for i, e := range ents {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", e.Index, e.Term)
	}
	return "[" + b.String() + "]"
}

func msgsOfType(ms []Message, typ MessageType) []Message {
	var out []Message
	for _, m := range ms {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// paperRestore replaces node id of the harness with one restored from a
// log and a hard state (Config as newNetwork builds it).
func paperRestore(nw *network, id NodeID, seed uint64, ents []Entry, hs HardState, opt func(*Config)) {
	st := NewMemoryStorage()
	if err := st.Append(ents); err != nil {
		nw.t.Fatalf("storage append: %v", err)
	}
	st.SetHardState(hs)
	nw.nodes[id] = &testNode{r: paperNew(nw, id, seed, st, 0, opt), st: st}
}

// paperNew builds node id of nw's cluster on st, with the Config newNetwork
// uses.
func paperNew(nw *network, id NodeID, seed uint64, st *MemoryStorage, applied Index, opt func(*Config)) *Raft {
	cfg := Config{ID: id, Peers: nw.ids, Storage: st, Seed: seed, ElectionTicks: 10, HeartbeatTicks: 1, Applied: applied}
	if opt != nil {
		opt(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		nw.t.Fatalf("New(%d): %v", id, err)
	}
	return r
}

// paperNetwork builds a harness network whose node i+1 starts from logs[i]
// and hss[i].
func paperNetwork(t *testing.T, seed uint64, logs [][]Entry, hss []HardState, opt func(*Config)) *network {
	t.Helper()
	nw := newNetwork(t, len(logs), seed, opt)
	for i, id := range nw.ids {
		paperRestore(nw, id, seed, logs[i], hss[i], opt)
	}
	return nw
}

// ---------------------------------------------------------------------------
// §5.1, §5.2: terms and leader election
// ---------------------------------------------------------------------------

// TestStartAsFollower: "When servers start up, they begin as followers." A
// restarted server is a follower too, in the term and with the vote it
// persisted, and knows no leader.
// Reference: §5.2
func TestStartAsFollower(t *testing.T) {
	for _, hs := range []HardState{{}, {Term: 5, Vote: 2, Commit: 1}} {
		var log []Entry
		if hs.Term > 0 {
			log = paperEnts(1, 5) // a stored term is never below the log's (see TestStartRaisesTermToLog)
		}
		p := newPaperNode(t, 1, 3, log, hs)
		if p.r.role != RoleFollower || p.r.term != hs.Term || p.r.vote != hs.Vote || p.r.lead != None {
			t.Errorf("after start from %+v: role %v term %d vote %d lead %d; want follower, term %d, vote %d, no leader",
				hs, p.r.role, p.r.term, p.r.vote, p.r.lead, hs.Term, hs.Vote)
		}
	}
}

// paperInRole returns node 1 of a 3-member cluster in role, starting from
// term 1 (a pre-candidate stays in term 1, a candidate and a leader are in
// term 2).
func paperInRole(t *testing.T, role Role) *paperNode {
	t.Helper()
	var p *paperNode
	if role == RolePreCandidate {
		p = newPaperNode(t, 1, 3, nil, HardState{Term: 1}, withPreVote)
	} else {
		p = newPaperNode(t, 1, 3, nil, HardState{Term: 1})
	}
	switch role {
	case RolePreCandidate, RoleCandidate:
		p.r.Campaign()
		p.flush()
	case RoleLeader:
		p.campaign()
	}
	if p.r.role != role {
		t.Fatalf("could not make a %v: role %v", role, p.r.role)
	}
	return p
}

// TestUpdateTermFromMessage: "Current terms are exchanged whenever servers
// communicate; if one server's current term is smaller than the other's,
// then it updates its current term to the larger value. If a candidate or
// leader discovers that its term is out of date, it immediately reverts to
// follower state." Checked for every role and for requests and responses;
// the new term is persisted.
// Reference: §5.1
func TestUpdateTermFromMessage(t *testing.T) {
	msgs := []struct {
		typ    MessageType
		reject bool
		lead   NodeID // the leader the receiver learns, if any
	}{
		{MsgApp, false, 3},
		{MsgHeartbeat, false, 3},
		{MsgVote, false, None},
		{MsgAppResp, false, None},
		{MsgVoteResp, true, None},
		{MsgHeartbeatResp, false, None},
	}
	for _, role := range []Role{RoleFollower, RolePreCandidate, RoleCandidate, RoleLeader} {
		for _, m := range msgs {
			t.Run(fmt.Sprintf("%v/%v", role, m.typ), func(t *testing.T) {
				p := paperInRole(t, role)
				newTerm := p.r.term + 2
				p.step(Message{Type: m.typ, From: 3, Term: newTerm, Reject: m.reject})
				if p.r.term != newTerm || p.r.role != RoleFollower || p.r.lead != m.lead {
					t.Fatalf("role %v term %d lead %d; want follower of %d in term %d",
						p.r.role, p.r.term, p.r.lead, m.lead, newTerm)
				}
				p.flush()
				if got := p.st.hs.Term; got != newTerm {
					t.Fatalf("persisted term %d, want %d", got, newTerm)
				}
			})
		}
	}
}

// TestRejectStaleTermMessage: "If a server receives a request with a stale
// term number, it rejects the request." Nothing a stale message carries
// changes the receiver: not its term, vote, leader, log or commit index. A
// stale AppendEntries or heartbeat is answered with the receiver's term,
// which makes the stale leader step down.
// Reference: §5.1
func TestRejectStaleTermMessage(t *testing.T) {
	stale := []Message{
		{Type: MsgApp, Index: 2, LogTerm: 2, Commit: 3, Entries: []Entry{{Term: 2, Index: 3}}},
		{Type: MsgHeartbeat, Commit: 2},
		{Type: MsgVote, Index: 9, LogTerm: 2},
		{Type: MsgAppResp, Index: 2},
		{Type: MsgVoteResp},
		{Type: MsgHeartbeatResp},
	}
	for _, m := range stale {
		t.Run(m.Type.String(), func(t *testing.T) {
			p := newPaperNode(t, 1, 3, paperEnts(1, 2), HardState{Term: 3, Commit: 1})
			m.From, m.Term = 2, 2
			p.step(m)
			out := p.flush()
			if p.r.term != 3 || p.r.vote != None || p.r.lead != None || p.r.role != RoleFollower ||
				p.r.log.lastIndex() != 2 || p.r.log.committed != 1 {
				t.Fatalf("stale %v changed the node: role %v term %d vote %d lead %d last %d commit %d",
					m.Type, p.r.role, p.r.term, p.r.vote, p.r.lead, p.r.log.lastIndex(), p.r.log.committed)
			}
			// A stale leader gets a MsgAppResp, a stale candidate a
			// refused vote, both carrying our term (§5.1).
			want := MsgAppResp
			if m.Type == MsgVote {
				want = MsgVoteResp
			}
			for _, o := range out {
				if o.Type != want || o.Term != 3 || o.To != 2 || (want == MsgVoteResp && !o.Reject) {
					t.Fatalf("stale %v answered with %+v; want at most a %v of term 3", m.Type, o, want)
				}
			}
			if (m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgVote) != (len(out) == 1) {
				t.Fatalf("stale %v answered with %d messages", m.Type, len(out))
			}
			if len(out) == 1 {
				// The answer deposes the stale leader (or candidate) of term 2.
				lead := newPaperNode(t, 2, 3, nil, HardState{Term: 1})
				lead.campaign()
				out[0].From = 1
				lead.step(out[0])
				if lead.r.role != RoleFollower || lead.r.term != 3 {
					t.Fatalf("stale leader after the answer: role %v term %d; want follower in term 3", lead.r.role, lead.r.term)
				}
			}
		})
	}
}

// TestLeaderBcastBeat: "Leaders send periodic heartbeats (AppendEntries RPCs
// that carry no log entries) to all followers in order to maintain their
// authority." A heartbeat goes to every follower every HeartbeatTicks, in
// the leader's term, carrying the commit index capped at what the follower
// is known to store.
// Reference: §5.2
func TestLeaderBcastBeat(t *testing.T) {
	const hb = 3
	p := newPaperNode(t, 1, 3, nil, HardState{}, func(c *Config) { c.HeartbeatTicks = hb })
	p.campaign()
	// Only node 2 acknowledges the no-op: it commits (2 of 3), and node 3 is
	// not known to store it.
	p.step(Message{Type: MsgAppResp, From: 2, Term: 1, Index: 1})
	p.flush()
	if p.r.log.committed != 1 {
		t.Fatalf("no-op not committed")
	}
	for period := range 5 {
		for range hb - 1 {
			p.r.Tick()
		}
		if hbs := msgsOfType(p.flush(), MsgHeartbeat); len(hbs) != 0 {
			t.Fatalf("period %d: heartbeats before %d ticks: %+v", period, hb, hbs)
		}
		p.r.Tick()
		got := msgsOfType(p.flush(), MsgHeartbeat)
		// Index numbers the rounds (for ReadIndex confirmation).
		seq := Index(period + 1)
		want := []Message{
			{Type: MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: 1, Index: seq},
			{Type: MsgHeartbeat, From: 1, To: 3, Term: 1, Commit: 0, Index: seq},
		}
		if !slices.EqualFunc(got, want, func(a, b Message) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
			t.Fatalf("period %d: heartbeats %+v, want %+v", period, got, want)
		}
	}
}

// testNonleaderStartElection checks that a follower or candidate that hears
// nothing for its election timeout starts an election: it increments its
// term, votes for itself, persists both, then sends RequestVote (with its
// last log index and term, §5.4.1) to every other server.
func testNonleaderStartElection(t *testing.T, role Role) {
	p := newPaperNode(t, 1, 3, paperEnts(1, 1), HardState{Term: 1})
	if role == RoleCandidate {
		p.r.Campaign()
		p.flush()
	}
	term := p.r.term
	for range p.r.randomizedElectionTimeout - 1 {
		p.r.Tick()
	}
	if p.r.term != term || p.r.HasReady() {
		t.Fatalf("election started before the timeout: term %d", p.r.term)
	}
	p.r.Tick()
	if p.r.role != RoleCandidate || p.r.term != term+1 || p.r.vote != 1 {
		t.Fatalf("after the timeout: role %v term %d vote %d; want candidate, term %d, vote 1",
			p.r.role, p.r.term, p.r.vote, term+1)
	}
	rd := p.r.Ready()
	if want := (HardState{Term: term + 1, Vote: 1}); rd.HardState != want || !rd.MustSync {
		t.Fatalf("Ready.HardState %+v MustSync %v; want %+v to be synced before the votes are sent", rd.HardState, rd.MustSync, want)
	}
	want := []Message{
		{Type: MsgVote, From: 1, To: 2, Term: term + 1, Index: 2, LogTerm: 1},
		{Type: MsgVote, From: 1, To: 3, Term: term + 1, Index: 2, LogTerm: 1},
	}
	if got := cloneMsgs(rd.Messages); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %+v, want %+v", got, want)
	}
}

// TestFollowerStartElection: "If a follower receives no communication over a
// period of time called the election timeout, then it assumes there is no
// viable leader and begins an election to choose a new leader. To begin an
// election, a follower increments its current term and transitions to
// candidate state. It then votes for itself and issues RequestVote RPCs in
// parallel to each of the other servers in the cluster."
// Reference: §5.2
func TestFollowerStartElection(t *testing.T) { testNonleaderStartElection(t, RoleFollower) }

// TestCandidateStartNewElection: "if many followers become candidates at the
// same time, votes could be split so that no candidate obtains a majority.
// When this happens, each candidate will time out and start a new election
// by incrementing its term and initiating another round of RequestVote
// RPCs."
// Reference: §5.2
func TestCandidateStartNewElection(t *testing.T) { testNonleaderStartElection(t, RoleCandidate) }

// TestPreVoteDoesNotIncrementTerm: with the pre-vote phase (Ongaro's
// dissertation §9.6, an extension of the election of §5.2), a follower whose
// election timeout elapses first asks whether it could win the next term:
// it sends MsgPreVote for term+1 but changes neither its term nor its vote,
// so it has nothing to persist. A voter answers a pre-vote without adopting
// the term. Only a majority of pre-votes makes it a real candidate, which
// then increments its term as in §5.2.
// Reference: §5.2
func TestPreVoteDoesNotIncrementTerm(t *testing.T) {
	p := newPaperNode(t, 1, 3, paperEnts(1, 1), HardState{Term: 1}, withPreVote)
	for range p.r.randomizedElectionTimeout {
		p.r.Tick()
	}
	if p.r.role != RolePreCandidate || p.r.term != 1 || p.r.vote != None {
		t.Fatalf("after the timeout: role %v term %d vote %d; want pre-candidate in term 1 with no vote", p.r.role, p.r.term, p.r.vote)
	}
	rd := p.r.Ready()
	if !rd.HardState.IsEmpty() || rd.MustSync {
		t.Fatalf("pre-candidate has state to persist: %+v (MustSync %v)", rd.HardState, rd.MustSync)
	}
	want := []Message{
		{Type: MsgPreVote, From: 1, To: 2, Term: 2, Index: 2, LogTerm: 1},
		{Type: MsgPreVote, From: 1, To: 3, Term: 2, Index: 2, LogTerm: 1},
	}
	if got := cloneMsgs(rd.Messages); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %+v, want %+v", got, want)
	}
	p.r.Advance(rd)

	// The voter grants the pre-vote for term 2 and stays in term 1.
	voter := newPaperNode(t, 2, 3, paperEnts(1, 1), HardState{Term: 1}, withPreVote)
	voter.step(want[0])
	resp := voter.flush()
	if voter.r.term != 1 || voter.r.vote != None || voter.st.hs.Term != 1 {
		t.Fatalf("voter adopted the pre-vote: term %d vote %d", voter.r.term, voter.r.vote)
	}
	if len(resp) != 1 || resp[0].Type != MsgPreVoteResp || resp[0].Reject || resp[0].Term != 2 {
		t.Fatalf("voter answered %+v, want a MsgPreVoteResp grant for term 2", resp)
	}

	// With that grant (2 of 3) the pre-candidate starts the real election.
	resp[0].To = 1
	p.step(resp[0])
	if p.r.role != RoleCandidate || p.r.term != 2 || p.r.vote != 1 {
		t.Fatalf("after winning the pre-vote: role %v term %d vote %d; want candidate in term 2", p.r.role, p.r.term, p.r.vote)
	}
	if votes := msgsOfType(p.flush(), MsgVote); len(votes) != 2 || votes[0].Term != 2 {
		t.Fatalf("candidate sent %+v, want MsgVote for term 2 to both peers", votes)
	}
}

// TestLeaderElectionInOneRoundRPC: "A candidate wins an election if it
// receives votes from a majority of the servers in the full cluster for the
// same term." Until a majority has answered either way it stays a
// candidate; once a majority has refused, it cannot win the term and goes
// back to being a follower.
// Reference: §5.2
func TestLeaderElectionInOneRoundRPC(t *testing.T) {
	tests := []struct {
		size  int
		votes map[NodeID]bool // granted?
		want  Role
	}{
		// win the election when receiving votes from a majority
		{1, nil, RoleLeader},
		{3, map[NodeID]bool{2: true, 3: true}, RoleLeader},
		{3, map[NodeID]bool{2: true}, RoleLeader},
		{5, map[NodeID]bool{2: true, 3: true, 4: true, 5: true}, RoleLeader},
		{5, map[NodeID]bool{2: true, 3: true, 4: true}, RoleLeader},
		{5, map[NodeID]bool{2: true, 3: true}, RoleLeader},
		{5, map[NodeID]bool{2: true, 3: true, 4: false, 5: false}, RoleLeader},
		// stay a candidate while the outcome is open
		{3, nil, RoleCandidate},
		{3, map[NodeID]bool{2: false}, RoleCandidate},
		{5, map[NodeID]bool{2: true}, RoleCandidate},
		{5, map[NodeID]bool{2: false, 3: false}, RoleCandidate},
		{5, map[NodeID]bool{2: true, 3: false, 4: false}, RoleCandidate},
		// return to follower when a majority refused
		{3, map[NodeID]bool{2: false, 3: false}, RoleFollower},
		{5, map[NodeID]bool{2: false, 3: false, 4: false}, RoleFollower},
		{5, map[NodeID]bool{2: true, 3: false, 4: false, 5: false}, RoleFollower},
	}
	for i, tt := range tests {
		p := newPaperNode(t, 1, tt.size, nil, HardState{})
		p.r.Campaign()
		p.flush()
		for _, id := range slices.Sorted(maps.Keys(tt.votes)) {
			p.step(Message{Type: MsgVoteResp, From: id, Term: p.r.term, Reject: !tt.votes[id]})
		}
		if p.r.role != tt.want || p.r.term != 1 {
			t.Errorf("#%d (size %d, votes %v): role %v term %d, want %v in term 1", i, tt.size, tt.votes, p.r.role, p.r.term, tt.want)
		}
		if wantLead := NodeID(1); (tt.want == RoleLeader) != (p.r.lead == wantLead) {
			t.Errorf("#%d: lead %d", i, p.r.lead)
		}
	}
}

// TestFollowerVote: "Each server will vote for at most one candidate in a
// given term, on a first-come-first-served basis." A vote is persisted
// before the grant is sent; a repeated request from the candidate voted for
// is granted again (it may have lost the first answer).
// Reference: §5.2
func TestFollowerVote(t *testing.T) {
	tests := []struct {
		vote, from NodeID
		reject     bool
	}{
		{None, 2, false},
		{None, 3, false},
		{2, 2, false},
		{3, 3, false},
		{2, 3, true},
		{3, 2, true},
	}
	for i, tt := range tests {
		p := newPaperNode(t, 1, 3, nil, HardState{Term: 1, Vote: tt.vote})
		p.step(Message{Type: MsgVote, From: tt.from, Term: 1})
		out := p.flush()
		want := Message{Type: MsgVoteResp, From: 1, To: tt.from, Term: 1, Reject: tt.reject}
		if len(out) != 1 || fmt.Sprint(out[0]) != fmt.Sprint(want) {
			t.Errorf("#%d: sent %+v, want %+v", i, out, want)
		}
		wantVote := tt.vote
		if !tt.reject {
			wantVote = tt.from
		}
		if p.r.vote != wantVote || p.st.hs.Vote != wantVote {
			t.Errorf("#%d: vote %d (persisted %d), want %d", i, p.r.vote, p.st.hs.Vote, wantVote)
		}
	}

	t.Run("first-come-first-served", func(t *testing.T) {
		p := newPaperNode(t, 1, 3, nil, HardState{Term: 1})
		for i, c := range []struct {
			from   NodeID
			reject bool
		}{{2, false}, {3, true}, {2, false}, {3, true}} {
			p.step(Message{Type: MsgVote, From: c.from, Term: 2})
			rd := p.r.Ready()
			if len(rd.Messages) != 1 || rd.Messages[0].Reject != c.reject {
				t.Fatalf("request %d from %d: answered %+v, want reject=%v", i, c.from, rd.Messages, c.reject)
			}
			if i == 0 && (rd.HardState != HardState{Term: 2, Vote: 2} || !rd.MustSync) {
				t.Fatalf("the vote is not persisted with the grant: HardState %+v MustSync %v", rd.HardState, rd.MustSync)
			}
			p.persist(rd)
			p.r.Advance(rd)
		}
	})
}

// TestCandidateFallback: "While waiting for votes, a candidate may receive
// an AppendEntries RPC from another server claiming to be leader. If the
// leader's term (included in its RPC) is at least as large as the
// candidate's current term, then the candidate recognizes the leader as
// legitimate and returns to follower state." This holds for pre-candidates
// too.
// Reference: §5.2
func TestCandidateFallback(t *testing.T) {
	for _, role := range []Role{RoleCandidate, RolePreCandidate} {
		for _, typ := range []MessageType{MsgApp, MsgHeartbeat} {
			for _, delta := range []Term{0, 1} {
				p := paperInRole(t, role)
				term := p.r.term + delta
				p.step(Message{Type: typ, From: 2, Term: term})
				if p.r.role != RoleFollower || p.r.term != term || p.r.lead != 2 {
					t.Errorf("%v receiving %v of term %d: role %v term %d lead %d; want follower of 2 in term %d",
						role, typ, term, p.r.role, p.r.term, p.r.lead, term)
				}
			}
		}
	}
}

// TestElectionTimeoutRandomized: "Raft uses randomized election timeouts ...
// election timeouts are chosen randomly from a fixed interval (e.g.,
// 150–300ms)." Here the interval is [E, 2E) ticks; a new timeout is drawn
// whenever the timer is reset, for followers and candidates alike.
// Reference: §5.2
func TestElectionTimeoutRandomized(t *testing.T) {
	for _, role := range []Role{RoleFollower, RoleCandidate} {
		t.Run(role.String(), func(t *testing.T) {
			p := newPaperNode(t, 1, 3, nil, HardState{Term: 1})
			e := p.r.cfg.ElectionTicks
			if role == RoleCandidate {
				p.r.Campaign()
				p.flush()
			}
			seen := map[int]int{}
			for round := range 1000 {
				if role == RoleFollower {
					// A heartbeat of a new term makes it a follower again and
					// resets its timer.
					p.step(Message{Type: MsgHeartbeat, From: 2, Term: p.r.term + 1})
				}
				p.flush()
				term, ticks := p.r.term, 0
				for p.r.term == term {
					p.r.Tick()
					if ticks++; ticks > 2*e {
						t.Fatalf("round %d: no election after %d ticks", round, ticks)
					}
				}
				if ticks < e || ticks >= 2*e {
					t.Fatalf("round %d: election timeout %d ticks, outside [%d, %d)", round, ticks, e, 2*e)
				}
				seen[ticks]++
			}
			if len(seen) != e {
				t.Fatalf("timeouts drawn over 1000 resets: %v; want every value of [%d, %d)", seen, e, 2*e)
			}
		})
	}
}

// TestElectionTimeoutNonconflict: randomized election timeouts ensure that
// "in most cases only a single server will time out; it wins the election
// and sends heartbeats before any other servers time out." Over many rounds
// in which every node's timer is reset at the same moment, more than one
// node timing out on the same tick must be rare (independent uniform draws
// from [10, 20) give about 15% for 3 nodes and 23% for 5). The nodes share
// one Config.Seed, as the harness's do; the core mixes the node ID in.
// Reference: §5.2
func TestElectionTimeoutNonconflict(t *testing.T) {
	for _, tt := range []struct {
		size int
		role Role
	}{{3, RoleFollower}, {5, RoleFollower}, {3, RoleCandidate}, {5, RoleCandidate}} {
		t.Run(fmt.Sprintf("%d-%v", tt.size, tt.role), func(t *testing.T) {
			nodes := make([]*paperNode, tt.size)
			for i := range nodes {
				nodes[i] = newPaperNode(t, NodeID(i+1), tt.size, nil, HardState{Term: 1})
			}
			const rounds = 1000
			conflicts := 0
			for range rounds {
				terms := make([]Term, tt.size)
				for i, p := range nodes {
					if tt.role == RoleFollower {
						from := NodeID(i+1)%NodeID(tt.size) + 1
						p.step(Message{Type: MsgHeartbeat, From: from, Term: p.r.term + 1})
					} else {
						p.r.Campaign()
					}
					p.flush()
					terms[i] = p.r.term
				}
				for fired := 0; fired == 0; {
					for i, p := range nodes {
						p.r.Tick()
						if p.r.term != terms[i] {
							fired++
						}
					}
					if fired > 1 {
						conflicts++
					}
				}
			}
			rate := float64(conflicts) / rounds
			t.Logf("%d of %d rounds had several nodes time out at once (%.3f)", conflicts, rounds, rate)
			if rate > 0.3 {
				t.Fatalf("conflict rate %.2f > 0.3: timeouts are not independent across nodes", rate)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// §5.3: log replication
// ---------------------------------------------------------------------------

// TestLeaderStartReplication: "Once a leader has been elected, it begins
// servicing client requests. ... The leader appends the command to its log
// as a new entry, then issues AppendEntries RPCs in parallel to each of the
// other servers to replicate the entry." Each RPC names the entry preceding
// the new ones (prevLogIndex, prevLogTerm) and the leader's commit index.
// Reference: §5.3
func TestLeaderStartReplication(t *testing.T) {
	p := newPaperLeader(t, 3)
	li := p.r.log.lastIndex()
	data := []byte("some data")
	prop, err := p.r.Propose(data)
	if err != nil || prop.Term != 1 || prop.Index != li+1 {
		t.Fatalf("Propose = %+v, %v; want term 1 index %d", prop, err, li+1)
	}
	rd := p.r.Ready()
	wantEnt := Entry{Term: 1, Index: li + 1, Type: EntryNormal, Data: data}
	if !sameLog(rd.Entries, []Entry{wantEnt}) {
		t.Fatalf("entries to persist %+v, want %+v", rd.Entries, wantEnt)
	}
	want := []Message{
		{Type: MsgApp, From: 1, To: 2, Term: 1, Index: li, LogTerm: 1, Commit: li, Entries: []Entry{wantEnt}},
		{Type: MsgApp, From: 1, To: 3, Term: 1, Index: li, LogTerm: 1, Commit: li, Entries: []Entry{wantEnt}},
	}
	if got := cloneMsgs(rd.Messages); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages\n%+v\nwant\n%+v", got, want)
	}
	p.persist(rd)
	p.r.Advance(rd)
	if !sameEntry(paperEntryAt(p.r, li+1), wantEnt) {
		t.Fatalf("leader's log does not hold the new entry")
	}
}

// TestLeaderInitNextIndex: "The leader maintains a nextIndex for each
// follower, which is the index of the next log entry the leader will send
// to that follower. When a leader first comes to power, it initializes all
// nextIndex values to the index just after the last one in its log (11 in
// Figure 7)." Its first AppendEntries therefore carries only its new
// no-op, after prevLogIndex 10 of term 6; a follower whose log already
// matches is not sent the entries it has.
// Reference: §5.3
func TestLeaderInitNextIndex(t *testing.T) {
	fig7 := paperEnts(1, 1, 1, 4, 4, 5, 5, 6, 6, 6)
	p := newPaperNode(t, 1, 3, fig7, HardState{Term: 7})
	p.r.Campaign()
	p.flush()
	p.step(Message{Type: MsgVoteResp, From: 2, Term: 8})
	if p.r.role != RoleLeader {
		t.Fatalf("not elected")
	}
	for _, id := range []NodeID{2, 3} {
		if next := p.r.progressOf(id).next; next != 11 {
			t.Errorf("nextIndex[%d] = %d, want 11", id, next)
		}
	}
	noop := Entry{Term: 8, Index: 11, Type: EntryNoop}
	want := []Message{
		{Type: MsgApp, From: 1, To: 2, Term: 8, Index: 10, LogTerm: 6, Entries: []Entry{noop}},
		{Type: MsgApp, From: 1, To: 3, Term: 8, Index: 10, LogTerm: 6, Entries: []Entry{noop}},
	}
	if got := msgsOfType(p.flush(), MsgApp); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first AppendEntries after the election:\n%+v\nwant\n%+v", got, want)
	}
}

// TestLeaderCommitEntry: "When the entry has been safely replicated, the
// leader applies the entry to its state machine ... A log entry is committed
// once the leader that created the entry has replicated it on a majority of
// the servers ... The leader keeps track of the highest index it knows to be
// committed, and it includes that index in future AppendEntries RPCs
// (including heartbeats) so that the other servers eventually find out."
// Reference: §5.3
func TestLeaderCommitEntry(t *testing.T) {
	p := newPaperLeader(t, 3)
	li := p.r.log.lastIndex()
	if _, err := p.r.Propose([]byte("some data")); err != nil {
		t.Fatal(err)
	}
	p.flush()
	p.applied = nil
	var out []Message
	for _, id := range []NodeID{2, 3} {
		p.step(Message{Type: MsgAppResp, From: id, Term: 1, Index: li + 1})
		out = append(out, p.flush()...)
	}
	if p.r.log.committed != li+1 {
		t.Fatalf("committed %d, want %d", p.r.log.committed, li+1)
	}
	if len(p.applied) != 1 || p.applied[0].Index != li+1 || string(p.applied[0].Data) != "some data" {
		t.Fatalf("applied %+v, want the entry at %d", p.applied, li+1)
	}
	apps := msgsOfType(out, MsgApp)
	if len(apps) != 2 {
		t.Fatalf("after the commit the leader sent %+v; want a MsgApp to each follower", out)
	}
	for _, m := range apps {
		if m.Commit != li+1 {
			t.Fatalf("MsgApp to %d carries commit %d, want %d", m.To, m.Commit, li+1)
		}
	}
	p.r.Tick() // the next heartbeats carry it too
	for _, m := range msgsOfType(p.flush(), MsgHeartbeat) {
		if m.Commit != li+1 {
			t.Fatalf("heartbeat to %d carries commit %d, want %d", m.To, m.Commit, li+1)
		}
	}
}

// TestLeaderAcknowledgeCommit: "A log entry is committed once the leader
// that created the entry has replicated it on a majority of the servers."
// Not before: the entry stays uncommitted while fewer than a majority
// (the leader included) store it. Checked for each cluster size and each
// number of acknowledgements.
// Reference: §5.3
func TestLeaderAcknowledgeCommit(t *testing.T) {
	for _, size := range []int{1, 2, 3, 4, 5, 7} {
		p := newPaperLeader(t, size)
		li := p.r.log.lastIndex()
		if _, err := p.r.Propose([]byte("some data")); err != nil {
			t.Fatal(err)
		}
		p.flush()
		quorum := size/2 + 1
		for acks := 0; acks < size; acks++ {
			if acks > 0 {
				p.step(Message{Type: MsgAppResp, From: NodeID(acks + 1), Term: 1, Index: li + 1})
				p.flush()
			}
			stored := acks + 1 // the leader's own copy counts
			if got, want := p.r.log.committed == li+1, stored >= quorum; got != want {
				t.Errorf("size %d, stored on %d: committed=%v, want %v", size, stored, got, want)
			}
		}
	}
}

// TestLeaderCommitPrecedingEntries: "This also commits all preceding entries
// in the leader's log, including entries created by previous leaders." The
// leader starts with a log of earlier terms; committing a new entry commits
// those too, and they are applied in log order.
// Reference: §5.3
func TestLeaderCommitPrecedingEntries(t *testing.T) {
	for i, prior := range [][]Entry{
		{},
		paperEnts(2),
		paperEnts(1, 2),
		paperEnts(1),
		paperEnts(1, 1, 2, 2),
	} {
		p := newPaperNode(t, 1, 3, prior, HardState{Term: 2})
		p.campaign() // term 3, no-op at len(prior)+1
		if _, err := p.r.Propose([]byte("some data")); err != nil {
			t.Fatal(err)
		}
		p.flush()
		li := p.r.log.lastIndex()
		for _, id := range []NodeID{2, 3} {
			p.step(Message{Type: MsgAppResp, From: id, Term: 3, Index: li})
		}
		p.flush()
		want := append(slices.Clone(prior),
			Entry{Term: 3, Index: li - 1, Type: EntryNoop},
			Entry{Term: 3, Index: li, Data: []byte("some data")})
		if p.r.log.committed != li || !sameLog(p.applied, want) {
			t.Errorf("#%d: committed %d applied %s; want %d and %s", i, p.r.log.committed, fmtLog(p.applied), li, fmtLog(want))
		}
	}
}

// TestFollowerCommitEntry: "Once a follower learns that a log entry is
// committed, it applies the entry to its local state machine (in log
// order)." The follower commits up to min(leaderCommit, index of the last
// new entry) (Figure 2).
// Reference: §5.3
func TestFollowerCommitEntry(t *testing.T) {
	ent := func(i Index, s string) Entry { return Entry{Term: 1, Index: i, Data: []byte(s)} }
	tests := []struct {
		ents   []Entry
		commit Index
		want   Index
	}{
		{[]Entry{ent(1, "some data")}, 1, 1},
		{[]Entry{ent(1, "some data"), ent(2, "some data2")}, 2, 2},
		{[]Entry{ent(1, "some data2"), ent(2, "some data")}, 2, 2},
		{[]Entry{ent(1, "some data"), ent(2, "some data2")}, 1, 1},
		{[]Entry{ent(1, "some data"), ent(2, "some data2")}, 5, 2},
	}
	for i, tt := range tests {
		p := newPaperNode(t, 1, 3, nil, HardState{Term: 1})
		p.step(Message{Type: MsgApp, From: 2, Term: 1, Commit: tt.commit, Entries: tt.ents})
		p.flush()
		if p.r.log.committed != tt.want || !sameLog(p.applied, tt.ents[:tt.want]) {
			t.Errorf("#%d: committed %d applied %s; want %d and %s", i, p.r.log.committed, fmtLog(p.applied), tt.want, fmtLog(tt.ents[:tt.want]))
		}
	}

	t.Run("in log order", func(t *testing.T) {
		p := newPaperNode(t, 1, 3, nil, HardState{Term: 1})
		var sent []Entry
		for i := Index(1); i <= 20; i++ {
			e := ent(i, fmt.Sprint("v", i))
			sent = append(sent, e)
			prevTerm := Term(1)
			if i == 1 {
				prevTerm = 0
			}
			// The leader's commit index trails its log by a varying amount.
			p.step(Message{Type: MsgApp, From: 2, Term: 1, Index: i - 1, LogTerm: prevTerm, Commit: i - i%4, Entries: []Entry{e}})
			if i%3 == 0 {
				p.flush()
			}
		}
		p.step(Message{Type: MsgHeartbeat, From: 2, Term: 1, Commit: 20})
		p.flush()
		if !sameLog(p.applied, sent) {
			t.Fatalf("applied %s, want %s", fmtLog(p.applied), fmtLog(sent))
		}
	})
}

// checkConflictHint verifies a rejection against the follower's log as
// MsgAppResp documents it: Index is the rejected MsgApp's Index; Hint is
// the largest index <= Index (and <= the follower's last index) whose term,
// LogTerm, is <= the rejected LogTerm.
func checkConflictHint(t *testing.T, r *Raft, app, resp Message) {
	t.Helper()
	if resp.Index != app.Index {
		t.Fatalf("rejection Index %d, want the rejected prevIndex %d", resp.Index, app.Index)
	}
	top := min(app.Index, r.log.lastIndex())
	if resp.Hint > top || resp.LogTerm > app.LogTerm {
		t.Fatalf("hint (%d, %d) beyond (index %d, term %d)", resp.Hint, resp.LogTerm, top, app.LogTerm)
	}
	if tm, _ := r.log.term(resp.Hint); tm != resp.LogTerm {
		t.Fatalf("hint (%d, %d), but the follower's entry %d has term %d", resp.Hint, resp.LogTerm, resp.Hint, tm)
	}
	for j := resp.Hint + 1; j <= top; j++ {
		if tm, _ := r.log.term(j); tm <= app.LogTerm {
			t.Fatalf("hint %d is not the largest: entry %d has term %d <= %d", resp.Hint, j, tm, app.LogTerm)
		}
	}
}

// TestFollowerCheckMsgApp: "When sending an AppendEntries RPC, the leader
// includes the index and term of the entry in its log that immediately
// precedes the new entries. If the follower does not find an entry in its
// log with the same index and term, then it refuses the new entries." The
// refusal carries a conflict hint that lets the leader skip a whole term
// per round trip (the optimization at the end of §5.3).
// Reference: §5.3
func TestFollowerCheckMsgApp(t *testing.T) {
	tests := []struct {
		index   Index
		logTerm Term
		// the answer
		reject  bool
		wIndex  Index
		hint    Index
		hintTrm Term
	}{
		// match with committed entries
		{0, 0, false, 1, 0, 0},
		{1, 1, false, 1, 0, 0},
		// match with uncommitted entries
		{2, 2, false, 2, 0, 0},
		{3, 2, false, 3, 0, 0},
		// unmatched: wrong term at prevIndex
		{3, 3, true, 3, 3, 2},
		{3, 1, true, 3, 1, 1},
		{2, 1, true, 2, 1, 1},
		// unmatched: prevIndex beyond the log
		{4, 2, true, 4, 3, 2},
		{9, 4, true, 9, 3, 2},
	}
	for i, tt := range tests {
		p := newPaperNode(t, 1, 3, paperEnts(1, 2, 2), HardState{Term: 4, Commit: 1})
		app := Message{Type: MsgApp, From: 2, Term: 4, Index: tt.index, LogTerm: tt.logTerm, Commit: 1}
		p.step(app)
		out := p.flush()
		want := Message{Type: MsgAppResp, From: 1, To: 2, Term: 4, Index: tt.wIndex, Reject: tt.reject, Hint: tt.hint, LogTerm: tt.hintTrm}
		if len(out) != 1 || fmt.Sprint(out[0]) != fmt.Sprint(want) {
			t.Errorf("#%d: MsgApp(prev %d/%d) answered %+v, want %+v", i, tt.index, tt.logTerm, out, want)
			continue
		}
		if tt.reject {
			checkConflictHint(t, p.r, app, out[0])
			if got := paperLogOf(p.r); !sameLog(got, paperEnts(1, 2, 2)) {
				t.Errorf("#%d: a rejected MsgApp changed the log to %s", i, fmtLog(got))
			}
		}
	}
}

// TestFollowerAppendEntries: "If an existing entry conflicts with a new one
// (same index but different terms), delete the existing entry and all that
// follow it; append any new entries not already in the log" (Figure 2). In
// §5.3's words, "the leader handles inconsistencies by forcing the
// followers' logs to duplicate its own": the follower drops its conflicting
// suffix and takes the leader's entries, and keeps entries that agree.
// Reference: §5.3
func TestFollowerAppendEntries(t *testing.T) {
	tests := []struct {
		index   Index
		logTerm Term
		ents    []Entry
		want    []Entry
	}{
		{2, 2, []Entry{{Term: 3, Index: 3}}, paperEnts(1, 2, 3)},
		{1, 1, []Entry{{Term: 3, Index: 2}, {Term: 4, Index: 3}}, paperEnts(1, 3, 4)},
		{0, 0, []Entry{{Term: 1, Index: 1}}, paperEnts(1, 2)},
		{0, 0, []Entry{{Term: 3, Index: 1}}, paperEnts(3)},
		{1, 1, []Entry{{Term: 2, Index: 2}, {Term: 4, Index: 3}}, paperEnts(1, 2, 4)},
		{0, 0, []Entry{{Term: 1, Index: 1}, {Term: 2, Index: 2}, {Term: 2, Index: 3}}, paperEnts(1, 2, 2)},
	}
	for i, tt := range tests {
		p := newPaperNode(t, 1, 3, paperEnts(1, 2), HardState{Term: 2})
		p.step(Message{Type: MsgApp, From: 2, Term: 4, Index: tt.index, LogTerm: tt.logTerm, Entries: tt.ents})
		out := p.flush()
		if got := paperLogOf(p.r); !sameLog(got, tt.want) {
			t.Errorf("#%d: log %s, want %s", i, fmtLog(got), fmtLog(tt.want))
		}
		if last, _ := p.st.LastIndex(); last != Index(len(tt.want)) {
			t.Errorf("#%d: storage holds %d entries, want %d", i, last, len(tt.want))
		}
		lastNew := tt.index + Index(len(tt.ents))
		if len(out) != 1 || out[0].Type != MsgAppResp || out[0].Reject || out[0].Index != lastNew {
			t.Errorf("#%d: answered %+v, want success up to %d", i, out, lastNew)
		}
	}
}

// TestLeaderSyncFollowerLog: Figure 7. "When the leader at the top comes to
// power, it is possible that any of scenarios (a–f) could occur in follower
// logs." The leader of term 8 "forces the followers' logs to duplicate its
// own": each follower ends with exactly the leader's log, whether it was
// missing entries (a, b), had extra uncommitted entries (c, d), or both
// (e, f). The third server starts empty and helps elect the leader.
// Reference: §5.3
func TestLeaderSyncFollowerLog(t *testing.T) {
	leaderLog := paperEnts(1, 1, 1, 4, 4, 5, 5, 6, 6, 6)
	followers := []struct {
		name string
		log  []Entry
	}{
		{"a", paperEnts(1, 1, 1, 4, 4, 5, 5, 6, 6)},
		{"b", paperEnts(1, 1, 1, 4)},
		{"c", paperEnts(1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6)},
		{"d", paperEnts(1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7)},
		{"e", paperEnts(1, 1, 1, 4, 4, 4, 4)},
		{"f", paperEnts(1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3)},
	}
	for _, f := range followers {
		t.Run(f.name, func(t *testing.T) {
			nw := paperNetwork(t, 1,
				[][]Entry{leaderLog, f.log, nil},
				[]HardState{{Term: 7}, {Term: lastTermOf(f.log)}, {Term: 7}}, paperOpt)
			nw.elect(1)
			if term := nw.node(1).term; term != 8 {
				t.Fatalf("leader elected in term %d, want 8", term)
			}
			nw.propose(1, "x")
			want := paperLogOf(nw.node(1))
			if len(want) != 12 {
				t.Fatalf("leader's log %s, want Figure 7's 10 entries, its no-op and the proposal", fmtLog(want))
			}
			for _, id := range []NodeID{2, 3} {
				if got := paperLogOf(nw.node(id)); !sameLog(got, want) {
					t.Errorf("follower %d's log %s, want the leader's %s", id, fmtLog(got), fmtLog(want))
				}
				if c := nw.node(id).log.committed; c != 12 {
					t.Errorf("follower %d committed %d, want 12", id, c)
				}
			}
			nw.checkApplied()
		})
	}
}

// TestFastBacktracking: "If desired, the protocol can be optimized to reduce
// the number of rejected AppendEntries RPCs. For example, when rejecting an
// AppendEntries request, the follower can include the term of the
// conflicting entry and the first index it stores for that term. ... one
// AppendEntries RPC will be required for each term with conflicting
// entries, rather than one RPC per entry." A follower diverging from the
// leader by thousands of entries is repaired in a number of rejections
// bounded by the number of distinct terms involved.
// Reference: §5.3
func TestFastBacktracking(t *testing.T) {
	tests := []struct {
		name     string
		leader   []Entry
		follower []Entry
	}{
		{"follower has 3000 stale entries of one term",
			paperBlocks([2]int{1, 10}, [2]int{3, 5}), paperBlocks([2]int{1, 10}, [2]int{2, 3000})},
		{"follower lags 3000 entries",
			paperBlocks([2]int{1, 10}, [2]int{2, 3000}), paperBlocks([2]int{1, 10})},
		{"both diverge by thousands, interleaved terms",
			paperBlocks([2]int{1, 10}, [2]int{2, 500}, [2]int{4, 500}, [2]int{6, 500}, [2]int{8, 500}),
			paperBlocks([2]int{1, 10}, [2]int{3, 1000}, [2]int{5, 1000}, [2]int{7, 1000})},
		{"follower has 3000 entries of many stale terms",
			paperBlocks([2]int{1, 10}, [2]int{9, 100}),
			paperBlocks([2]int{1, 10}, [2]int{2, 500}, [2]int{3, 500}, [2]int{4, 500}, [2]int{5, 500}, [2]int{6, 500}, [2]int{7, 500})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lt := lastTermOf(tt.leader)
			nw := paperNetwork(t, 1,
				[][]Entry{tt.leader, tt.follower, tt.leader},
				[]HardState{{Term: lt}, {Term: lastTermOf(tt.follower)}, {Term: lt}}, paperOpt)
			// Elect node 1 without node 2, then start node 2's repair from
			// the paper's initial nextIndex, just after the leader's last
			// entry (TestLeaderInitNextIndex checks that the leader picks
			// that itself).
			nw.isolate(2)
			nw.elect(1)
			lead := nw.node(1)
			pr := lead.progressOf(2)
			pr.next, pr.probeSent = lead.log.lastIndex(), false
			nw.heal()
			sent := len(nw.sent)
			lead.Tick() // a heartbeat; its answer makes the leader probe node 2
			nw.settle()
			nw.propose(1, "x")

			want := paperLogOf(lead)
			if got := paperLogOf(nw.node(2)); !sameLog(got, want) {
				t.Fatalf("follower's log (%d entries, last term %d) differs from the leader's (%d entries)",
					len(got), lastTermOf(got), len(want))
			}
			terms := map[Term]bool{lead.term: true}
			for _, e := range slices.Concat(tt.leader, tt.follower) {
				terms[e.Term] = true
			}
			rejections := 0
			for _, m := range nw.sent[sent:] {
				if m.Type == MsgAppResp && m.From == 2 && m.Reject {
					rejections++
				}
			}
			// The logs differ at the leader's last index, so at least the
			// first probe is refused.
			if limit := 2*len(terms) + 2; rejections < 1 || rejections > limit {
				t.Fatalf("%d rejected MsgApps to repair the follower; want 1 to %d (2 * %d terms + 2)", rejections, limit, len(terms))
			}
			t.Logf("%d rejections, %d distinct terms", rejections, len(terms))
		})
	}
}

// ---------------------------------------------------------------------------
// §5.4: safety
// ---------------------------------------------------------------------------

// TestVoter: "the voter denies its vote if its own log is more up-to-date
// than that of the candidate. Raft determines which of two logs is more
// up-to-date by comparing the index and term of the last entries in the
// logs. If the logs have last entries with different terms, then the log
// with the later term is more up-to-date. If the logs end with the same
// term, then whichever log is longer is more up-to-date."
// Reference: §5.4.1
func TestVoter(t *testing.T) {
	tests := []struct {
		ents    []Entry
		logTerm Term
		index   Index
		reject  bool
	}{
		// same last term: the longer log wins, equal is enough
		{paperEnts(1), 1, 1, false},
		{paperEnts(1), 1, 2, false},
		{paperEnts(1, 1), 1, 1, true},
		{paperEnts(1, 1, 1), 1, 2, true},
		// candidate's last term is higher: granted whatever the length
		{paperEnts(1), 2, 1, false},
		{paperEnts(1), 2, 2, false},
		{paperEnts(1, 1), 2, 1, false},
		{paperEnts(1, 1, 1, 1), 2, 1, false},
		// voter's last term is higher: refused whatever the length
		{paperEnts(2), 1, 1, true},
		{paperEnts(2), 1, 2, true},
		{paperEnts(1, 2), 1, 1, true},
		{paperEnts(1, 2), 1, 3, true},
		{paperEnts(1, 2), 1, 100, true},
		// empty logs
		{nil, 0, 0, false},
		{nil, 1, 1, false},
		{paperEnts(1), 0, 0, true},
	}
	for i, tt := range tests {
		p := newPaperNode(t, 1, 3, tt.ents, HardState{Term: 2})
		p.step(Message{Type: MsgVote, From: 2, Term: 3, Index: tt.index, LogTerm: tt.logTerm})
		out := p.flush()
		if len(out) != 1 || out[0].Type != MsgVoteResp || out[0].Reject != tt.reject {
			t.Errorf("#%d: voter log %s, candidate last (%d, term %d): answered %+v, want reject=%v",
				i, fmtLog(tt.ents), tt.index, tt.logTerm, out, tt.reject)
		}
		if granted := p.r.vote == 2; granted == tt.reject {
			t.Errorf("#%d: vote %d", i, p.r.vote)
		}
	}
}

// TestLeaderOnlyCommitsLogFromCurrentTerm: "Raft never commits log entries
// from previous terms by counting replicas. Only log entries from the
// leader's current term are committed by counting replicas; once an entry
// from the current term has been committed in this way, then all prior
// entries are committed indirectly because of the Log Matching Property."
// Reference: §5.4.2
func TestLeaderOnlyCommitsLogFromCurrentTerm(t *testing.T) {
	tests := []struct {
		index  Index // acknowledged by node 2
		commit Index
	}{
		// entries of terms 1 and 2 on a majority: not committed
		{1, 0},
		{2, 0},
		// the leader's no-op of term 3 on a majority: commits all
		{3, 3},
	}
	for i, tt := range tests {
		p := newPaperNode(t, 1, 3, paperEnts(1, 2), HardState{Term: 2})
		p.campaign()
		if p.r.term != 3 {
			t.Fatalf("leader in term %d, want 3", p.r.term)
		}
		p.step(Message{Type: MsgAppResp, From: 2, Term: 3, Index: tt.index})
		p.flush()
		if p.r.log.committed != tt.commit {
			t.Errorf("#%d: ack of %d: committed %d, want %d", i, tt.index, p.r.log.committed, tt.commit)
		}
		if Index(len(p.applied)) != tt.commit {
			t.Errorf("#%d: applied %s", i, fmtLog(p.applied))
		}
	}
}

// ---------------------------------------------------------------------------
// Properties of Figure 3, checked on random runs
// ---------------------------------------------------------------------------

// paperChaos runs a 5-node cluster over a network that drops, duplicates
// and reorders messages, with random ticks, proposals at random nodes and
// partitions (often of the leader). check runs after every delivered
// message, tick and proposal; then the network heals and the cluster
// settles, and State Machine Safety is checked.
func paperChaos(t *testing.T, seed uint64, opt func(*Config), check func(nw *network)) {
	nw := newNetwork(t, 5, seed, opt)
	nw.dropRate, nw.dupRate, nw.reorder = 0.1, 0.05, true
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	settle := func() {
		for range 100000 {
			moved := false
			for _, id := range nw.ids {
				for nw.process(id) {
					moved = true
				}
			}
			if len(nw.queue) > 0 {
				nw.deliverOne()
				check(nw)
				moved = true
			}
			if !moved {
				return
			}
		}
		t.Fatalf("seed %d: network did not settle", seed)
	}
	tick := func() {
		for _, id := range nw.ids {
			nw.node(id).Tick()
		}
		check(nw)
		settle()
	}
	for step := range 1000 {
		switch x := rng.IntN(100); {
		case x < 50:
			tick()
		case x < 88:
			id := nw.ids[rng.IntN(len(nw.ids))]
			_, _ = nw.node(id).Propose(fmt.Appendf(nil, "%d:%d", seed, step))
			check(nw)
			settle()
		case x < 91:
			nw.isolate(nw.ids[rng.IntN(len(nw.ids))])
		case x < 96:
			if lead := nw.leader(); lead != None {
				nw.isolate(lead)
			}
		default:
			nw.heal()
		}
	}
	nw.heal()
	nw.dropRate, nw.dupRate, nw.reorder = 0, 0, false
	for range 30 {
		tick()
	}
	nw.checkApplied()
	if lead := nw.leader(); lead == None || len(nw.dataOf(lead)) < 20 {
		t.Fatalf("seed %d: the run made too little progress to test anything (leader %d)", seed, lead)
	}
}

// paperChaosRuns runs f over a few seeds, with the paper's algorithm and
// with the harness's default configuration (pre-vote and check-quorum).
func paperChaosRuns(t *testing.T, f func(t *testing.T, seed uint64, opt func(*Config))) {
	for _, cfg := range []struct {
		name string
		opt  func(*Config)
	}{{"paper", paperOpt}, {"prevote+checkquorum", nil}} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", cfg.name, seed), func(t *testing.T) { f(t, seed, cfg.opt) })
		}
	}
}

// TestLeaderAppendOnly: "Leader Append-Only: a leader never overwrites or
// deletes entries in its log; it only appends new entries" (Figure 3). After
// every event of a random run, every leader's log extends the log it had at
// the previous event of its term.
// Reference: §5.3
func TestLeaderAppendOnly(t *testing.T) {
	paperChaosRuns(t, func(t *testing.T, seed uint64, opt func(*Config)) {
		type snapshot struct {
			term Term
			ents []Entry
		}
		snaps := map[NodeID]*snapshot{}
		leaderships := 0
		paperChaos(t, seed, opt, func(nw *network) {
			for _, id := range nw.ids {
				r := nw.node(id)
				if r.role != RoleLeader {
					delete(snaps, id)
					continue
				}
				s := snaps[id]
				if s == nil || s.term != r.term {
					s = &snapshot{term: r.term}
					snaps[id] = s
					leaderships++
				}
				last := r.log.lastIndex()
				if last < Index(len(s.ents)) {
					t.Fatalf("seed %d: leader %d of term %d shrank its log from %d to %d entries", seed, id, r.term, len(s.ents), last)
				}
				for _, e := range s.ents {
					if got := paperEntryAt(r, e.Index); !sameEntry(got, e) {
						t.Fatalf("seed %d: leader %d of term %d overwrote entry %+v with %+v", seed, id, r.term, e, got)
					}
				}
				for i := Index(len(s.ents)) + 1; i <= last; i++ {
					s.ents = append(s.ents, paperEntryAt(r, i))
				}
			}
		})
		if leaderships < 3 {
			t.Fatalf("seed %d: only %d leaderships observed", seed, leaderships)
		}
	})
}

// TestLogMatching: "Log Matching: if two logs contain an entry with the same
// index and term, then the logs are identical in all entries up through the
// given index" (Figure 3; §5.3: "When sending an AppendEntries RPC, the
// leader includes the index and term of the entry in its log that
// immediately precedes the new entries ... the consistency check acts as an
// induction step"). Checked between every pair of nodes throughout random
// runs with message loss, duplication, reordering and partitions.
// Reference: §5.3
func TestLogMatching(t *testing.T) {
	paperChaosRuns(t, func(t *testing.T, seed uint64, opt func(*Config)) {
		events := 0
		paperChaos(t, seed, opt, func(nw *network) {
			if events++; events%4 != 0 {
				return // sample: the check costs O(nodes² · log length)
			}
			for ai, a := range nw.ids {
				for _, b := range nw.ids[ai+1:] {
					paperCheckLogMatching(t, seed, nw, a, b)
				}
			}
		})
	})
}

// paperCheckLogMatching finds the highest index where a's and b's logs hold
// entries of the same term and checks that the logs are identical up to it.
func paperCheckLogMatching(t *testing.T, seed uint64, nw *network, a, b NodeID) {
	ra, rb := nw.node(a), nw.node(b)
	k := min(ra.log.lastIndex(), rb.log.lastIndex())
	for ; k > 0; k-- {
		if paperEntryAt(ra, k).Term == paperEntryAt(rb, k).Term {
			break
		}
	}
	for i := Index(1); i <= k; i++ {
		if ea, eb := paperEntryAt(ra, i), paperEntryAt(rb, i); !sameEntry(ea, eb) {
			t.Fatalf("seed %d: nodes %d and %d both hold an entry of term %d at %d but differ at %d: %+v vs %+v",
				seed, a, b, paperEntryAt(ra, k).Term, k, i, ea, eb)
		}
	}
}

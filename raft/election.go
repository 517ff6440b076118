package raft

// hup starts an election (§5.2), preceded by a pre-vote round unless
// disabled, so that a node that cannot win never disrupts the cluster.
func (r *Raft) hup() {
	if r.role == RoleLeader || !r.promotable() {
		return
	}
	r.campaign(!r.cfg.DisablePreVote, false)
}

// campaign asks every voter for its (pre-)vote. A campaign that a leader
// asked for by transferring leadership marks its MsgVotes (Reject set), so
// voters answer despite their leader lease.
func (r *Raft) campaign(pre, transfer bool) {
	typ, term := MsgVote, r.term+1
	if pre {
		typ = MsgPreVote
		r.becomePreCandidate()
	} else {
		r.becomeCandidate()
		term = r.term
	}
	if r.poll(r.id, true) == electionWon {
		r.winElection(pre) // a single-member cluster
		return
	}
	last, lastTerm := r.log.lastIndex(), Term(0)
	if t, err := r.log.lastTerm(); err == nil {
		lastTerm = t
	} else {
		r.log.noteReadErr(err) // reported in Ready.Err; no one will vote for us
	}
	for i := range r.prs {
		if pr := &r.prs[i]; pr.id != r.id && (pr.voter || pr.outgoing) {
			r.send(Message{Type: typ, To: pr.id, Term: term, Index: last, LogTerm: lastTerm, Reject: transfer})
		}
	}
}

func (r *Raft) winElection(pre bool) {
	if !r.promotable() {
		// Unreachable (learnCommit makes a removed candidate a follower);
		// a leader that is not a voter must come from a hand-off instead.
		r.becomeFollower(r.term, None)
		return
	}
	if pre {
		r.campaign(false, false)
		return
	}
	r.becomeLeader()
	r.bcastAppend()
}

// handleVoteRequest grants a vote if we have not voted for another in this
// term (§5.2) and the candidate's log is at least as up-to-date as ours
// (§5.4.1). A pre-vote is granted on the same log rule for a future term.
func (r *Raft) handleVoteRequest(m Message) {
	resp := MsgVoteResp
	if m.Type == MsgPreVote {
		resp = MsgPreVoteResp
	}
	canVote := r.vote == m.From ||
		(r.vote == None && r.lead == None) ||
		(m.Type == MsgPreVote && m.Term > r.term)
	if !canVote || (!bugVoteIgnoresLog && !r.log.isUpToDate(m.Index, m.LogTerm)) {
		r.refuseVote(resp, m.From)
		return
	}
	// The grant carries the requested term: for a pre-vote that is a term
	// we have not adopted, which tells the pre-candidate it is a grant.
	r.send(Message{Type: resp, To: m.From, Term: m.Term})
	if m.Type == MsgVote {
		r.electionElapsed = 0
		r.vote = m.From
	}
}

// refuseVote refuses a vote or pre-vote, telling the candidate our commit
// index and the term of the entry there (learnCommit).
func (r *Raft) refuseVote(typ MessageType, to NodeID) {
	m := Message{Type: typ, To: to, Reject: true}
	if t, err := r.log.term(r.log.committed); err == nil {
		m.Commit, m.LogTerm = r.log.committed, t
	}
	r.send(m)
}

// learnCommit takes the commit index a refused vote carries. That an entry
// is committed is a fact whoever states it, and a log that holds the entry
// (same index and term) holds, by log matching, the same prefix: so a node
// whose log matches there may commit up to it. Why it matters:
// configurations take effect when committed, and a voter that missed the
// commit of the entry removing the voter it asks would otherwise need that
// node's vote for ever, which it refuses while its log is longer (a leader
// that lost its quorum while handing off after its own removal, or any
// node removed right after storing more entries than the remaining voter).
func (r *Raft) learnCommit(m Message) {
	if r.role == RoleLeader || m.Commit <= r.log.committed || !r.log.matchTerm(m.Commit, m.LogTerm) {
		return
	}
	r.commitTo(m.Commit)
	if r.role != RoleFollower && !r.promotable() {
		// The commit removed this candidate: it stops campaigning.
		r.becomeFollower(r.term, None)
	}
}

func (r *Raft) handleVoteResponse(m Message) {
	want := MsgVoteResp
	if r.role == RolePreCandidate {
		want = MsgPreVoteResp
	}
	if m.Type != want {
		return // a late answer from an earlier phase
	}
	switch r.poll(m.From, !m.Reject) {
	case electionWon:
		r.winElection(r.role == RolePreCandidate)
	case electionLost:
		r.becomeFollower(r.term, None)
	}
}

type electionResult uint8

const (
	electionPending electionResult = iota
	electionWon
	electionLost
)

// poll records id's answer and tallies the election.
func (r *Raft) poll(id NodeID, granted bool) electionResult {
	if pr := r.progressOf(id); pr != nil && pr.vote == voteUnknown {
		pr.vote = voteRejected
		if granted {
			pr.vote = voteGranted
		}
	}
	return r.tally()
}

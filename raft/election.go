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
		r.send(Message{Type: resp, To: m.From, Reject: true})
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

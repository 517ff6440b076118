package raft

import "math"

// Step feeds a message received from a peer into the node. It returns an
// error (and changes nothing) for a message that is malformed or not meant
// for this node; such messages are counted in Stats.Dropped. Step keeps
// references to m.Entries' Data: the caller must not reuse those bytes.
func (r *Raft) Step(m Message) error {
	if err := r.checkMessage(&m); err != nil {
		r.stats.Dropped++
		return err
	}
	if m.Type == MsgProp || m.Type == MsgPropResp {
		return r.step(m) // proposals are not bound to a term
	}
	if (m.Type == MsgVoteResp || m.Type == MsgPreVoteResp) && m.Reject {
		r.learnCommit(m) // whatever the term: a commit is a fact
	}
	switch {
	case m.Term > r.term:
		if !r.onHigherTerm(m) {
			return nil
		}
	case m.Term < r.term:
		r.onLowerTerm(m)
		return nil
	}
	if m.Type == MsgVote || m.Type == MsgPreVote {
		r.handleVoteRequest(m)
		return nil
	}
	return r.step(m)
}

// checkMessage rejects peer input that no correct peer sends. Nothing in it
// panics: the bytes came from the network.
func (r *Raft) checkMessage(m *Message) error {
	switch {
	case !m.Type.Valid():
		return ErrInvalidMessage
	case m.To != r.id || m.From == r.id:
		return ErrUnknownPeer
	case r.progressOf(m.From) == nil && m.Type.IsResponse():
		// Responses are counted only for members. Requests are taken from
		// anyone: a node that has just joined, or holds an old
		// configuration, may be a voter a candidate needs, or be led by a
		// leader it does not know yet. A removed node cannot disrupt: its
		// log lacks its removal (so it loses the log comparison), pre-vote
		// keeps it from raising terms, and the leader lease makes members
		// ignore it while a leader is heard.
		return ErrUnknownPeer
	case m.Term == 0 && m.Type != MsgProp && m.Type != MsgPropResp:
		return ErrInvalidMessage
	}
	switch m.Type {
	case MsgApp:
		return checkAppendEntries(m)
	case MsgProp:
		if len(m.Entries) != 1 || m.Entries[0].Type != EntryNormal {
			return ErrInvalidMessage
		}
		return nil
	case MsgSnap:
		return checkSnapshotChunk(m)
	}
	if len(m.Entries) != 0 {
		return ErrInvalidMessage
	}
	return nil
}

// checkSnapshotChunk verifies that a MsgSnap names a snapshot of a past
// term and carries one non-empty chunk inside its stream.
func checkSnapshotChunk(m *Message) error {
	if len(m.Entries) != 1 {
		return ErrInvalidMessage
	}
	e := &m.Entries[0]
	n, off, total := uint64(len(e.Data)), uint64(m.Commit), uint64(m.Hint)
	switch {
	case m.Index == 0 || m.LogTerm == 0 || m.LogTerm > m.Term,
		e.Index != 0 || e.Term != 0 || e.Type != EntryNormal || n == 0,
		total < snapTrailerBytes || off > total || n > total-off:
		return ErrInvalidMessage
	}
	return nil
}

// checkAppendEntries verifies that a MsgApp's entries follow its preceding
// index consecutively, with terms that never decrease and never exceed the
// message's term (a leader only sends entries of its term or older).
func checkAppendEntries(m *Message) error {
	if uint64(m.Index) > math.MaxUint64-uint64(len(m.Entries)) || m.LogTerm > m.Term {
		return ErrInvalidMessage
	}
	prevTerm := m.LogTerm
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Index != m.Index+1+Index(i) || e.Term < prevTerm || e.Term > m.Term || e.Type > EntryConfChange {
			return ErrInvalidMessage
		}
		prevTerm = e.Term
	}
	return nil
}

// onHigherTerm handles a message from a later term; it returns whether the
// message should be processed further.
func (r *Raft) onHigherTerm(m Message) bool {
	if (m.Type == MsgVote || m.Type == MsgPreVote) && r.inLease() && !(m.Type == MsgVote && m.Reject) {
		// While a leader is heard from, vote requests are ignored: a
		// removed or partitioned server cannot depose a live leader (§6.2
		// check-quorum lease; dissertation §4.2.3).
		return false
	}
	switch {
	case m.Type == MsgPreVote:
		// Answer for the future term without adopting it.
	case m.Type == MsgPreVoteResp && !m.Reject:
		// A pre-vote granted for our next term; counted by stepCandidate.
	default:
		lead := None
		if m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap {
			lead = m.From
		}
		r.becomeFollower(m.Term, lead) // §5.1: adopt the larger term
	}
	return true
}

// inLease reports whether this node has heard from a leader within the
// minimum election timeout. With ReadLease, a node that has just started
// counts as in lease for its first election timeout: before a restart it
// may have acknowledged a heartbeat that a leader's lease still relies on,
// and it does not remember that.
func (r *Raft) inLease() bool {
	if r.cfg.DisableCheckQuorum {
		return false
	}
	if r.cfg.ReadLease && r.ticks < uint64(r.cfg.ElectionTicks) {
		return true
	}
	return r.lead != None && r.electionElapsed < r.cfg.ElectionTicks
}

// onLowerTerm answers a message from an earlier term (§5.1: stale requests
// are rejected). A stale leader is told our term so that it steps down;
// without this, pre-vote plus check-quorum can leave a node that raised its
// term unable to rejoin (etcd-io/etcd #8243).
func (r *Raft) onLowerTerm(m Message) {
	switch {
	case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
		r.send(Message{Type: MsgAppResp, To: m.From})
	case m.Type == MsgPreVote:
		r.refuseVote(MsgPreVoteResp, m.From)
	case m.Type == MsgVote:
		// §5.1: the refusal carries our term, which the candidate adopts.
		// Without it a candidate that never hears from us otherwise (we
		// campaign in a stale configuration that excludes it) keeps
		// campaigning below our term, for ever, when pre-vote is off.
		r.refuseVote(MsgVoteResp, m.From)
	}
}

// stepFollower handles messages of the current term at a follower.
func (r *Raft) stepFollower(m Message) error {
	switch m.Type {
	case MsgApp:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleAppendEntries(m)
	case MsgHeartbeat:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleHeartbeat(m)
	case MsgSnap:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleSnapshot(m)
	case MsgTimeoutNow:
		if r.promotable() {
			r.campaign(false, true) // no pre-vote: the leader asked for it
		}
	case MsgProp:
		r.refuseProposal(m, RejectNotLeader)
	case MsgPropResp:
		r.onProposalRejected(m)
	case MsgReadIndex:
		r.refuseRead(m)
	case MsgReadIndexResp:
		r.onReadIndexResp(m)
	}
	return nil
}

func (r *Raft) refuseRead(m Message) {
	r.send(Message{Type: MsgReadIndexResp, To: m.From, Index: m.Index, Reject: true, Hint: Index(RejectNotLeader)})
}

// stepCandidate handles messages of the current term at a (pre-)candidate.
func (r *Raft) stepCandidate(m Message) error {
	switch m.Type {
	case MsgApp:
		r.becomeFollower(m.Term, m.From) // a leader won this term (§5.2)
		r.handleAppendEntries(m)
	case MsgHeartbeat:
		r.becomeFollower(m.Term, m.From)
		r.handleHeartbeat(m)
	case MsgSnap:
		r.becomeFollower(m.Term, m.From)
		r.handleSnapshot(m)
	case MsgVoteResp, MsgPreVoteResp:
		r.handleVoteResponse(m)
	case MsgProp:
		r.refuseProposal(m, RejectNotLeader)
	case MsgPropResp:
		r.onProposalRejected(m)
	case MsgReadIndex:
		r.refuseRead(m)
	case MsgReadIndexResp:
		r.onReadIndexResp(m)
	}
	return nil
}

// stepLeader handles messages of the current term at the leader.
func (r *Raft) stepLeader(m Message) error {
	pr := r.progressOf(m.From)
	if pr == nil {
		r.stats.Dropped++ // a leader's message from a non-member: two leaders cannot share a term
		return nil
	}
	pr.recentActive = true
	switch m.Type {
	case MsgAppResp:
		r.handleAppendResponse(m, pr)
	case MsgHeartbeatResp:
		r.handleHeartbeatResponse(m, pr)
	case MsgSnapResp:
		r.handleSnapshotResponse(m, pr)
	case MsgReadIndex:
		_ = r.addRead(uint64(m.Index), m.From)
	case MsgReadIndexResp:
		r.onReadIndexResp(m)
	case MsgProp:
		if _, err := r.appendProposal(m.Entries[0].Data); err != nil {
			r.refuseProposal(m, reasonFor(err))
		}
	case MsgPropResp:
		r.onProposalRejected(m)
	}
	return nil
}

func reasonFor(err error) RejectReason {
	switch err {
	case ErrBusy:
		return RejectBusy
	case ErrTooLarge:
		return RejectTooLarge
	}
	return RejectNotLeader
}

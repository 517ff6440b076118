package raft

// Proposal tells the caller where its proposal went.
type Proposal struct {
	// Term and Index locate the entry when this node leads: the proposal
	// succeeded if the entry applied at Index has Term; any other term there
	// means it was lost with a change of leader.
	Term  Term
	Index Index
	// Seq numbers a proposal forwarded to the leader (Index is then 0). If
	// the leader refuses it, a Ready carries a ProposalRejection with Seq.
	Seq uint64
}

// ProposalRejection reports that the leader refused a forwarded proposal.
type ProposalRejection struct {
	Seq uint64
	Err error // ErrNotLeader, ErrBusy or ErrTooLarge
}

// Propose appends data to the log if this node leads, or forwards it to
// the leader. It fails at once with ErrTooLarge, ErrBusy (a bound is
// reached) or ErrNoLeader; it never drops a proposal silently.
func (r *Raft) Propose(data []byte) (Proposal, error) {
	if len(data) > r.cfg.MaxEntryBytes() {
		return Proposal{}, ErrTooLarge
	}
	switch {
	case r.role == RoleLeader:
		idx, err := r.appendProposal(data)
		return Proposal{Term: r.term, Index: idx}, err
	case r.role != RoleFollower || r.lead == None:
		return Proposal{}, ErrNoLeader
	}
	r.propSeq++
	r.send(Message{Type: MsgProp, To: r.lead, Index: Index(r.propSeq),
		Entries: []Entry{{Type: EntryNormal, Data: data}}})
	return Proposal{Seq: r.propSeq}, nil
}

// appendProposal appends one client entry at the leader, within bounds.
func (r *Raft) appendProposal(data []byte) (Index, error) {
	switch {
	case len(data) > r.cfg.MaxEntryBytes():
		return 0, ErrTooLarge
	case r.uncommittedBytes+len(data) > r.cfg.MaxUncommittedBytes,
		len(r.log.unstable.entries) >= r.cfg.MaxEntriesInMemory,
		r.leadTransferee != None: // the leader is handing over; retry at the next one
		return 0, ErrBusy
	}
	idx := r.log.lastIndex() + 1
	r.appendEntry(Entry{Term: r.term, Index: idx, Type: EntryNormal, Data: data})
	r.uncommittedBytes += len(data)
	r.bcastAppend()
	return idx, nil
}

func (r *Raft) refuseProposal(m Message, why RejectReason) {
	r.send(Message{Type: MsgPropResp, To: m.From, Index: m.Index, Reject: true, Hint: Index(why)})
}

func (r *Raft) onProposalRejected(m Message) {
	seq := uint64(m.Index)
	if seq <= r.propSeqBase || seq > r.propSeq || !m.Reject {
		r.stats.Dropped++ // not a proposal of ours
		return
	}
	if len(r.rejected) >= maxRejectedPerReady {
		r.stats.Dropped++
		return
	}
	r.rejected = append(r.rejected, ProposalRejection{Seq: seq, Err: rejectErr(RejectReason(m.Hint))})
}

// handleAppendEntries is the receiver side of AppendEntries (§5.3).
func (r *Raft) handleAppendEntries(m Message) {
	if m.Index < r.log.committed {
		// Already committed here: tell the leader where we are.
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed})
		return
	}
	if !r.log.matchTerm(m.Index, m.LogTerm) {
		// Consistency check failed. Hint the largest index that could
		// match, so the leader skips a whole term per round trip.
		hint, hintTerm := r.log.findConflictByTerm(m.Index, m.LogTerm)
		r.send(Message{Type: MsgAppResp, To: m.From, Reject: true, Index: m.Index, Hint: hint, LogTerm: hintTerm})
		return
	}
	last, ok := r.appendFromLeader(m)
	if !ok {
		r.stats.Dropped++ // the leader contradicts our committed log
		return
	}
	r.commitTo(min(m.Commit, last))
	r.ackAppend(m.From, last)
}

// ackAppend answers a MsgApp that matched up to last. Acknowledgements are
// cumulative and every message of a Ready leaves only after its writes are
// durable, so when this Ready's latest answer to the leader is a success
// of the same term, it is raised to last instead of adding another: a
// follower that steps a burst of appends in one Ready answers once, and
// the leader's bounded inbox takes one frame instead of one per append.
func (r *Raft) ackAppend(to NodeID, last Index) {
	for i := len(r.msgs) - 1; i >= 0; i-- {
		m := &r.msgs[i]
		if m.Type != MsgAppResp || m.To != to {
			continue
		}
		if !m.Reject && m.Term == r.term && m.Index <= last {
			m.Index = last
			r.stats.AcksMerged++
			return
		}
		break
	}
	r.send(Message{Type: MsgAppResp, To: to, Index: last})
}

// appendFromLeader appends the new part of a MsgApp whose preceding entry
// matched. It returns the last index known to match the leader. When the
// MaxEntriesInMemory bound leaves no room it accepts only a prefix: the
// leader resends the rest.
func (r *Raft) appendFromLeader(m Message) (Index, bool) {
	ents := m.Entries
	last := m.Index + Index(len(ents))
	ci := r.log.findConflict(ents)
	if ci == 0 {
		return last, true // nothing new (a duplicate or a heartbeat-like append)
	}
	if ci <= r.log.committed {
		return 0, false // committed entries never change (Log Matching)
	}
	fresh := ents[ci-(m.Index+1):]
	if room := r.cfg.MaxEntriesInMemory - r.unstableKeptBelow(ci); len(fresh) > room {
		room = max(room, 0)
		r.stats.Refused += uint64(len(fresh) - room)
		fresh = fresh[:room]
		last = ci - 1 + Index(room)
	}
	if len(fresh) > 0 {
		r.log.append(fresh)
		r.recordConfs(fresh)
	}
	return last, true
}

// unstableKeptBelow counts the unstable entries that survive truncation at ci.
func (r *Raft) unstableKeptBelow(ci Index) int {
	u := &r.log.unstable
	if ci <= u.offset {
		return 0
	}
	return min(int(ci-u.offset), len(u.entries))
}

func (r *Raft) handleHeartbeat(m Message) {
	// The leader sends min(our match, its commit), so our log up to it
	// matches the leader's.
	r.commitTo(m.Commit)
	r.send(Message{Type: MsgHeartbeatResp, To: m.From, Index: m.Index})
}

// handleAppendResponse updates a follower's progress (§5.3).
func (r *Raft) handleAppendResponse(m Message, pr *progress) {
	if m.Reject {
		hint := m.Hint
		if m.LogTerm > 0 {
			hint, _ = r.log.findConflictByTerm(m.Hint, m.LogTerm)
		}
		if pr.maybeDecrTo(m.Index, hint) {
			if pr.state == StateReplicate {
				pr.becomeProbe()
			}
			r.maybeSendAppend(pr, true)
		}
		return
	}
	if m.Index > r.log.lastIndex() {
		return // claims entries we never had
	}
	wasPaused := pr.isPaused()
	if !pr.maybeUpdate(m.Index) {
		if pr.state == StateProbe && m.Index == pr.match {
			// The probe confirmed what we knew: stream from here on,
			// rather than waiting for a heartbeat to unpause the probe.
			pr.becomeReplicate()
			for r.maybeSendAppend(pr, false) {
			}
		}
		return // otherwise stale or duplicated
	}
	switch pr.state {
	case StateProbe, StateSnapshot:
		pr.becomeReplicate()
	case StateReplicate:
		pr.inflights.freeLE(m.Index)
	}
	switch {
	case r.maybeCommit():
		r.bcastAppend()
	case wasPaused:
		// While paused this follower may have missed a commit advance:
		// tell it now (an empty append if nothing else is due) rather
		// than at the next heartbeat.
		r.maybeSendAppend(pr, true)
	}
	for r.maybeSendAppend(pr, false) {
	}
	if pr.id == r.leadTransferee && pr.match == r.log.lastIndex() {
		r.sendTimeoutNow(pr.id)
	}
}

func (r *Raft) handleHeartbeatResponse(m Message, pr *progress) {
	if seq := uint64(m.Index); seq > pr.readAck && seq <= r.hbSeq {
		pr.readAck = seq
		r.releaseReads()
	}
	if pr.state == StateSnapshot {
		r.snapshotHeartbeat(pr)
		return
	}
	pr.probeSent = false // a lost probe is retried once per heartbeat
	if pr.state == StateReplicate && pr.inflights.full() {
		// Free one slot so that a window of lost MsgApps cannot stall the
		// follower forever; the next MsgApp is rejected if it is behind.
		pr.inflights.freeLE(pr.inflights.buf[pr.inflights.start])
	}
	if pr.match < r.log.lastIndex() {
		r.maybeSendAppend(pr, true)
	}
}

// ReportUnreachable tells the leader that a message to id was dropped
// before leaving this node (a full local queue). A follower in the
// replicate state goes back to probing from its match index, so the next
// send retransmits at once instead of after a heartbeat.
func (r *Raft) ReportUnreachable(id NodeID) {
	if r.role != RoleLeader {
		return
	}
	pr := r.progressOf(id)
	switch {
	case pr == nil || pr == r.self:
	case pr.state == StateReplicate:
		pr.becomeProbe()
	case pr.state == StateSnapshot:
		pr.rewindSnapshot()
	}
}

// maybeSendAppend sends pr the next batch of entries, or an empty append
// (carrying the commit index) if sendIfEmpty. It returns whether it sent.
func (r *Raft) maybeSendAppend(pr *progress, sendIfEmpty bool) bool {
	if pr == r.self || pr.isPaused() {
		return false
	}
	prev := pr.next - 1
	prevTerm, err := r.log.term(prev)
	if err != nil {
		return r.appendUnavailable(pr, err)
	}
	ents, err := r.log.entriesFrom(pr.next, r.cfg.MaxMsgBytes)
	if err != nil {
		return r.appendUnavailable(pr, err)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	r.send(Message{Type: MsgApp, To: pr.id, Index: prev, LogTerm: prevTerm,
		Commit: r.log.committed, Entries: ents})
	switch {
	case pr.state == StateProbe:
		pr.probeSent = true
	case len(ents) > 0:
		last := ents[len(ents)-1].Index
		pr.next = last + 1
		pr.inflights.add(last)
	}
	return true
}

// appendUnavailable handles a failure to read what pr needs: compacted
// entries call for a snapshot; any other error is reported to the caller.
func (r *Raft) appendUnavailable(pr *progress, err error) bool {
	if err == ErrCompacted {
		return r.startSnapshot(pr)
	}
	r.log.noteReadErr(err)
	return false
}

func (r *Raft) bcastAppend() {
	for i := range r.prs {
		r.maybeSendAppend(&r.prs[i], true)
	}
}

// bcastHeartbeat sends a numbered heartbeat round; its echoes confirm
// leadership for pending reads and leases.
func (r *Raft) bcastHeartbeat() {
	r.hbSeq++
	r.hbSent[r.hbSeq%hbRingSize] = struct{ seq, tick uint64 }{r.hbSeq, r.ticks}
	r.readRoundPending = false
	for i := range r.prs {
		if pr := &r.prs[i]; pr != r.self {
			commit := min(pr.match, r.log.committed)
			r.send(Message{Type: MsgHeartbeat, To: pr.id, Commit: commit, Index: Index(r.hbSeq)})
		}
	}
}

// maybeCommit advances the commit index to the largest index stored on a
// majority, but only if that entry is of the current term (§5.4.2: counting
// replicas of older-term entries is unsafe, Figure 8).
func (r *Raft) maybeCommit() bool {
	mci := r.quorumMatch()
	if mci <= r.log.committed {
		return false
	}
	t, err := r.log.term(mci)
	if err != nil || (t != r.term && !bugCommitOldTerm) {
		return false
	}
	first := !r.committedInTerm()
	r.commitTo(mci)
	if first && t == r.term {
		r.onCommitInTerm()
	}
	return true
}

package raft

// ReadState says that a read requested with ReadIndex is safe to serve once
// the local state machine has applied Index (dissertation §6.4): the leader
// confirmed, after the request, that it still led with commit index Index.
type ReadState struct {
	ID    uint64
	Index Index
	// Err is set instead if the leader refused the request (ErrBusy,
	// ErrNotLeader); retry, possibly elsewhere.
	Err error
}

// readRequest is a read a leader holds until it is safe.
type readRequest struct {
	id   uint64
	from NodeID // None: requested locally
	// index is the commit index when the request arrived; 0 while the
	// leader has not yet committed an entry of its term.
	index Index
	// need is the heartbeat sequence a quorum must echo.
	need uint64
}

// hbRingSize bounds the memory of when recent heartbeats were sent (for
// leases); older sequences simply do not grant a lease.
const hbRingSize = 16

// ReadIndex requests a linearizable read identified by id (unique per
// node and per start: the runtime uses its incarnation). The answer comes
// in a later Ready as a ReadState. A follower forwards the request to the
// leader. It fails at once with ErrNoLeader or ErrBusy.
func (r *Raft) ReadIndex(id uint64) error {
	switch {
	case r.role == RoleLeader:
		return r.addRead(id, None)
	case r.role != RoleFollower || r.lead == None:
		return ErrNoLeader
	}
	r.send(Message{Type: MsgReadIndex, To: r.lead, Index: Index(id)})
	return nil
}

// addRead queues a read at the leader, or answers it at once when safe.
func (r *Raft) addRead(id uint64, from NodeID) error {
	if len(r.reads) >= r.cfg.MaxPendingReads {
		if from != None {
			r.send(Message{Type: MsgReadIndexResp, To: from, Index: Index(id), Reject: true, Hint: Index(RejectBusy)})
		}
		return ErrBusy
	}
	rq := readRequest{id: id, from: from}
	if r.committedInTerm() {
		rq.index = r.log.committed
		if r.soleVoter() || (r.cfg.ReadLease && r.leaseValid()) {
			r.answerRead(rq)
			return nil
		}
		rq.need = r.hbSeq + 1
		r.readRoundPending = true
	}
	r.reads = append(r.reads, rq)
	return nil
}

// committedInTerm reports whether the leader has committed an entry of its
// own term: before that its commit index may lag the cluster's (§6.4).
func (r *Raft) committedInTerm() bool {
	t, err := r.log.term(r.log.committed)
	return err == nil && t == r.term
}

// onCommitInTerm gives reads that waited for the first commit of the term
// their read index, and asks for a confirmation round.
func (r *Raft) onCommitInTerm() {
	for i := range r.reads {
		if rq := &r.reads[i]; rq.index == 0 {
			rq.index, rq.need = r.log.committed, r.hbSeq+1
			r.readRoundPending = true
		}
	}
	if r.soleVoter() {
		r.releaseReads()
	}
}

// releaseReads answers, in order, every read whose round a quorum echoed.
func (r *Raft) releaseReads() {
	q := r.quorumAck()
	n := 0
	for n < len(r.reads) && r.reads[n].index != 0 && (r.reads[n].need <= q || r.soleVoter()) {
		r.answerRead(r.reads[n])
		n++
	}
	r.reads = append(r.reads[:0], r.reads[n:]...)
}

func (r *Raft) answerRead(rq readRequest) {
	if rq.from == None {
		r.readStates = append(r.readStates, ReadState{ID: rq.id, Index: rq.index})
		return
	}
	r.send(Message{Type: MsgReadIndexResp, To: rq.from, Index: Index(rq.id), Commit: rq.index})
}

// leaseValid reports whether a quorum echoed a heartbeat sent recently
// enough that no other leader can have been elected since (see ReadLease).
func (r *Raft) leaseValid() bool {
	if r.leaseRevoked {
		return false
	}
	q := r.quorumAck()
	sent := r.hbSent[q%hbRingSize]
	if q == 0 || sent.seq != q {
		return false
	}
	return r.ticks < sent.tick+uint64(r.cfg.ElectionTicks-r.cfg.LeaseMarginTicks)
}

// onReadIndexResp turns the leader's answer to a forwarded read into a
// ReadState.
func (r *Raft) onReadIndexResp(m Message) {
	rs := ReadState{ID: uint64(m.Index), Index: m.Commit}
	if m.Reject {
		rs = ReadState{ID: uint64(m.Index), Err: rejectErr(RejectReason(m.Hint))}
	}
	if len(r.readStates) >= r.cfg.MaxPendingReads {
		r.stats.Dropped++ // the runtime's timeout answers this reader
		return
	}
	r.readStates = append(r.readStates, rs)
}

func sortUint64(s []uint64) {
	for i := 1; i < len(s); i++ { // a handful of members: insertion sort
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

package raft

// SoftState is volatile state worth reporting (not persisted).
type SoftState struct {
	Lead NodeID
	Role Role
}

// Ready is a batch of work for the caller; see doc.go for the order in
// which to handle it. Its slices stay valid until Advance is called.
type Ready struct {
	// SoftState is the current leader and role.
	SoftState SoftState
	// HardState must be persisted before Messages are sent. It is the zero
	// HardState when unchanged.
	HardState HardState
	// Entries must be appended to storage (replacing any stored entries at
	// the same or later indexes) before Messages are sent.
	Entries []Entry
	// Messages must be sent after HardState and Entries are persisted.
	Messages []Message
	// Snapshot, if not empty, is a snapshot received from the leader,
	// complete and verified. Before anything else in this Ready (but after
	// writing SnapshotChunks) the caller installs it in storage
	// (InstallSnapshot: the stored log is discarded) and restores its
	// state machine from it. Such a Ready carries no Committed entries.
	Snapshot SnapshotMeta
	// SnapshotChunks must be written, in order, to the incoming snapshot
	// in storage before Messages are sent (they need no sync).
	SnapshotChunks []SnapshotChunk
	// Committed entries must be applied to the state machine in order.
	// They are persisted already.
	Committed []Entry
	// Rejected lists forwarded proposals the leader refused.
	Rejected []ProposalRejection
	// ReadStates answer ReadIndex requests: serve each read once the state
	// machine has applied its Index.
	ReadStates []ReadState
	// MustSync says whether the writes must be made durable (fsync) before
	// Messages are sent: true when entries, the term or the vote changed.
	MustSync bool
	// Err reports a storage read failure the core cannot work around (for
	// example committed entries that cannot be read back). The caller
	// should stop the node: it can neither apply nor vote safely.
	Err error

	// id ties the batch to the Advance that acknowledges it.
	id uint64
}

// HasReady reports whether Ready would return work. It reports false while
// a Ready is outstanding (handed out and not yet Advanced).
func (r *Raft) HasReady() bool {
	if r.readyPending {
		return false
	}
	if r.log.readErr != nil {
		return !r.readErrReported
	}
	return r.softState() != r.prevSoftState ||
		r.hardState() != r.prevHardState ||
		len(r.log.unstable.toPersist()) > 0 ||
		len(r.msgs) > 0 ||
		len(r.rejected) > 0 ||
		len(r.readStates) > 0 ||
		len(r.snapChunks) > 0 ||
		!r.pendingSnap.IsEmpty() ||
		r.readRoundPending ||
		r.log.hasCommittedToApply()
}

// Ready returns the pending work and marks it handed out. Call Advance when
// it is handled; until then Ready returns an empty batch that Advance
// ignores. Tick, Step and Propose may be called before Advance: their
// output joins the next Ready.
func (r *Raft) Ready() Ready {
	if r.readyPending {
		return Ready{SoftState: r.softState()}
	}
	if r.readRoundPending && r.role == RoleLeader {
		r.bcastHeartbeat() // one confirmation round for every read queued since the last Ready
	}
	r.readyID++
	rd := Ready{
		id:         r.readyID,
		SoftState:  r.softState(),
		Entries:    r.log.unstable.toPersist(),
		Messages:   r.msgs,
		Committed:  r.log.committedToApply(r.cfg.MaxCommittedBytesPerReady),
		Rejected:   r.rejected,
		ReadStates: r.readStates,
		Snapshot:   r.pendingSnap,

		SnapshotChunks: r.snapChunks,
	}
	if hs := r.hardState(); hs != r.prevHardState {
		rd.HardState = hs
		rd.MustSync = hs.Term != r.prevHardState.Term || hs.Vote != r.prevHardState.Vote
		r.prevHardState = hs
	}
	rd.MustSync = rd.MustSync || len(rd.Entries) > 0
	if !rd.Snapshot.IsEmpty() {
		rd.Committed = nil // applied in the state the snapshot restores
		rd.MustSync = true
		r.pendingSnap = SnapshotMeta{}
	}
	if rd.Err = r.log.readErr; rd.Err != nil {
		r.readErrReported = true
	}
	r.prevSoftState = rd.SoftState
	r.log.unstable.accept()
	r.msgs, r.msgsSpare = r.msgsSpare[:0], r.msgs
	r.rejected, r.rejectedSpare = r.rejectedSpare[:0], r.rejected
	r.readStates, r.readStatesSpare = r.readStatesSpare[:0], r.readStates
	r.snapChunks, r.snapChunksSpare = r.snapChunksSpare[:0], r.snapChunks
	r.readyPending = true
	return rd
}

// Advance tells the node that rd was handled: its entries and hard state
// are persisted, its messages sent, its committed entries applied.
func (r *Raft) Advance(rd Ready) {
	if !r.readyPending || rd.id != r.readyID {
		return // not the outstanding batch (e.g. the empty one of a misuse)
	}
	r.readyPending = false
	clear(r.msgsSpare) // drop references to payloads already sent
	clear(r.snapChunksSpare)
	if n := len(rd.Entries); n > 0 {
		e := &rd.Entries[n-1]
		r.log.unstable.stableTo(e.Index, e.Term)
	}
	if n := len(rd.Committed); n > 0 {
		r.log.appliedTo(rd.Committed[n-1].Index)
		r.releaseUncommitted(rd.Committed)
	}
	if r.role == RoleLeader && r.self != nil { // nil: a removed leader handing off
		// The leader counts its own copy only once it is durable, so a
		// leader crash cannot lose an entry it helped commit.
		r.self.match = max(r.self.match, r.log.stableLast())
		if r.maybeCommit() {
			r.bcastAppend()
		}
	}
}

// releaseUncommitted returns applied payload to the uncommitted budget.
func (r *Raft) releaseUncommitted(ents []Entry) {
	if r.role != RoleLeader {
		return
	}
	for i := range ents {
		if ents[i].Term == r.term {
			r.uncommittedBytes = max(0, r.uncommittedBytes-len(ents[i].Data))
		}
	}
}

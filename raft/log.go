package raft

// raftLog is the core's view of the log: the entries the caller has
// persisted (read through Storage) followed by the unstable tail the core
// holds until the caller reports them persisted.
//
// Invariants: applied <= committed; committed <= lastIndex();
// storage's last index == unstable.offset-1 once the caller has handled
// every Ready (before that, storage may hold a stale suffix that the
// unstable tail overrides).
type raftLog struct {
	storage   Storage
	unstable  unstable
	committed Index
	applied   Index
	// readErr is the first storage read failure that stops progress; it is
	// reported in Ready.Err so the caller can stop the node.
	readErr error
}

func (l *raftLog) noteReadErr(err error) {
	if l.readErr == nil {
		l.readErr = err
	}
}

func newLog(s Storage, hs HardState, applied Index) (*raftLog, error) {
	first, err := s.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := s.LastIndex()
	if err != nil {
		return nil, err
	}
	if hs.Commit > last {
		return nil, &configError{"Storage", "hard state commit index is beyond the last stored entry"}
	}
	if applied > last {
		return nil, &configError{"Applied", "beyond the last stored entry"}
	}
	l := &raftLog{storage: s}
	l.unstable.offset, l.unstable.inProgress = last+1, last+1
	l.committed = max(hs.Commit, first-1)
	l.applied = max(applied, first-1)
	l.committed = max(l.committed, l.applied)
	return l, nil
}

// lastIndex returns the index of the last entry, stable or not.
func (l *raftLog) lastIndex() Index {
	return l.unstable.offset + Index(len(l.unstable.entries)) - 1
}

// stableLast is the last index the caller has reported persisted.
func (l *raftLog) stableLast() Index { return l.unstable.offset - 1 }

// term returns the term of entry i.
func (l *raftLog) term(i Index) (Term, error) {
	if t, ok := l.unstable.term(i); ok {
		return t, nil
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	if i == 0 {
		return 0, nil
	}
	return l.storage.Term(i)
}

func (l *raftLog) lastTerm() (Term, error) {
	return l.term(l.lastIndex())
}

func (l *raftLog) matchTerm(i Index, t Term) bool {
	lt, err := l.term(i)
	return err == nil && lt == t
}

// isUpToDate reports whether a candidate log ending at (lasti, term) is at
// least as up-to-date as ours (§5.4.1).
// If our own last term cannot be read, the answer is no: granting a vote
// blind could elect a leader missing committed entries.
func (l *raftLog) isUpToDate(lasti Index, term Term) bool {
	lt, err := l.lastTerm()
	if err != nil {
		l.noteReadErr(err)
		return false
	}
	return term > lt || (term == lt && lasti >= l.lastIndex())
}

// findConflict returns the index of the first entry of ents that is missing
// from, or conflicts with, the log; 0 if all of ents is already present.
func (l *raftLog) findConflict(ents []Entry) Index {
	for i := range ents {
		if !l.matchTerm(ents[i].Index, ents[i].Term) {
			return ents[i].Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is
// <= term, and that term. Both sides of fast backtracking use it: every
// index it skips has a term > term and so cannot match (§5.3, "optimization").
func (l *raftLog) findConflictByTerm(index Index, term Term) (Index, Term) {
	index = min(index, l.lastIndex())
	for ; index > 0; index-- {
		t, err := l.term(index)
		if err != nil {
			return index, 0 // compacted: no hint below this point
		}
		if t <= term {
			return index, t
		}
	}
	return 0, 0
}

// append adds entries after truncating any conflicting suffix. It returns
// the new last index.
func (l *raftLog) append(ents []Entry) Index {
	if len(ents) > 0 {
		l.unstable.truncateAndAppend(ents)
	}
	return l.lastIndex()
}

// commitTo advances the commit index; it never moves backwards.
func (l *raftLog) commitTo(i Index) bool {
	i = min(i, l.lastIndex())
	if i <= l.committed {
		return false
	}
	l.committed = i
	return true
}

// entriesFrom returns entries starting at lo for a MsgApp, bounded by
// maxBytes of payload plus per-entry overhead (at least one entry). The
// entries come from one source only (storage or the unstable tail) so that
// no copy is needed; the next message continues where this one stopped.
func (l *raftLog) entriesFrom(lo Index, maxBytes int) ([]Entry, error) {
	if lo > l.lastIndex() {
		return nil, nil
	}
	var ents []Entry
	if lo >= l.unstable.offset {
		ents = l.unstable.entries[lo-l.unstable.offset:]
	} else {
		var err error
		ents, err = l.storage.Entries(lo, l.unstable.offset, maxBytes)
		if err != nil {
			return nil, err
		}
	}
	return limitMsgSize(ents, maxBytes), nil
}

// committedToApply returns persisted, committed, unapplied entries, bounded
// by maxBytes of payload (at least one entry).
func (l *raftLog) committedToApply(maxBytes int) []Entry {
	hi := min(l.committed, l.stableLast()) + 1
	if l.applied+1 >= hi {
		return nil
	}
	ents, err := l.storage.Entries(l.applied+1, hi, maxBytes)
	if err != nil {
		l.noteReadErr(err)
		return nil
	}
	return ents
}

func (l *raftLog) hasCommittedToApply() bool {
	return l.applied < min(l.committed, l.stableLast())
}

func (l *raftLog) appliedTo(i Index) {
	if i > l.applied && i <= l.committed {
		l.applied = i
	}
}

// restore makes the log start after a snapshot: every entry is dropped (the
// caller discards its stored log when it installs the snapshot), and the
// snapshot's entries count as committed and applied.
func (l *raftLog) restore(meta SnapshotMeta) {
	l.unstable.entries = nil
	l.unstable.offset, l.unstable.inProgress = meta.Index+1, meta.Index+1
	l.unstable.snapIndex, l.unstable.snapTerm = meta.Index, meta.Term
	l.committed = max(l.committed, meta.Index)
	l.applied = max(l.applied, meta.Index)
}

// limitMsgSize returns the longest prefix of ents that fits maxBytes, each
// entry charged its payload plus entryOverheadBytes; at least one entry.
func limitMsgSize(ents []Entry, maxBytes int) []Entry {
	size := 0
	for i := range ents {
		size += len(ents[i].Data) + entryOverheadBytes
		if i > 0 && size > maxBytes {
			return ents[:i]
		}
	}
	return ents
}

// unstable holds entries not yet reported persisted.
// Invariant: entries[i].Index == offset + i. Entries below inProgress have
// been handed to the caller in a Ready and await Advance.
type unstable struct {
	entries    []Entry
	offset     Index
	inProgress Index
	// snapIndex and snapTerm name the last entry of the latest snapshot
	// received from a leader, so that its term is known before the caller
	// has installed the snapshot in storage.
	snapIndex Index
	snapTerm  Term
}

func (u *unstable) term(i Index) (Term, bool) {
	if i == u.snapIndex && i != 0 {
		return u.snapTerm, true
	}
	if i < u.offset || i >= u.offset+Index(len(u.entries)) {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// truncateAndAppend appends ents, replacing any entries at or after
// ents[0].Index. Replacement copies into a fresh array: the old one may be
// referenced by a Ready or a message the caller has not finished with.
func (u *unstable) truncateAndAppend(ents []Entry) {
	after := ents[0].Index
	end := u.offset + Index(len(u.entries))
	switch {
	case after == end:
		u.entries = append(u.entries, ents...)
	case after <= u.offset:
		u.offset = after
		u.entries = append(make([]Entry, 0, len(ents)), ents...)
	default:
		kept := u.entries[:after-u.offset]
		fresh := make([]Entry, len(kept), len(kept)+len(ents))
		copy(fresh, kept)
		u.entries = append(fresh, ents...)
	}
	u.inProgress = min(u.inProgress, after)
}

// toPersist returns the entries not yet handed out in a Ready.
func (u *unstable) toPersist() []Entry {
	return u.entries[u.inProgress-u.offset:]
}

// accept marks everything handed out in a Ready as in progress.
func (u *unstable) accept() {
	u.inProgress = u.offset + Index(len(u.entries))
}

// stableTo drops entries up to i once the caller reports them persisted,
// provided entry i still has term t (it may have been replaced meanwhile).
func (u *unstable) stableTo(i Index, t Term) {
	if gt, ok := u.term(i); !ok || gt != t {
		return
	}
	n := i + 1 - u.offset
	// Slicing forward (never resetting to [:0]) means later appends never
	// overwrite entries a caller may still reference.
	u.entries = u.entries[n:]
	u.offset = i + 1
	u.inProgress = max(u.inProgress, u.offset)
}

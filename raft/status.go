package raft

// Stats counts inputs the node refused, and work it saved.
type Stats struct {
	// Dropped counts messages refused by Step (malformed, from unknown
	// peers, contradicting committed entries) and excess rejections.
	Dropped uint64
	// Refused counts entries a follower declined to buffer because of
	// MaxEntriesInMemory (the leader resends them).
	Refused uint64
	// SnapshotsSent counts snapshot transfers a leader started;
	// SnapshotsInstalled those a follower completed; SnapshotsBad the
	// received snapshots whose checksum failed (transferred again).
	SnapshotsSent      uint64
	SnapshotsInstalled uint64
	SnapshotsBad       uint64
	// AcksMerged counts append acknowledgements folded into an earlier
	// one of the same Ready (one answer for a burst of appends).
	AcksMerged uint64
}

// PeerProgress is the leader's view of one member.
type PeerProgress struct {
	ID           NodeID
	Match, Next  Index
	State        ProgressState
	Inflight     int
	RecentActive bool
}

// Status is a snapshot of a node's state for monitoring.
type Status struct {
	ID         NodeID
	Role       Role
	Term       Term
	Vote       NodeID
	Lead       NodeID
	Commit     Index
	Applied    Index
	FirstIndex Index
	LastIndex  Index
	Stats      Stats
	// Conf is the configuration in effect.
	Conf ConfState
	// Progress is set on the leader only, one entry per member.
	Progress []PeerProgress
}

// Status returns the node's current state. It allocates; do not call it on
// a hot path.
func (r *Raft) Status() Status {
	st := Status{
		ID: r.id, Role: r.role, Term: r.term, Vote: r.vote, Lead: r.lead,
		Commit: r.log.committed, Applied: r.log.applied,
		LastIndex: r.log.lastIndex(), Stats: r.stats, Conf: r.conf.Clone(),
	}
	if fi, err := r.log.storage.FirstIndex(); err == nil {
		st.FirstIndex = fi
	}
	if r.role == RoleLeader {
		for i := range r.prs {
			pr := &r.prs[i]
			st.Progress = append(st.Progress, PeerProgress{ID: pr.id, Match: pr.match, Next: pr.next,
				State: pr.state, Inflight: pr.inflights.count, RecentActive: pr.recentActive})
		}
	}
	return st
}

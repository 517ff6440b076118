package raft

import "slices"

// confRec is a configuration entry in the log above the commit index: it
// takes effect when committed, and is forgotten if its entry is truncated.
type confRec struct {
	index Index
	conf  ConfState
}

// quorum sets of a configuration: the incoming voters, and the outgoing
// ones of a joint configuration.
const (
	setIncoming = 0
	setOutgoing = 1
)

// inSet reports whether p votes in the given half of the configuration.
func (p *progress) inSet(set int) bool {
	if set == setIncoming {
		return p.voter
	}
	return p.outgoing
}

// sets returns how many voter sets decisions need a majority of.
func (r *Raft) sets() int {
	if r.conf.Joint() {
		return 2
	}
	return 1
}

// promotable reports whether this node may campaign: it is a voter.
func (r *Raft) promotable() bool { return r.conf.IsVoter(r.id) }

// soleVoter reports whether this node alone forms every quorum.
func (r *Raft) soleVoter() bool {
	return !r.conf.Joint() && len(r.conf.Voters) == 1 && r.conf.Voters[0] == r.id
}

// quorumMatch returns the largest index stored on a majority of every
// voter set (the commit candidate, §5.3 and §4.3).
func (r *Raft) quorumMatch() Index {
	res := ^Index(0)
	for set := range r.sets() {
		s := r.matchScratch[:0]
		for i := range r.prs {
			if r.prs[i].inSet(set) {
				s = append(s, r.prs[i].match)
			}
		}
		if len(s) == 0 {
			return 0
		}
		slices.Sort(s)
		res = min(res, s[len(s)-(len(s)/2+1)])
	}
	return res
}

// quorumAck returns the largest heartbeat sequence echoed by a majority of
// every voter set (this leader counts as having echoed everything it sent).
func (r *Raft) quorumAck() uint64 {
	res := ^uint64(0)
	for set := range r.sets() {
		s := r.ackScratch[:0]
		for i := range r.prs {
			if pr := &r.prs[i]; pr.inSet(set) {
				ack := pr.readAck
				if pr == r.self {
					ack = r.hbSeq
				}
				s = append(s, ack)
			}
		}
		if len(s) == 0 {
			return 0
		}
		sortUint64(s)
		res = min(res, s[len(s)-(len(s)/2+1)])
	}
	return res
}

// tally counts votes per voter set: won when a majority of every set
// granted, lost when some set can no longer reach a majority.
func (r *Raft) tally() electionResult {
	won := true
	for set := range r.sets() {
		yes, no, n := 0, 0, 0
		for i := range r.prs {
			if pr := &r.prs[i]; pr.inSet(set) {
				n++
				switch pr.vote {
				case voteGranted:
					yes++
				case voteRejected:
					no++
				}
			}
		}
		q := n/2 + 1
		if no > n-q {
			return electionLost
		}
		won = won && yes >= q
	}
	if won {
		return electionWon
	}
	return electionPending
}

// quorumActive reports whether a majority of every voter set was heard
// from since the last call, and starts a new observation round.
func (r *Raft) quorumActive() bool {
	ok := true
	for set := range r.sets() {
		active, n := 0, 0
		for i := range r.prs {
			if pr := &r.prs[i]; pr.inSet(set) {
				n++
				if pr == r.self || pr.recentActive {
					active++
				}
			}
		}
		ok = ok && active >= n/2+1
	}
	for i := range r.prs {
		if pr := &r.prs[i]; pr != r.self {
			pr.recentActive = false
		}
	}
	return ok
}

// setConf makes cs the configuration: progress for every member (kept for
// members that stay), flags for the quorum sets. A leader that is no
// longer a voter steps down (dissertation §4.2.2).
func (r *Raft) setConf(cs ConfState) {
	r.conf = cs
	old := r.prs
	members := cs.Members()
	r.prs = make([]progress, len(members))
	for i, id := range members {
		pr := progress{id: id, inflights: newInflights(r.cfg.MaxInflightMsgs)}
		if j := slices.IndexFunc(old, func(p progress) bool { return p.id == id }); j >= 0 {
			pr = old[j]
		} else if r.role == RoleLeader {
			pr.resetForLeader(r.log.lastIndex() + 1)
		}
		pr.voter = slices.Contains(cs.Voters, id)
		pr.outgoing = slices.Contains(cs.VotersOutgoing, id)
		r.prs[i] = pr
	}
	r.self = r.progressOf(r.id)
	r.matchScratch = make([]Index, 0, len(r.prs))
	r.ackScratch = make([]uint64, 0, len(r.prs))
	if r.leadTransferee != None && !cs.IsVoter(r.leadTransferee) {
		r.leadTransferee = None
	}
	if r.role == RoleLeader && !r.promotable() {
		r.handOff(None)
	}
}

// handOff is what a leader does once it is no longer a voter (its removal
// or demotion committed): it keeps leading, without counting itself, until
// a voter of the new configuration holds its whole log, then tells that
// voter to campaign (MsgTimeoutNow), like a leadership transfer. Stepping
// down at once (dissertation §4.2.2) can strand the cluster when voters
// apply configurations on commit: if the message that would have told the
// remaining voters of the commit is lost, they still need the removed
// node's vote, which it refuses them while its log is longer. Proposals
// fail with ErrBusy meanwhile; check-quorum still ends a hand-off to
// voters that cannot be reached. A retry (the previous target, failed,
// not taking over within an election timeout) picks another voter if
// there is one, so that a target that crashed cannot keep it leading, and
// refusing everything, for ever.
func (r *Raft) handOff(failed NodeID) {
	var best *progress
	for i := range r.prs {
		pr := &r.prs[i]
		if pr.id != r.id && pr.voter && pr.id != failed && (best == nil || pr.match > best.match) {
			best = pr
		}
	}
	if best == nil && failed != None {
		best = r.progressOf(failed) // the only other voter: try it again
	}
	if best == nil { // no voter to hand to (cannot happen: configurations have one)
		r.becomeFollower(r.term, None)
		return
	}
	r.leadTransferee, r.transferElapsed = best.id, 0
	r.maybeTimeoutNow(best)
}

// recordConfs notes the configuration entries among ents, which were just
// appended to the log (replacing any entries from ents[0].Index on).
func (r *Raft) recordConfs(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	r.confRecs = slices.DeleteFunc(r.confRecs, func(c confRec) bool { return c.index >= ents[0].Index })
	for i := range ents {
		if ents[i].Type != EntryConfChange {
			continue
		}
		cs, err := DecodeConfState(ents[i].Data)
		if err != nil {
			r.stats.Dropped++ // every node skips the same bad entry
			continue
		}
		r.confRecs = append(r.confRecs, confRec{index: ents[i].Index, conf: cs})
	}
}

// commitTo advances the commit index and applies the configuration
// entries it commits.
func (r *Raft) commitTo(i Index) bool {
	if !r.log.commitTo(i) {
		return false
	}
	r.applyCommittedConfs()
	return true
}

// applyCommittedConfs applies committed configuration entries in order. A
// leader that commits a joint configuration proposes leaving it at once.
func (r *Raft) applyCommittedConfs() {
	n := 0
	for n < len(r.confRecs) && r.confRecs[n].index <= r.log.committed {
		r.setConf(r.confRecs[n].conf)
		n++
	}
	if n == 0 {
		return
	}
	r.confRecs = append(r.confRecs[:0], r.confRecs[n:]...)
	if r.role == RoleLeader && r.conf.Joint() && len(r.confRecs) == 0 {
		r.appendConf(leaveJoint(r.conf))
	}
}

// appendConf appends a configuration entry at the leader.
func (r *Raft) appendConf(cs ConfState) Index {
	e := Entry{Term: r.term, Index: r.log.lastIndex() + 1, Type: EntryConfChange, Data: AppendConfState(nil, cs)}
	r.appendEntry(e)
	r.bcastAppend()
	return e.Index
}

// ProposeConfChange proposes a membership change at the leader: one voter
// added or removed directly, larger changes through a joint configuration
// that is left automatically. Learners are added with ConfAddLearner and
// promoted with ConfAddVoter. Changes run one at a time: while one is not
// committed it fails with ErrConfChangePending. The change takes effect on
// each node when its entry commits; the returned Proposal locates it.
func (r *Raft) ProposeConfChange(changes ...ConfChange) (Proposal, error) {
	switch {
	case r.role != RoleLeader:
		return Proposal{}, ErrNotLeader
	case len(r.confRecs) > 0 || r.conf.Joint():
		return Proposal{}, ErrConfChangePending
	case r.leadTransferee != None:
		return Proposal{}, ErrBusy
	}
	next, err := nextConf(r.conf, changes)
	if err != nil {
		return Proposal{}, err
	}
	if len(AppendConfState(nil, next)) > r.cfg.MaxEntryBytes() {
		// It must fit one MsgApp, and the header chunk of a snapshot.
		return Proposal{}, ErrTooLarge
	}
	idx := r.appendConf(next)
	return Proposal{Term: r.term, Index: idx}, nil
}

// ConfState returns the configuration in effect (a copy).
func (r *Raft) ConfState() ConfState { return r.conf.Clone() }

// initConf restores the configuration at start: the snapshot's, or the
// bootstrap Peers, then every configuration entry in the stored log after
// it (committed ones applied, later ones pending).
func (r *Raft) initConf(snap SnapshotMeta, peers []NodeID) error {
	cs := snap.Conf
	if cs.IsEmpty() && len(peers) > 0 {
		cs = ConfState{Voters: slices.Sorted(slices.Values(peers))}
	}
	r.setConf(cs.Clone())
	first, err := r.log.storage.FirstIndex()
	if err != nil {
		return err
	}
	lo, hi := max(first, snap.Index+1), r.log.lastIndex()+1
	for lo < hi {
		ents, err := r.log.storage.Entries(lo, hi, 1<<20)
		if err != nil {
			return err
		}
		r.recordConfs(ents)
		lo += Index(len(ents))
	}
	r.applyCommittedConfs()
	return nil
}

// TransferLeadership hands leadership to the voter to (dissertation §3.10):
// the leader stops taking proposals (ErrBusy), brings to's log up to date,
// then sends it MsgTimeoutNow so that it campaigns at once. If to has not
// taken over within an election timeout the leader resumes. Transferring
// to the leader itself does nothing.
func (r *Raft) TransferLeadership(to NodeID) error {
	switch {
	case r.role != RoleLeader:
		return ErrNotLeader
	case to == r.id:
		return nil
	}
	pr := r.progressOf(to)
	if pr == nil || !pr.voter {
		return ErrNotVoter
	}
	r.leadTransferee, r.transferElapsed = to, 0
	r.maybeTimeoutNow(pr)
	return nil
}

// maybeTimeoutNow tells the transfer target to campaign once its log
// matches the leader's, or sends it what it lacks.
func (r *Raft) maybeTimeoutNow(pr *progress) {
	if pr.id != r.leadTransferee {
		return
	}
	if pr.match == r.log.lastIndex() {
		r.sendTimeoutNow(pr.id)
		return
	}
	r.maybeSendAppend(pr, true)
}

// sendTimeoutNow tells the transfer target to campaign at once. Its
// campaign overrides the followers' leader lease (MsgVote with the
// transfer flag), so this leader may be deposed while a quorum's last
// echo is still fresh: its read lease proves nothing any more, and reads
// go through a ReadIndex round (which a deposed leader cannot complete)
// for the rest of its term.
func (r *Raft) sendTimeoutNow(to NodeID) {
	r.leaseRevoked = true
	r.send(Message{Type: MsgTimeoutNow, To: to})
}

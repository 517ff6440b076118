package sim

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/embraft/embraft/raft"
)

// Membership churn and the checkers that know about configurations.
//
// The configuration is a function of the committed log: the bootstrap
// voters, then each committed EntryConfChange in turn (raft/doc.go,
// "Membership": a configuration takes effect on each node when its entry
// commits). The checker keeps the configuration entries of the committed
// log (checker.confs, from the first copy of each entry seen committed),
// so that every check that needs "the configuration in effect as of index
// i" reads it from there, never from the node it checks.

// confEntry is a configuration entry of the committed log.
type confEntry struct {
	index raft.Index
	cs    raft.ConfState
}

// confK is the number of committed configuration entries at or below
// index i: configuration confK(i) is the one in effect as of i.
func (c *checker) confK(i raft.Index) int {
	return sort.Search(len(c.confs), func(k int) bool { return c.confs[k].index > i })
}

// conf returns committed configuration k (0: the bootstrap one). The
// result shares memory with the checker's: callers must not modify it.
func (c *checker) conf(k int) raft.ConfState {
	cs := c.boot
	if k > 0 {
		cs = c.confs[k-1].cs
	}
	if c.fake != nil {
		cs = c.fake(cs)
	}
	return cs
}

// realConf is conf without the checker tests' fake.
func (c *checker) realConf(k int) raft.ConfState {
	if k > 0 {
		return c.confs[k-1].cs
	}
	return c.boot
}

// confOK reports whether got is configuration k. A node that joined (not
// a bootstrap node) may know no configuration at all while no
// configuration entry is committed: it never saw the bootstrap voters.
// Likewise a snapshot taken by such a node carries none.
func (w *world) confOK(got raft.ConfState, k int, mayBeEmpty bool) bool {
	return got.Equal(w.chk.conf(k)) || (k == 0 && mayBeEmpty && got.IsEmpty())
}

// coreConf is the configuration node n's core was last seen in.
func (w *world) coreConf(n *simNode) raft.ConfState {
	if n.coreEmpty {
		return raft.ConfState{}
	}
	return w.chk.conf(n.coreK)
}

// verifyCoreConf checks that node n's core is in the configuration
// committed as of its commit index, when that index crossed a
// configuration entry (or always, if force), and remembers it.
func (w *world) verifyCoreConf(n *simNode, force bool, how string) {
	k := w.chk.confK(n.commit)
	if k == n.coreK && !force {
		return
	}
	n.coreK = k
	got := n.r.ConfState()
	n.coreEmpty = got.IsEmpty()
	if w.cfg.noConfEquality || w.confOK(got, k, !n.bootstrap) {
		return
	}
	if how != "" {
		how += ", "
	}
	w.fail("configuration", fmt.Sprintf("node %d (%scommit index %d) is in configuration %s, but the one committed as of index %d is %s",
		n.id, how, n.commit, describeConf(got), n.commit, describeConf(w.chk.conf(k))))
}

// checkAppliedConf checks the configuration node n tracks as of its
// applied index (what its snapshots record): every node that applied
// index i has the configuration committed as of i.
func (w *world) checkAppliedConf(n *simNode, what string) {
	if w.cfg.noConfEquality {
		return
	}
	k := w.chk.confK(n.applied)
	if !w.confOK(n.conf, k, !n.bootstrap) {
		w.fail("configuration", fmt.Sprintf("node %d %s: as of its applied index %d it tracks configuration %s, but the one committed as of there is %s",
			n.id, what, n.applied, describeConf(n.conf), describeConf(w.chk.conf(k))))
	}
}

// checkSnapConf checks the configuration a snapshot carries: the one
// committed as of its index (or none, before any configuration entry).
func (w *world) checkSnapConf(n *simNode, meta raft.SnapshotMeta, how string) {
	if w.cfg.noConfEquality {
		return
	}
	k := w.chk.confK(meta.Index)
	if !w.confOK(meta.Conf, k, true) {
		w.fail("snapshot configuration", fmt.Sprintf("node %d %s a snapshot at index %d carrying configuration %s, but the one committed as of there is %s",
			n.id, how, meta.Index, describeConf(meta.Conf), describeConf(w.chk.conf(k))))
	}
}

// committedConf records configuration entry e, just seen committed (by
// node n) for the first time, and checks that it follows from the
// previous configuration by a change the core may make: at most one voter
// added or removed directly; or a joint configuration whose outgoing half
// is the previous voters; or, after a joint one, exactly its end.
func (w *world) committedConf(n *simNode, e *raft.Entry) {
	cs, err := raft.DecodeConfState(e.Data)
	if err != nil {
		w.fail("configuration", fmt.Sprintf("the configuration entry committed at index %d (term %d) is malformed: %v", e.Index, e.Term, err))
		return
	}
	prev := w.chk.realConf(len(w.chk.confs))
	st := &w.rep.Churn
	bad := ""
	switch {
	case prev.Joint():
		want := raft.ConfState{Voters: prev.Voters, Learners: prev.Learners}
		if !cs.Equal(want) {
			bad = "a joint configuration must be followed by its end, " + describeConf(want)
		}
		st.JointLeft++
	case cs.Joint():
		if !slices.Equal(cs.VotersOutgoing, prev.Voters) {
			bad = "the outgoing voters of a joint configuration must be the previous voters"
		} else if votersDiff(prev.Voters, cs.Voters) < 2 {
			bad = "a change of at most one voter needs no joint configuration"
		}
		st.JointEntered++
		st.Committed++
	default:
		if d := votersDiff(prev.Voters, cs.Voters); d > 1 {
			bad = fmt.Sprintf("%d voters changed without a joint configuration", d)
		}
		st.Committed++
	}
	if bad != "" {
		w.fail("configuration sequence", fmt.Sprintf("configuration %s committed at index %d follows %s: %s",
			describeConf(cs), e.Index, describeConf(prev), bad))
		return
	}
	w.chk.confs = append(w.chk.confs, confEntry{index: e.Index, cs: cs})
	for _, id := range cs.Members() {
		if int(id) >= 1 && int(id) <= len(w.nodes) {
			w.nodes[id-1].everMember = true
		}
	}
	st.MaxVoters = max(st.MaxVoters, len(cs.Voters))
	st.MinVoters = min(st.MinVoters, len(cs.Voters))
	st.MaxMembers = max(st.MaxMembers, len(cs.Members()))
	w.ev.add(event{t: w.now, kind: evConf, a: uint8(n.id), x: uint64(e.Index), y: idMask(cs.Voters),
		z: idMask(cs.VotersOutgoing) | idMask(cs.Learners)<<32})
}

// votersDiff counts the IDs in exactly one of two voter lists.
func votersDiff(a, b []raft.NodeID) int {
	d := 0
	for _, id := range a {
		if !slices.Contains(b, id) {
			d++
		}
	}
	for _, id := range b {
		if !slices.Contains(a, id) {
			d++
		}
	}
	return d
}

// holds reports whether node id durably stores entry (i, t).
func (w *world) holds(id raft.NodeID, i raft.Index, t raft.Term) bool {
	if id < 1 || int(id) > len(w.nodes) {
		return false
	}
	st := w.nodes[id-1].st
	log := st.durLog
	if w.cfg.lyingDisk {
		log = st.log // nothing is ever durable on a lying disk
	}
	e, ok := entryOf(log, i)
	return ok && e.Term == t
}

// quorumOf reports whether a majority of every voter set of cs satisfies
// ok, and describes the count.
func quorumOf(cs raft.ConfState, ok func(raft.NodeID) bool) (bool, string) {
	sets := [][]raft.NodeID{cs.Voters}
	if cs.Joint() {
		sets = append(sets, cs.VotersOutgoing)
	}
	good := true
	var desc []string
	for _, set := range sets {
		var yes []raft.NodeID
		for _, id := range set {
			if ok(id) {
				yes = append(yes, id)
			}
		}
		if len(yes) < len(set)/2+1 {
			good = false
		}
		desc = append(desc, fmt.Sprintf("%v of %v", yes, set))
	}
	return good, strings.Join(desc, " and ")
}

// checkCommitQuorum: leader n advanced its commit index from old to c, an
// entry of term t (its own, unless the commit rule is broken). It counted replicas in the configuration in effect
// at its commit index, which is the one committed as of old (or, if it
// advanced twice before this Ready, as of an index between): a quorum of
// it, both halves if joint, must store the entry durably (a follower
// acknowledges only what it synced, and the leader counts only its own
// synced entries).
func (w *world) checkCommitQuorum(n *simNode, old, c raft.Index, t raft.Term) {
	has := func(id raft.NodeID) bool { return w.holds(id, c, t) }
	var desc string
	for k := w.chk.confK(old); k <= w.chk.confK(c-1); k++ {
		ok, d := quorumOf(w.chk.conf(k), has)
		if ok {
			return
		}
		if desc == "" {
			desc = d
		}
	}
	w.fail("commit quorum", fmt.Sprintf("leader %d of term %d committed index %d (term %d), which only %s store durably (configuration %s, in effect at its commit index %d)",
		n.id, n.term, c, t, desc, describeConf(w.chk.conf(w.chk.confK(old))), old))
}

// leaderElected runs the membership checks on node n, which just became
// leader of its term: it is a voter of its configuration; a quorum of that
// configuration (both halves if joint) voted for it in this term (votes as
// the voters persisted them); and its log holds at most one configuration
// entry above the committed index.
func (w *world) leaderElected(n *simNode) {
	t := n.term
	cs := w.coreConf(n)
	if !cs.IsVoter(n.id) {
		w.fail("leader is a voter", fmt.Sprintf("node %d became leader of term %d but is not a voter of its configuration %s (commit index %d)",
			n.id, t, describeConf(cs), n.commit))
		return
	}
	voted := func(id raft.NodeID) bool {
		if id < 1 || int(id) > len(w.nodes) {
			return false
		}
		v := w.nodes[id-1].votes
		return int(t) < len(v) && v[t] == n.id
	}
	if ok, d := quorumOf(cs, voted); !ok {
		w.fail("election quorum", fmt.Sprintf("node %d became leader of term %d with the votes of %s only (configuration %s)",
			n.id, t, d, describeConf(cs)))
		return
	}
	if w.checkPendingConfs(n, "became leader"); w.err != nil {
		return
	}
	if !w.chk.conf(len(w.chk.confs)).IsVoter(n.id) {
		w.rep.Churn.LeadersOutsideConf++
	}
	if tr := &w.transfer; tr.active && t > tr.term {
		if n.id == tr.to && w.now <= tr.deadline {
			w.rep.Churn.TransfersCompleted++
		}
		tr.active = false
	}
}

// checkLeaderIsVoter: a leader whose removal (or demotion to outgoing
// voter, once the joint configuration is left) is committed hands off: it
// may keep leading until a voter of the new configuration holds its log
// (raft's handOff), but it appends nothing more.
func (w *world) checkLeaderIsVoter(n *simNode) {
	if cs := w.coreConf(n); cs.IsVoter(n.id) {
		n.handOffLast = 0
		return
	}
	last := n.st.lastIndex()
	if n.handOffLast == 0 {
		n.handOffLast = last
		w.rep.Churn.HandOffs++
		return
	}
	if last > n.handOffLast {
		w.fail("removed leader appends nothing", fmt.Sprintf("node %d leads term %d handing off (not a voter of %s, committed as of its commit index %d), yet its log grew from %d to %d",
			n.id, n.term, describeConf(w.coreConf(n)), n.commit, n.handOffLast, last))
	}
}

// checkPendingConfs: one configuration change at a time. Leader n's log
// holds at most one configuration entry above the highest index seen
// committed (a new leader may inherit one that its predecessor proposed,
// and then it proposes none until that one commits).
func (w *world) checkPendingConfs(n *simNode, why string) {
	var idx []raft.Index
	for i := raft.Index(len(w.chk.canon)) + 1; i <= n.st.lastIndex(); i++ {
		if n.st.log[i-1].Type == raft.EntryConfChange {
			idx = append(idx, i)
		}
	}
	if len(idx) > 1 {
		w.fail("one change at a time", fmt.Sprintf("leader %d of term %d %s with %d uncommitted configuration entries in its log, at %v (committed up to %d)",
			n.id, n.term, why, len(idx), idx, len(w.chk.canon)))
	}
}

func hasConfEntry(ents []raft.Entry) bool {
	for i := range ents {
		if ents[i].Type == raft.EntryConfChange {
			return true
		}
	}
	return false
}

// preGrants are the pre-vote grants a node received that carry one term.
type preGrants struct {
	term raft.Term
	mask uint64
}

// notePreVoteGrant records a pre-vote grant the node's core accepted, the
// node's term being before when it arrived. A grant of an earlier term (a
// late copy from a past round) is one the core ignores; recording it would
// also overwrite the slot of a newer term that shares it (term 5 and term 9
// share grants[1]) and hide that round's grants from campaigned.
func (n *simNode) notePreVoteGrant(m *raft.Message, before raft.Term) {
	g := &n.grants[m.Term%raft.Term(len(n.grants))]
	if m.Term < before || m.Term < g.term {
		return
	}
	if g.term != m.Term {
		*g = preGrants{term: m.Term}
	}
	g.mask |= idMask([]raft.NodeID{m.From})
}

// granted reports whether node id granted n a pre-vote that carries term t.
func (n *simNode) granted(id raft.NodeID, t raft.Term) bool {
	g := n.grants[t%raft.Term(len(n.grants))]
	return g.term == t && g.mask&idMask([]raft.NodeID{id}) != 0
}

// campaigned runs the checks on node n, just seen campaigning (a
// candidate) in term n.term: it is a voter of its configuration (the one
// committed as of its commit index); and, unless pre-vote is off or its
// leader asked it to campaign (MsgTimeoutNow), a quorum of that
// configuration (both halves if joint, itself included) granted it a
// pre-vote. The grants counted are those that carry the term it campaigns
// in, and also those that carry the term before it: a core counts a late
// grant of its previous round that carries its current term (as etcd's
// does), which is harmless, since the votes are still needed. With these
// checks, a node outside the receiver's configuration (removed, or added
// in a configuration the receiver has not learned) raises terms only when
// it may be elected (termRaised).
func (w *world) campaigned(n *simNode) {
	t := n.term
	for int(t) >= len(w.chk.candidates) {
		w.chk.candidates = append(w.chk.candidates, 0)
	}
	w.chk.candidates[t] |= idMask([]raft.NodeID{n.id})
	cs := w.coreConf(n)
	if !cs.IsVoter(n.id) {
		w.fail("candidate is a voter", fmt.Sprintf("node %d campaigns in term %d but is not a voter of its configuration %s (commit index %d)",
			n.id, t, describeConf(cs), n.commit))
		return
	}
	if w.cfg.DisablePreVote || n.transferTerm == t {
		return
	}
	ok, d := quorumOf(cs, func(id raft.NodeID) bool { return id == n.id || n.granted(id, t) || n.granted(id, t-1) })
	if !ok {
		w.fail("pre-vote quorum", fmt.Sprintf("node %d campaigns in term %d with the pre-votes of %s only (configuration %s)",
			n.id, t, d, describeConf(cs)))
	}
}

// termRaised: message m raised node to's term. A message from a node
// outside to's configuration (to lags behind a configuration that includes
// the sender, or the sender was removed and does not know it) may do that
// only if it is the traffic of the leader elected in that term, or the
// vote request of a candidate of that term (campaigned checked that it
// was a voter of its configuration and won its pre-vote round): so a
// removed node that keeps running cannot disrupt the members. Requests are
// the only messages a core takes from a non-member.
func (w *world) termRaised(to *simNode, m *raft.Message, before raft.Term) {
	st := &w.rep.Churn
	latest := w.chk.conf(len(w.chk.confs))
	if latest.IsMember(to.id) && !latest.IsMember(m.From) {
		// Informational: the sender is outside the latest committed
		// configuration, but the receiver does not know it yet.
		st.TermRaisesByRemoved++
	}
	if w.coreConf(to).IsMember(m.From) {
		return
	}
	if m.Type == raft.MsgPreVoteResp && to.r.SoftState().Role == raft.RoleCandidate {
		return // a grant won to's pre-vote round: its own campaign (campaigned)
	}
	switch m.Type {
	case raft.MsgApp, raft.MsgHeartbeat, raft.MsgSnap, raft.MsgTimeoutNow:
		if int(m.Term) < len(w.chk.leaders) && w.chk.leaders[m.Term] == m.From {
			st.TermRaisesByUnknownLeader++
			return
		}
	case raft.MsgVote:
		if int(m.Term) < len(w.chk.candidates) && w.chk.candidates[m.Term]&idMask([]raft.NodeID{m.From}) != 0 {
			st.TermRaisesByCandidates++
			return
		}
	}
	st.TermRaisesByNonMembers++
	w.fail("non-member disruption", fmt.Sprintf("a %v of term %d from node %d, not a member of node %d's configuration %s, raised node %d's term from %d to %d",
		m.Type, m.Term, m.From, to.id, describeConf(w.coreConf(to)), to.id, before, to.r.Term()))
}

// Churn event kinds.
const (
	churnAddLearner = iota
	churnPromote
	churnAddVoter
	churnRemove
	churnRemoveLeader
	churnJoint
	churnTransfer
	numChurnKinds
)

var churnNames = [numChurnKinds]string{"add-learner", "promote", "add-voter", "remove", "remove-leader", "joint", "transfer"}

// Why a membership request was refused (ChurnStats.Rejected).
const (
	rejectPending = iota
	rejectNotLeader
	rejectBusy
	rejectInvalid
	rejectTooLarge
	rejectNotVoter
	rejectOther
	numRejectReasons
)

var rejectNames = [numRejectReasons]string{"change-pending", "not-leader", "busy", "invalid", "too-large", "not-voter", "other"}

func rejectReason(err error) int {
	switch {
	case errors.Is(err, raft.ErrConfChangePending):
		return rejectPending
	case errors.Is(err, raft.ErrNotLeader):
		return rejectNotLeader
	case errors.Is(err, raft.ErrBusy):
		return rejectBusy
	case errors.Is(err, raft.ErrInvalidConfChange):
		return rejectInvalid
	case errors.Is(err, raft.ErrTooLarge):
		return rejectTooLarge
	case errors.Is(err, raft.ErrNotVoter):
		return rejectNotVoter
	}
	return rejectOther
}

// pendingTransfer is the last leadership transfer requested.
type pendingTransfer struct {
	active   bool
	to       raft.NodeID
	term     raft.Term // the requesting leader's
	deadline int64
}

// churnStep injects this step's membership event, with probability
// Faults.Churn, at the current leader (the up node leading the highest
// term): a change proposed with ProposeConfChange, or a transfer with
// TransferLeadership. Refusals (a change pending, a transfer under way,
// ...) are normal outcomes and counted.
func (w *world) churnStep() {
	f := &w.cfg.Faults
	if f.Churn <= 0 || w.rng.Float64() >= f.Churn {
		return
	}
	st := &w.rep.Churn
	st.Attempts++
	l := w.leader()
	if l == nil {
		st.NoLeader++
		return
	}
	cs := l.r.ConfState()
	var outside []raft.NodeID // nodes that are not members
	for _, n := range w.nodes {
		if !cs.IsMember(n.id) {
			outside = append(outside, n.id)
		}
	}
	learners, voters := cs.Learners, cs.Voters
	addable := slices.Concat(learners, outside) // may become voters
	var wt [numChurnKinds]int
	if len(outside) > 0 {
		wt[churnAddLearner], wt[churnAddVoter] = 4, 1
	}
	if len(learners) > 0 {
		wt[churnPromote] = 3
	}
	if len(learners) > 0 || len(voters) > 1 {
		wt[churnRemove] = 3
	}
	if len(voters) > 1 && slices.Contains(voters, l.id) {
		wt[churnRemoveLeader] = 1
	}
	if len(addable) > 0 || len(voters) > 2 {
		wt[churnJoint] = 3
	}
	if len(voters) > 1 {
		wt[churnTransfer] = 3
	}
	// Keep the voter count around the initial cluster size.
	switch nv := len(voters); {
	case nv > w.cfg.Nodes+1:
		wt[churnAddVoter], wt[churnPromote] = 0, min(wt[churnPromote], 1)
		wt[churnRemove] *= 2
	case nv < w.cfg.Nodes-1:
		wt[churnRemoveLeader] = 0
		wt[churnPromote] *= 2
		wt[churnAddVoter] *= 2
	}
	total := 0
	for _, v := range wt {
		total += v
	}
	if total == 0 {
		return // a one-voter cluster with no other node
	}
	kind, r := 0, w.rng.IntN(total)
	for r >= wt[kind] {
		r -= wt[kind]
		kind++
	}
	pick := func(ids []raft.NodeID) raft.NodeID { return ids[w.rng.IntN(len(ids))] }
	var changes []raft.ConfChange
	switch kind {
	case churnTransfer:
		var to raft.NodeID
		if w.rng.IntN(10) == 0 {
			to = pick(append(slices.Clone(addable), l.id)) // sometimes a non-voter (refused) or itself (a no-op)
		} else {
			to = pick(slices.DeleteFunc(slices.Clone(voters), func(id raft.NodeID) bool { return id == l.id }))
		}
		err := l.r.TransferLeadership(to)
		w.churnOutcome(l, kind, err, idMask([]raft.NodeID{to}), 0)
		if err == nil {
			st.ByKind[kind]++
		}
		if err == nil && to != l.id {
			st.TransfersRequested++
			w.transfer = pendingTransfer{active: true, to: to, term: l.term,
				deadline: w.now + int64(4*w.cfg.ElectionTicks*w.cfg.Faults.SkewMax)}
		}
		w.handleReady(l)
		return
	case churnAddLearner:
		changes = []raft.ConfChange{{Type: raft.ConfAddLearner, Node: pick(outside)}}
	case churnAddVoter:
		changes = []raft.ConfChange{{Type: raft.ConfAddVoter, Node: pick(outside)}}
	case churnPromote:
		changes = []raft.ConfChange{{Type: raft.ConfAddVoter, Node: pick(learners)}}
	case churnRemoveLeader:
		changes = []raft.ConfChange{{Type: raft.ConfRemove, Node: l.id}}
	case churnRemove:
		var cands []raft.NodeID
		cands = append(cands, learners...)
		if len(voters) > 1 {
			cands = append(cands, voters...)
		}
		changes = []raft.ConfChange{{Type: raft.ConfRemove, Node: pick(cands)}}
	case churnJoint:
		changes = w.jointChange(voters, learners, outside)
	}
	p, err := l.r.ProposeConfChange(changes...)
	var mask uint64
	for _, c := range changes {
		mask |= idMask([]raft.NodeID{c.Node})
	}
	w.churnOutcome(l, kind, err, mask, p.Index)
	if err == nil {
		st.Proposed++
		st.ByKind[kind]++
		for _, c := range changes {
			if c.Type != raft.ConfRemove && !cs.IsMember(c.Node) && w.nodes[c.Node-1].everMember {
				st.ReAdded++ // a removed node comes back with its old log
			}
		}
	}
	w.handleReady(l)
}

// jointChange draws a change of two or more voters (through a joint
// configuration): replace two voters, swap one for another, add two or
// remove two (never all of them); sometimes with a learner added or
// removed as well.
func (w *world) jointChange(voters, learners, outside []raft.NodeID) []raft.ConfChange {
	addable := slices.Concat(learners, outside)
	w.rng.Shuffle(len(addable), func(i, j int) { addable[i], addable[j] = addable[j], addable[i] })
	vs := slices.Clone(voters)
	w.rng.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
	type shape struct{ rm, add int }
	var shapes []shape
	for _, s := range []shape{{2, 2}, {1, 1}, {0, 2}, {2, 0}} {
		if s.add <= len(addable) && s.rm <= len(vs) && len(vs)-s.rm+s.add >= 1 {
			shapes = append(shapes, s)
		}
	}
	if len(shapes) == 0 {
		return []raft.ConfChange{{Type: raft.ConfAddVoter, Node: voters[0]}} // invalid: a no-op, refused
	}
	s := shapes[w.rng.IntN(len(shapes))]
	var ch []raft.ConfChange
	for _, id := range vs[:s.rm] {
		ch = append(ch, raft.ConfChange{Type: raft.ConfRemove, Node: id})
	}
	for _, id := range addable[:s.add] {
		ch = append(ch, raft.ConfChange{Type: raft.ConfAddVoter, Node: id})
	}
	if rest := addable[s.add:]; w.rng.IntN(4) == 0 {
		// A learner change in the same batch.
		var extra []raft.NodeID
		for _, id := range rest {
			if !slices.Contains(learners, id) {
				extra = append(extra, id)
			}
		}
		switch {
		case len(extra) > 0 && w.rng.IntN(2) == 0:
			ch = append(ch, raft.ConfChange{Type: raft.ConfAddLearner, Node: extra[0]})
		default:
			for _, id := range rest {
				if slices.Contains(learners, id) {
					ch = append(ch, raft.ConfChange{Type: raft.ConfRemove, Node: id})
					break
				}
			}
		}
	}
	w.rng.Shuffle(len(ch), func(i, j int) { ch[i], ch[j] = ch[j], ch[i] })
	return ch
}

// churnOutcome counts and records the outcome of a membership request.
func (w *world) churnOutcome(l *simNode, kind int, err error, mask uint64, index raft.Index) {
	code := uint64(0)
	if err != nil {
		r := rejectReason(err)
		w.rep.Churn.Rejected[r]++
		code = uint64(r) + 1
	}
	w.ev.add(event{t: w.now, kind: evChurn, a: uint8(l.id), b: uint8(kind), x: code, y: mask, z: uint64(index)})
}

// idMask is the bit mask of node IDs (bit id-1).
func idMask(ids []raft.NodeID) uint64 {
	var m uint64
	for _, id := range ids {
		if id >= 1 && id <= 64 {
			m |= 1 << (id - 1)
		}
	}
	return m
}

// describeConf formats a configuration, e.g. "{voters [1 2 3] learners [4]}".
func describeConf(cs raft.ConfState) string {
	if cs.IsEmpty() && len(cs.Learners) == 0 {
		return "{none}"
	}
	s := fmt.Sprintf("{voters %v", cs.Voters)
	if cs.Joint() {
		s += fmt.Sprintf(" & outgoing %v", cs.VotersOutgoing)
	}
	if len(cs.Learners) > 0 {
		s += fmt.Sprintf(" learners %v", cs.Learners)
	}
	return s + "}"
}

// ChurnStats counts a run's membership events and what the membership
// checkers saw.
type ChurnStats struct {
	// Attempts counts membership events drawn (Faults.Churn); NoLeader
	// those that found no leader to ask.
	Attempts, NoLeader uint64
	// Proposed counts changes ProposeConfChange accepted (a joint change
	// once), ByKind the accepted requests by kind (transfers included);
	// ReAdded the nodes added again after a removal (with their old log).
	Proposed uint64
	ByKind   [numChurnKinds]uint64
	ReAdded  uint64
	// Committed counts configuration changes committed (single changes
	// and joint configurations; the entries that leave a joint
	// configuration are JointLeft); JointEntered the joint ones.
	Committed, JointEntered, JointLeft uint64
	// TransfersRequested counts transfers a leader accepted (to another
	// voter); TransfersCompleted those whose target was the next leader,
	// within 4 election timeouts.
	TransfersRequested, TransfersCompleted uint64
	// Rejected counts refused requests by reason (change-pending,
	// not-leader, busy, invalid, too-large, not-voter, other).
	Rejected [numRejectReasons]uint64
	// HandOffs counts leaders seen leading after their own removal (or
	// demotion) committed, handing off; RemovedLeaderStepDowns those that
	// stepped down in the same term once no longer voters.
	HandOffs, RemovedLeaderStepDowns uint64
	// NonMemberRefused counts responses a core refused because their
	// sender is not in its configuration (raft.ErrUnknownPeer).
	NonMemberRefused uint64
	// TermRaisesByNonMembers counts term increases caused by a message
	// from outside the receiver's configuration other than the traffic of
	// the elected leader of that term or the vote request of a checked
	// candidate of that term: always 0 (a violation otherwise).
	// TermRaisesByUnknownLeader counts those caused by an elected leader
	// the receiver did not know yet (it lagged behind the configuration),
	// TermRaisesByCandidates those caused by a candidate outside the
	// receiver's configuration (a voter of one the receiver has not
	// learned, or a removed node that has not learned its removal).
	TermRaisesByNonMembers, TermRaisesByUnknownLeader, TermRaisesByCandidates uint64
	// TermRaisesByRemoved counts term increases of members of the latest
	// committed configuration caused by a node outside it, which the
	// receiver did not know yet (Raft allows it); LeadersOutsideConf the
	// leaders elected while outside the latest committed configuration
	// (elected by voters that had not learned it). Informational.
	TermRaisesByRemoved, LeadersOutsideConf uint64
	// Retired counts nodes stopped for good when the faults healed
	// because they were removed and neither pre-vote nor check-quorum was
	// on (world.retireRemoved).
	Retired uint64
	// MinVoters, MaxVoters and MaxMembers range over the committed
	// configurations; FinalVoters and FinalMembers describe the one the
	// liveness phase converged in.
	MinVoters, MaxVoters, MaxMembers int
	FinalVoters, FinalMembers        int
}

// Add adds o's counters to s (extremes: min and max; final sizes summed).
func (s *ChurnStats) Add(o ChurnStats) {
	s.Attempts += o.Attempts
	s.NoLeader += o.NoLeader
	s.Proposed += o.Proposed
	for i := range s.ByKind {
		s.ByKind[i] += o.ByKind[i]
	}
	s.ReAdded += o.ReAdded
	s.Committed += o.Committed
	s.JointEntered += o.JointEntered
	s.JointLeft += o.JointLeft
	s.TransfersRequested += o.TransfersRequested
	s.TransfersCompleted += o.TransfersCompleted
	for i := range s.Rejected {
		s.Rejected[i] += o.Rejected[i]
	}
	s.HandOffs += o.HandOffs
	s.RemovedLeaderStepDowns += o.RemovedLeaderStepDowns
	s.NonMemberRefused += o.NonMemberRefused
	s.TermRaisesByNonMembers += o.TermRaisesByNonMembers
	s.TermRaisesByUnknownLeader += o.TermRaisesByUnknownLeader
	s.TermRaisesByCandidates += o.TermRaisesByCandidates
	s.TermRaisesByRemoved += o.TermRaisesByRemoved
	s.LeadersOutsideConf += o.LeadersOutsideConf
	s.Retired += o.Retired
	if o.MinVoters > 0 && (s.MinVoters == 0 || o.MinVoters < s.MinVoters) {
		s.MinVoters = o.MinVoters
	}
	s.MaxVoters = max(s.MaxVoters, o.MaxVoters)
	s.MaxMembers = max(s.MaxMembers, o.MaxMembers)
	s.FinalVoters += o.FinalVoters
	s.FinalMembers += o.FinalMembers
}

// KindString lists the accepted requests by kind.
func (s ChurnStats) KindString() string {
	var b strings.Builder
	for k, v := range s.ByKind {
		if k > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", churnNames[k], v)
	}
	return b.String()
}

// RejectString lists the refusals by reason.
func (s ChurnStats) RejectString() string {
	var b strings.Builder
	for k, v := range s.Rejected {
		if k > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", rejectNames[k], v)
	}
	return b.String()
}

// String summarizes the counters.
func (s ChurnStats) String() string {
	return fmt.Sprintf("%d events (%d without a leader), %d changes proposed, %d committed (%d joint entered, %d left), %d re-added, "+
		"%d transfers requested, %d completed; accepted: %s; refused: %s; %d removed leaders handed off, %d stepped down, "+
		"%d responses refused from non-members, term raises: %d by non-members, %d by leaders not yet known, %d by candidates outside the receiver's configuration, %d by nodes outside the committed configuration; "+
		"%d leaders outside the committed configuration; %d removed nodes retired at the heal; voters %d..%d, members up to %d",
		s.Attempts, s.NoLeader, s.Proposed, s.Committed, s.JointEntered, s.JointLeft, s.ReAdded,
		s.TransfersRequested, s.TransfersCompleted, s.KindString(), s.RejectString(), s.HandOffs, s.RemovedLeaderStepDowns,
		s.NonMemberRefused, s.TermRaisesByNonMembers, s.TermRaisesByUnknownLeader, s.TermRaisesByCandidates, s.TermRaisesByRemoved,
		s.LeadersOutsideConf, s.Retired, s.MinVoters, s.MaxVoters, s.MaxMembers)
}

package sim

import (
	"bytes"
	"fmt"

	"github.com/embraft/embraft/raft"
)

// canonEntry is what the simulator knows about the committed entry at one
// index: the first copy seen committed anywhere. Every later sighting of a
// committed entry at that index, on any node, must be identical.
type canonEntry struct {
	term raft.Term
	typ  raft.EntryType
	data []byte
	// commitTerm is the smallest term in which some node was seen treating
	// the entry as committed. The entry was committed in commitTerm or
	// earlier, so every leader of a later term must hold it.
	commitTerm raft.Term
	// applied / result: the hash of the state machine's answer to the
	// entry, the same on every replica.
	applied bool
	result  uint64
	// seqHash: the applied-sequence hash after this entry (node's
	// appliedHash), the same on every node that applied it or restored a
	// snapshot of it.
	seqSet  bool
	seqHash uint64
	// digest: the kv state after this entry, recorded by the first node
	// that snapshotted it; every node that restores a snapshot of it, or
	// applies it later, must have the same.
	digestSet bool
	digest    uint64
}

func (c *canonEntry) matches(e *raft.Entry) bool {
	return c.term == e.Term && c.typ == e.Type && bytes.Equal(c.data, e.Data)
}

func (c *canonEntry) describe() string {
	if c == nil {
		return "unknown (never seen committed)"
	}
	e := raft.Entry{Term: c.term, Type: c.typ, Data: c.data}
	return describeEntry(&e)
}

// checker holds the global knowledge the safety checkers compare against.
type checker struct {
	// canon[i-1] is the committed entry at index i; dense from 1.
	canon []canonEntry
	// canonPh[i-1] is the prefix hash of canon[0..i-1].
	canonPh []uint64
	// leaders[t] is the node that led term t (0: none seen), across
	// crashes and restarts.
	leaders []raft.NodeID
	// candidates[t] is the mask of the nodes seen campaigning in term t
	// (bit id-1), each checked a voter of its configuration that won its
	// pre-vote round (or was asked to campaign by its leader).
	candidates []uint64
	// written maps every (index, term) any node ever wrote to the hash of
	// the log prefix it ended (and the first node seen writing it).
	written map[indexTerm]prefixSeen
	// boot is the bootstrap configuration (the initial voters); confs the
	// configuration entries of the committed log (canon), in index order.
	boot  raft.ConfState
	confs []confEntry
	// fake replaces the configurations the membership checks expect
	// (Config.fakeConf; checker tests).
	fake func(raft.ConfState) raft.ConfState
}

type indexTerm struct {
	index raft.Index
	term  raft.Term
}

type prefixSeen struct {
	hash uint64
	node raft.NodeID
}

// canonPrefix returns the committed entries 1..i and their prefix hashes,
// in fresh arrays: the log of a node that installed a snapshot at i.
func (c *checker) canonPrefix(i raft.Index) ([]raft.Entry, []uint64) {
	ents := make([]raft.Entry, i, int(i)+64)
	for k := range ents {
		e := &c.canon[k]
		ents[k] = raft.Entry{Index: raft.Index(k + 1), Term: e.term, Type: e.typ, Data: e.data}
	}
	ph := make([]uint64, i, int(i)+64)
	copy(ph, c.canonPh)
	return ents, ph
}

func (c *checker) canonAt(i raft.Index) *canonEntry {
	if i < 1 || int(i) > len(c.canon) {
		return nil
	}
	return &c.canon[i-1]
}

// fail records the first violation; the run stops at the end of the
// current action.
func (w *world) fail(property, detail string) {
	if w.err != nil {
		return
	}
	w.err = &Violation{Seed: w.cfg.Seed, Property: property, Step: w.step, Detail: detail,
		Events: w.ev.last(violationEvents), Repro: w.repro()}
}

// checkPersisted runs the checks on the hard state a Ready carried, after
// it was written: terms never decrease, a node votes once per term, the
// commit index never decreases while the node is up and never passes its
// log, and every newly committed entry agrees with what other nodes saw
// committed at that index. prevLast is the last index before the Ready's
// entries were written; wasLeader whether the node led before this Ready.
func (w *world) checkPersisted(n *simNode, rd raft.Ready, prevLast raft.Index, wasLeader bool) {
	if wasLeader && rd.SoftState.Role == raft.RoleLeader && len(rd.Entries) > 0 &&
		(rd.HardState.IsEmpty() || rd.HardState.Term == n.term) && rd.Entries[0].Index <= prevLast {
		w.fail("leader append-only", fmt.Sprintf("leader %d of term %d rewrote its log from index %d (last was %d)",
			n.id, n.term, rd.Entries[0].Index, prevLast))
		return
	}
	hs := rd.HardState
	if hs.IsEmpty() {
		return
	}
	switch {
	case hs.Term < n.term:
		w.fail("term monotonicity", fmt.Sprintf("node %d moved from term %d back to %d", n.id, n.term, hs.Term))
		return
	case hs.Term == n.term && n.vote != raft.None && hs.Vote != n.vote:
		w.fail("vote safety", fmt.Sprintf("node %d voted for %d and then %d in term %d", n.id, n.vote, hs.Vote, hs.Term))
		return
	case hs.Commit < n.commit:
		w.fail("commit monotonicity", fmt.Sprintf("node %d commit index went from %d down to %d while up", n.id, n.commit, hs.Commit))
		return
	case hs.Commit > n.st.lastIndex():
		w.fail("commit <= last index", fmt.Sprintf("node %d commit index %d is beyond its log (last %d)", n.id, hs.Commit, n.st.lastIndex()))
		return
	}
	if hs.Commit > n.commit && wasLeader && rd.SoftState.Role == raft.RoleLeader && hs.Term == n.term && !w.cfg.noCommitRule {
		// §5.4.2: a leader commits by counting replicas only entries of
		// its own term (Figure 8 shows why older ones are unsafe).
		if e, ok := n.st.entry(hs.Commit); ok && e.Term != hs.Term {
			w.fail("leader commit rule", fmt.Sprintf("leader %d of term %d advanced its commit index to %d, an entry of term %d",
				n.id, hs.Term, hs.Commit, e.Term))
			return
		}
	}
	leaderAdvance := hs.Commit > n.commit && wasLeader && rd.SoftState.Role == raft.RoleLeader && hs.Term == n.term
	if hs.Vote != raft.None {
		for int(hs.Term) >= len(n.votes) {
			n.votes = append(n.votes, raft.None)
		}
		if v := n.votes[hs.Term]; v != raft.None && v != hs.Vote {
			w.fail("vote safety", fmt.Sprintf("node %d voted for %d in term %d, and for %d in an earlier incarnation", n.id, hs.Vote, hs.Term, v))
			return
		}
		n.votes[hs.Term] = hs.Vote
	}
	n.term, n.vote = hs.Term, hs.Vote
	if hs.Commit > n.commit {
		from := n.commit + 1
		n.commit = hs.Commit
		w.ev.add(event{t: w.now, kind: evCommit, a: uint8(n.id), x: uint64(hs.Commit), y: uint64(hs.Term)})
		w.checkCommittedPrefix(n, from, hs.Commit)
		if w.err == nil && leaderAdvance {
			// A leader commits only what a quorum of the configuration in
			// effect (both halves of a joint one) stores durably.
			if e, ok := n.st.entry(hs.Commit); ok {
				w.checkCommitQuorum(n, from-1, hs.Commit, e.Term)
			}
		}
	}
}

// checkCommittedPrefix checks node n's entries lo..hi, which n treats as
// committed, against the committed entries seen so far (Log Matching on
// committed prefixes, which with the leader checks gives Leader
// Completeness), and records the ones not seen before.
func (w *world) checkCommittedPrefix(n *simNode, lo, hi raft.Index) {
	for i := lo; i <= hi && w.err == nil; i++ {
		e, ok := n.st.entry(i)
		if !ok {
			w.fail("commit <= last index", fmt.Sprintf("node %d treats index %d as committed but its log ends at %d", n.id, i, n.st.lastIndex()))
			return
		}
		c := w.chk.canonAt(i)
		switch {
		case c != nil:
			if !c.matches(e) {
				w.fail("log matching", fmt.Sprintf("node %d holds %s at committed index %d, but %s was committed there (first seen committed in term %d)",
					n.id, describeEntry(e), i, c.describe(), c.commitTerm))
				return
			}
			c.commitTerm = min(c.commitTerm, n.term)
		case int(i) == len(w.chk.canon)+1:
			w.chk.canon = append(w.chk.canon, canonEntry{term: e.Term, typ: e.Type, data: e.Data, commitTerm: n.term})
			h := uint64(fnvOffset)
			if i > 1 {
				h = w.chk.canonPh[i-2]
			}
			w.chk.canonPh = append(w.chk.canonPh, prefixHash(h, e))
			w.rep.Commits = i
			if e.Type == raft.EntryConfChange {
				if w.committedConf(n, e); w.err != nil {
					return
				}
			}
			w.checkLeadersHold(i)
		default:
			w.fail("commit <= last index", fmt.Sprintf("node %d commits index %d, beyond every commit seen (%d) and its own", n.id, i, len(w.chk.canon)))
			return
		}
	}
}

// checkLeadersHold checks that every node now leading a term later than
// the one entry i was committed in holds entry i (Leader Completeness).
func (w *world) checkLeadersHold(i raft.Index) {
	c := w.chk.canonAt(i)
	for _, l := range w.nodes {
		if !l.up || l.soft.Role != raft.RoleLeader || l.term <= c.commitTerm {
			continue
		}
		if e, ok := l.st.entry(i); !ok || !c.matches(e) {
			w.fail("leader completeness", fmt.Sprintf("entry %d %s committed by term %d is missing from leader %d of term %d",
				i, c.describe(), c.commitTerm, l.id, l.term))
			return
		}
	}
}

// becameLeader records that n leads its term (Election Safety: at most one
// leader per term) and checks that its log holds every entry committed in
// an earlier term (Leader Completeness).
func (w *world) becameLeader(n *simNode) {
	t := n.term
	for int(t) >= len(w.chk.leaders) {
		w.chk.leaders = append(w.chk.leaders, raft.None)
	}
	if prev := w.chk.leaders[t]; prev != raft.None && prev != n.id {
		w.fail("election safety", fmt.Sprintf("term %d has two leaders: %d and %d", t, prev, n.id))
		return
	}
	w.chk.leaders[t] = n.id
	w.rep.Elections++
	w.rep.MaxTerm = max(w.rep.MaxTerm, t)
	w.ev.add(event{t: w.now, kind: evLeader, a: uint8(n.id), x: uint64(t)})
	// Membership: a voter of its configuration, elected by a quorum of it
	// (both halves if joint), with at most one configuration change
	// uncommitted in its log.
	if w.leaderElected(n); w.err != nil {
		return
	}
	for i := range w.chk.canon {
		c := &w.chk.canon[i]
		if c.commitTerm >= t {
			continue
		}
		if e, ok := n.st.entry(raft.Index(i + 1)); !ok || !c.matches(e) {
			w.fail("leader completeness", fmt.Sprintf("node %d leads term %d without entry %d %s committed by term %d",
				n.id, t, i+1, c.describe(), c.commitTerm))
			return
		}
	}
}

// checkWritten is the incremental Log Matching check, run on every write:
// an entry is identified by its index and term, which only the leader of
// that term creates, once, on top of a log prefix that never changes while
// it leads. So every log that ever holds an entry with a given index and
// term, on any node at any time, must hold the same entry and the same
// entries before it. Logs are compared by prefix hashes.
func (w *world) checkWritten(n *simNode, ents []raft.Entry) {
	for i := range ents {
		e := &ents[i]
		k := indexTerm{e.Index, e.Term}
		h := n.st.ph[e.Index-1]
		seen, ok := w.chk.written[k]
		if !ok {
			w.chk.written[k] = prefixSeen{hash: h, node: n.id}
			continue
		}
		if seen.hash == h {
			continue
		}
		detail := fmt.Sprintf("node %d wrote entry %d of term %d on a log that differs from the one node %d held under the same entry",
			n.id, e.Index, e.Term, seen.node)
		if o := w.nodes[seen.node-1]; o.st.lastIndex() >= e.Index && o.st.log[e.Index-1].Term == e.Term {
			for j := raft.Index(1); j <= e.Index; j++ {
				if x, y := &n.st.log[j-1], &o.st.log[j-1]; x.Term != y.Term || x.Type != y.Type || !bytes.Equal(x.Data, y.Data) {
					detail += fmt.Sprintf("; first difference at index %d: %s vs %s", j, describeEntry(x), describeEntry(y))
					break
				}
			}
		}
		w.fail("log matching", detail)
		return
	}
}

// checkLogMatching checks the Log Matching property on every pair of
// nodes' logs (written entries, including those of down nodes' durable
// logs): if two logs hold an entry with the same index and term, the logs
// are identical up to that index.
func (w *world) checkLogMatching() {
	// Every so often, every core's configuration (cheaper checks run when
	// its commit index crosses a configuration entry).
	for _, n := range w.nodes {
		if n.up && w.err == nil {
			w.verifyCoreConf(n, true, "")
		}
	}
	if w.err != nil {
		return
	}
	for a := 0; a < len(w.nodes); a++ {
		for b := a + 1; b < len(w.nodes); b++ {
			la, lb := w.nodes[a].st.log, w.nodes[b].st.log
			k := min(len(la), len(lb)) - 1
			for k >= 0 && la[k].Term != lb[k].Term {
				k--
			}
			for j := 0; j <= k; j++ {
				if x, y := &la[j], &lb[j]; x.Term != y.Term || x.Type != y.Type || !bytes.Equal(x.Data, y.Data) {
					w.fail("log matching", fmt.Sprintf("nodes %d and %d agree on the term (%d) of index %d but differ at index %d: %s vs %s",
						a+1, b+1, la[k].Term, k+1, j+1, describeEntry(x), describeEntry(y)))
					return
				}
			}
		}
	}
}

package sim

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// simNode is one simulated server: a production core, its storage, its
// key-value state machine and the waiters of the client requests it
// proposed, handled the way node/loop.go handles them.
type simNode struct {
	id  raft.NodeID
	idx uint8
	up  bool
	// bootstrap: an initial voter, started (and restarted) with the
	// initial voters as raft.Config.Peers; the others start with none and
	// join when added.
	bootstrap bool
	// conf is the configuration as of the applied index, what a snapshot
	// taken now records (node.conf): set at start (the snapshot's, or the
	// bootstrap peers), by every configuration entry applied, and by an
	// installed snapshot.
	conf raft.ConfState
	// coreK identifies the configuration the core was last seen in: the
	// committed one as of its commit index, canonical configuration coreK
	// (checker.conf; 0 is the bootstrap one), verified against
	// raft.Raft.ConfState whenever the commit index crosses a
	// configuration entry, a snapshot is installed or the node starts.
	coreK int
	// coreEmpty: the core was last seen knowing no configuration (a node
	// that joined, before it learned one).
	coreEmpty bool
	// everMember: the node was a member of a committed configuration.
	everMember bool
	// handOffLast: while this node leads without being a voter of its
	// committed configuration (handing off), the last index it had when
	// that began (0: not handing off).
	handOffLast raft.Index
	// grants are the pre-vote grants delivered to the node (MsgPreVoteResp
	// not rejected, accepted by its core), by the term they carry
	// (grants[t%4] holds term t); transferTerm is the term of the last
	// campaign a MsgTimeoutNow started (no pre-vote round).
	grants       [4]preGrants
	transferTerm raft.Term
	// readyDue: the node stepped a message whose Ready waits for the end
	// of the time unit (world.batchReady).
	readyDue bool

	r     *raft.Raft
	st    *simStorage
	store *kv.Store

	// period: the node ticks once every period units, next at nextTick.
	period   int64
	nextTick int64
	// downUntil: when a crashed node restarts (random schedule).
	downUntil   int64
	incarnation uint64

	// What the runtime has observed of the core (node/loop.go's observe):
	// the last hard state and soft state handed out, and the last entry
	// applied.
	term    raft.Term
	vote    raft.NodeID
	commit  raft.Index
	soft    raft.SoftState
	applied raft.Index
	// appliedTerm is the term of entry applied; appliedHash node's hash of
	// the applied sequence (carried in snapshots); snapIndex the index of
	// the newest snapshot stored (taken, installed or restored).
	appliedTerm raft.Term
	appliedHash uint64
	snapIndex   raft.Index

	// Snapshot transfers seen from outside the core, for the deliberate
	// crashes: when this node last wrote an incoming chunk, and last sent
	// a MsgSnap; crashNext asks for a crash at the next step (after an
	// install).
	lastChunkAt    int64
	lastSnapSendAt int64
	crashNext      bool

	// synced is the last hard state written in a Ready that required a
	// sync: a restart must find at least this term and this vote.
	synced raft.HardState
	// votes[t] is the vote this node ever emitted in term t, over all its
	// incarnations: a node votes at most once per term, crash or not.
	votes []raft.NodeID

	waiters []waiter
	reads   []readWaiter
}

// readWaiter is a client get served through ReadIndex (node/read.go): it
// waits for the leader to confirm a read index, then for the local state
// machine to apply it, and then reads the local store.
type readWaiter struct {
	req    uint64
	client int
	key    string
	term   raft.Term
	lead   raft.NodeID
	index  raft.Index // the confirmed read index (0: not yet confirmed)
	// floor is the highest index seen committed anywhere when the request
	// was made: the read index must not be below it.
	floor raft.Index
}

// waiter is a client request proposed at this node and not yet answered.
type waiter struct {
	req    uint64
	client int
	term   raft.Term
	lead   raft.NodeID
	seq    uint64 // forwarded proposal's sequence number (0 if proposed as leader)
}

// Envelope, as in node/envelope.go: uvarint origin node, uvarint request
// ID, then the command. The origin recognises its entry when it applies it.
func appendEnvelope(b []byte, origin raft.NodeID, req uint64, cmd []byte) []byte {
	b = binary.AppendUvarint(b, uint64(origin))
	b = binary.AppendUvarint(b, req)
	return append(b, cmd...)
}

var errBadEnvelope = errors.New("malformed envelope")

func parseEnvelope(b []byte) (origin raft.NodeID, req uint64, cmd []byte, err error) {
	o, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, nil, errBadEnvelope
	}
	r, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return 0, 0, nil, errBadEnvelope
	}
	return raft.NodeID(o), r, b[n+m:], nil
}

// raftConfig is the core configuration of node n's current incarnation.
func (w *world) raftConfig(n *simNode) raft.Config {
	return raft.Config{
		ID: n.id, Peers: n.peers(w), Storage: n.st, Applied: n.applied,
		// Each incarnation draws its own election timeouts and numbers its
		// forwarded proposals from its own base, as the runtime does.
		Seed:           w.cfg.Seed ^ (n.incarnation * 0x9E3779B97F4A7C15),
		ForwardSeqBase: n.incarnation << 32,
		ReadLease:      w.cfg.ReadLease,
		ElectionTicks:  w.cfg.ElectionTicks, HeartbeatTicks: w.cfg.HeartbeatTicks,
		MaxMsgBytes: w.cfg.MaxMsgBytes, DisablePreVote: w.cfg.DisablePreVote, DisableCheckQuorum: w.cfg.DisableCheckQuorum,
	}
}

// peers is the raft.Config.Peers node n starts with: the initial voters
// for those, none for the spares (which join).
func (n *simNode) peers(w *world) []raft.NodeID {
	if n.bootstrap {
		return w.bootIDs
	}
	return nil
}

// start (re)creates node n's core from its durable storage, restoring its
// state machine from the durable snapshot if there is one (and passing
// Config.Applied = its index, as node does); without one, an empty store
// replays the log from index 1.
func (w *world) start(n *simNode) {
	n.store = kv.New(kv.Options{})
	n.applied, n.appliedTerm, n.appliedHash, n.snapIndex = 0, 0, hashStart, 0
	// The configuration as of the applied index (node.startConf): the
	// restored snapshot's, else the bootstrap peers (none for a spare).
	n.conf = raft.ConfState{}
	if n.bootstrap {
		n.conf = w.chk.boot.Clone()
	}
	if n.incarnation > 0 {
		how, raised, err := n.st.restore()
		if err != nil {
			w.fail("restart", fmt.Sprintf("node %d: cannot rebuild storage: %v", n.id, err))
			return
		}
		if raised {
			w.rep.Snap.TermRaised++
		}
		if how != rebuiltNoSnapshot {
			meta, data := n.st.SnapshotData()
			if w.restoreState(n, meta, data, "restarted from"); w.err != nil {
				return
			}
			w.rep.Snap.Restored++
			if how == rebuiltAfterSnap {
				w.rep.Snap.LogRestarted++
				n.st.replaceLog(w.chk.canonPrefix(meta.Index))
			}
			w.ev.add(event{t: w.now, kind: evSnapRestore, a: uint8(n.id), x: uint64(meta.Index), y: uint64(how)})
		}
	}
	n.incarnation++
	r, err := raft.New(w.raftConfig(n))
	if err != nil {
		w.fail("restart", fmt.Sprintf("node %d: raft.New on its durable state: %v", n.id, err))
		return
	}
	n.r = r
	n.up = true
	hs := n.st.durHS
	if !w.cfg.lyingDisk && (hs.Term < n.synced.Term || (hs.Term == n.synced.Term && hs.Vote != n.synced.Vote)) {
		w.fail("durability", fmt.Sprintf("node %d restarts with term %d vote %d, but it synced term %d vote %d before the crash",
			n.id, hs.Term, hs.Vote, n.synced.Term, n.synced.Vote))
		return
	}
	n.term, n.vote, n.commit = hs.Term, hs.Vote, hs.Commit
	n.soft = raft.SoftState{}
	n.nextTick = w.now + 1 + w.rng.Int64N(n.period)
	if n.incarnation > 1 {
		w.ev.add(event{t: w.now, kind: evRestart, a: uint8(n.id), x: n.incarnation - 1,
			y: uint64(n.st.lastIndex()), z: uint64(n.commit)})
		w.rep.Restarts++
		// The durable committed prefix must still be the committed log.
		w.checkCommittedPrefix(n, 1, n.commit)
	}
	if w.err == nil {
		// The core rebuilt its configuration from the snapshot, the peers
		// and the stored log: it must be the one committed as of its
		// commit index, and the runtime's the one as of its applied index.
		w.verifyCoreConf(n, true, "restarted")
		w.checkAppliedConf(n, "restarted")
	}
}

// Why a node crashed (evCrash's b).
const (
	crashRandom = iota
	crashInTransfer
	crashSnapSender
	crashInInstall
	crashAtInstall
	crashAfterInstall
	crashRetired
)

// crashFor crashes node n (for a random schedule, until a random time): its
// volatile state (core, state machine, waiters, partial incoming
// snapshot) is gone and its unsynced writes are lost.
func (w *world) crashFor(n *simNode, why uint8) {
	lost, partial := w.stopNode(n, why)
	w.faults[FaultCrash]++
	if lost > 0 {
		w.faults[FaultLostWrite]++
	}
	if partial {
		w.faults[FaultLostSnapshot]++
	}
	if len(w.cfg.Script) == 0 {
		f := &w.cfg.Faults
		n.downUntil = w.now + int64(f.DownMin) + w.rng.Int64N(int64(f.DownMax-f.DownMin+1))
	}
}

// stopNode takes node n down (why: evCrash's reason): its volatile state
// is gone and its unsynced writes are lost (how many: lost; partial: an
// incoming snapshot was cut short).
func (w *world) stopNode(n *simNode, why uint8) (lost int, partial bool) {
	w.addCoreStats(n)
	lost, partial = n.st.crash()
	w.ev.add(event{t: w.now, kind: evCrash, a: uint8(n.id), b: why, x: uint64(len(n.st.durLog)),
		y: uint64(n.st.durHS.Commit), z: uint64(lost)})
	n.up = false
	n.r = nil
	n.store = nil
	n.crashNext = false
	n.waiters = n.waiters[:0] // their clients time out and resubmit
	n.reads = n.reads[:0]
	return lost, partial
}

// addCoreStats adds node n's core counters to the report (before its core
// goes away, and at the end of the run).
func (w *world) addCoreStats(n *simNode) {
	if n.r == nil {
		return
	}
	st := n.r.Status().Stats
	w.rep.Snap.Sent += st.SnapshotsSent
	w.rep.Snap.Bad += st.SnapshotsBad
	w.rep.AcksMerged += st.AcksMerged
}

// handleReady runs the Ready contract of raft/doc.go, as node/loop.go
// does: persist (one sync per Ready if MustSync), send, apply, report
// rejected proposals, observe role and term changes, Advance. The
// checkers run on what each Ready shows.
func (w *world) handleReady(n *simNode) {
	for n.up && w.err == nil && n.r.HasReady() {
		rd := n.r.Ready()
		prevLast, wasLeader, oldTerm := n.st.lastIndex(), n.soft.Role == raft.RoleLeader, n.term
		// 0. A storage read failure stops the node; the simulated storage
		// never fails a read, so the core must never report one.
		if rd.Err != nil {
			w.fail("storage", fmt.Sprintf("node %d reports a storage read failure: %v", n.id, rd.Err))
			return
		}
		// 1. A snapshot part: chunks to storage; a complete snapshot is
		// installed and the state machine restored, before anything else.
		installed := !rd.Snapshot.IsEmpty()
		if !w.installSnapshot(n, &rd) {
			return // the run failed, or the node crashed right after the install
		}
		// Persist: entries first, then the hard state (as node does).
		if err := n.st.Append(rd.Entries); err != nil {
			w.fail("storage", fmt.Sprintf("node %d: append of entries %d..: %v", n.id, rd.Entries[0].Index, err))
			return
		}
		if !rd.HardState.IsEmpty() {
			n.st.SetHardState(rd.HardState)
		}
		if rd.MustSync {
			n.st.Sync()
			if !rd.HardState.IsEmpty() {
				n.synced = rd.HardState
			}
		}
		oldCommit := n.commit
		w.checkWritten(n, rd.Entries)
		w.checkPersisted(n, rd, prevLast, wasLeader)
		if w.err != nil {
			return
		}
		// The configuration the core is in: the one committed as of its
		// commit index.
		if installed || n.commit != oldCommit {
			w.verifyCoreConf(n, installed, "")
		}
		if w.err == nil && rd.SoftState.Role == raft.RoleLeader && wasLeader && hasConfEntry(rd.Entries) {
			w.checkPendingConfs(n, "appended a configuration entry")
		}
		if w.err != nil {
			return
		}
		// 2. Send, only after the writes are durable.
		for i := range rd.Messages {
			w.send(n, &rd.Messages[i])
		}
		// 3. Apply, then maybe take a snapshot and compact.
		w.apply(n, rd.Committed)
		if w.err != nil {
			return
		}
		if w.maybeSnapshot(n); w.err != nil {
			return
		}
		// 4. Rejected forwarded proposals.
		for _, rj := range rd.Rejected {
			for i := range n.waiters {
				if wt := n.waiters[i]; wt.seq == rj.Seq {
					w.resolve(n, i, nil, rj.Err)
					break
				}
			}
		}
		// Read indexes confirmed (or refused) by the leader.
		w.readStates(n, rd.ReadStates)
		if w.err != nil {
			return
		}
		// Role and leader changes.
		w.observe(n, rd, oldTerm)
		if w.err != nil {
			return
		}
		// 5. Advance.
		n.r.Advance(rd)
	}
	if n.up && w.err == nil {
		w.checkLogBound(n)
	}
}

// apply hands committed entries to the state machine in order and answers
// this node's waiters.
func (w *world) apply(n *simNode, ents []raft.Entry) {
	for i := range ents {
		e := &ents[i]
		if e.Index != n.applied+1 {
			w.fail("apply order", fmt.Sprintf("node %d applied index %d after %d", n.id, e.Index, n.applied))
			return
		}
		if e.Index > n.commit {
			w.fail("applied <= committed", fmt.Sprintf("node %d applies index %d with commit index %d", n.id, e.Index, n.commit))
			return
		}
		n.applied, n.appliedTerm = e.Index, e.Term
		w.rep.Applied++
		c := w.chk.canonAt(e.Index)
		if c == nil || !c.matches(e) {
			w.fail("state machine safety", fmt.Sprintf("node %d applies %s at index %d, but the committed entry there is %s",
				n.id, describeEntry(e), e.Index, c.describe()))
			return
		}
		n.appliedHash = hashApplied(n.appliedHash, e)
		if !c.seqSet {
			c.seqSet, c.seqHash = true, n.appliedHash
		} else if c.seqHash != n.appliedHash {
			// The entries match, so the node's state before them differs:
			// it restored a snapshot that does not hold what was applied.
			w.fail("state machine safety", fmt.Sprintf("node %d applied index %d after a sequence of entries that differs from the other nodes'",
				n.id, e.Index))
			return
		}
		if e.Type != raft.EntryNormal {
			if e.Type == raft.EntryConfChange && !w.cfg.ignoreConfOnApply {
				// As node.appliedConf: the configuration snapshots record.
				cs, err := raft.DecodeConfState(e.Data)
				if err != nil {
					w.fail("configuration", fmt.Sprintf("node %d applies a malformed configuration entry at index %d: %v", n.id, e.Index, err))
					return
				}
				n.conf = cs
				if w.checkAppliedConf(n, "applied a configuration entry"); w.err != nil {
					return
				}
			}
			if w.checkAppliedState(n, c, e.Index); w.err != nil {
				return
			}
			continue
		}
		origin, req, cmd, err := parseEnvelope(e.Data)
		if err != nil {
			w.fail("state machine safety", fmt.Sprintf("node %d: entry %d carries a malformed envelope", n.id, e.Index))
			return
		}
		res := n.store.Apply(e.Index, cmd)
		h := hashBytes(res)
		if !c.applied {
			c.applied, c.result = true, h
		} else if c.result != h {
			w.fail("state machine determinism", fmt.Sprintf("node %d: applying entry %d gave a different result than on an earlier replica", n.id, e.Index))
			return
		}
		if w.checkAppliedState(n, c, e.Index); w.err != nil {
			return
		}
		if origin == n.id {
			for j := range n.waiters {
				if n.waiters[j].req == req {
					w.resolve(n, j, res, nil)
					break
				}
			}
		}
	}
}

// checkAppliedState compares node n's kv state after applying entry i with
// the state recorded there by a node's snapshot, if any.
func (w *world) checkAppliedState(n *simNode, c *canonEntry, i raft.Index) {
	if c.digestSet && n.store.Digest() != c.digest {
		w.fail("snapshot state", fmt.Sprintf("node %d applied index %d and holds a kv state that differs from the snapshot a node took there",
			n.id, i))
	}
}

// observe tracks role and leader changes: it records leaders (election
// safety, leader completeness) and fails the waiters stranded by a change
// of term or leader, as node/loop.go does.
func (w *world) observe(n *simNode, rd raft.Ready, oldTerm raft.Term) {
	stale := n.term > oldTerm
	if rd.SoftState.Role == raft.RoleCandidate && (n.soft.Role != raft.RoleCandidate || n.term > oldTerm) {
		// A new campaign (a candidate that times out campaigns again
		// without a change of role when pre-vote is off).
		if w.campaigned(n); w.err != nil {
			return
		}
	}
	if rd.SoftState != n.soft {
		stale = stale || rd.SoftState.Lead != n.soft.Lead
		newLeader := rd.SoftState.Role == raft.RoleLeader && n.soft.Role != raft.RoleLeader
		steppedDown := rd.SoftState.Role != raft.RoleLeader && n.soft.Role == raft.RoleLeader
		n.soft = rd.SoftState
		w.ev.add(event{t: w.now, kind: evRole, a: uint8(n.id), x: uint64(n.soft.Role), y: uint64(n.term), z: uint64(n.soft.Lead)})
		if newLeader {
			w.becameLeader(n)
		}
		if steppedDown {
			n.handOffLast = 0
		}
		if steppedDown && n.term == oldTerm && !w.chk.conf(n.coreK).IsVoter(n.id) {
			// A leader that committed its own removal steps down.
			w.rep.Churn.RemovedLeaderStepDowns++
		}
	}
	if w.err == nil && n.soft.Role == raft.RoleLeader {
		w.checkLeaderIsVoter(n)
	}
	if stale {
		for i := 0; i < len(n.waiters); {
			if wt := n.waiters[i]; wt.term != n.term || wt.lead != n.soft.Lead {
				w.ev.add(event{t: w.now, kind: evStale, a: uint8(wt.client), b: uint8(n.id), x: wt.req})
				w.resolve(n, i, nil, errLeaderChanged)
				continue // resolve removed waiters[i]
			}
			i++
		}
		// A confirmed read stays valid (its index was confirmed while the
		// leader led); an unconfirmed one is lost with the leadership.
		for i := 0; i < len(n.reads); {
			if rw := n.reads[i]; rw.index == 0 && (rw.term != n.term || rw.lead != n.soft.Lead) {
				w.ev.add(event{t: w.now, kind: evStale, a: uint8(rw.client), b: uint8(n.id), x: rw.req})
				w.resolveRead(n, i, errLeaderChanged)
				continue
			}
			i++
		}
	}
}

var errLeaderChanged = errors.New("leader changed")

// resolve answers waiter i of node n and removes it.
func (w *world) resolve(n *simNode, i int, res []byte, err error) {
	wt := n.waiters[i]
	n.waiters = append(n.waiters[:i], n.waiters[i+1:]...)
	w.reply(n, wt, res, err)
}

// propose submits a client's command at node n, as node.Propose does.
func (w *world) propose(n *simNode, client int, req uint64, cmd []byte) error {
	data := appendEnvelope(make([]byte, 0, 20+len(cmd)), n.id, req, cmd)
	prop, err := n.r.Propose(data)
	if err != nil {
		return err
	}
	// Pin the term and leader the command went to, as the core sees them
	// now (as node does).
	wt := waiter{req: req, client: client, term: n.r.Term(), lead: n.r.SoftState().Lead, seq: prop.Seq}
	n.waiters = append(n.waiters, wt)
	w.handleReady(n)
	return nil
}

// startRead submits a client's get as a ReadIndex request at node n, as
// node.LinearizableRead does.
func (w *world) startRead(n *simNode, client int, req uint64, key string) error {
	if err := n.r.ReadIndex(req); err != nil {
		return err
	}
	n.reads = append(n.reads, readWaiter{req: req, client: client, key: key, term: n.r.Term(),
		lead: n.r.SoftState().Lead, floor: raft.Index(len(w.chk.canon))})
	w.handleReady(n)
	return nil
}

// readStates records the read indexes the leader confirmed and serves the
// reads whose index is applied.
func (w *world) readStates(n *simNode, rss []raft.ReadState) {
	for _, rs := range rss {
		for i := range n.reads {
			rw := &n.reads[i]
			if rw.req != rs.ID {
				continue
			}
			if rs.Err != nil {
				w.resolveRead(n, i, rs.Err)
				break
			}
			w.ev.add(event{t: w.now, kind: evReadState, a: uint8(rw.client), b: uint8(n.id), x: rw.req, y: uint64(rs.Index)})
			if rs.Index < rw.floor {
				// Every entry committed before the request must be visible
				// to the read (ReadIndex, dissertation §6.4).
				w.fail("read index", fmt.Sprintf("node %d got read index %d for a read requested after index %d was committed (%s)",
					n.id, rs.Index, rw.floor, w.leaseNote()))
				return
			}
			rw.index = rs.Index
			break
		}
	}
	for i := 0; i < len(n.reads); {
		if rw := n.reads[i]; rw.index != 0 && (rw.index <= n.applied || w.cfg.readsIgnoreApplied) {
			w.resolveRead(n, i, nil)
			continue
		}
		i++
	}
}

func (w *world) leaseNote() string {
	if w.cfg.ReadLease {
		return "read leases on"
	}
	return "read leases off"
}

// resolveRead answers read i of node n — from the local store if err is
// nil — and removes it.
func (w *world) resolveRead(n *simNode, i int, err error) {
	rw := n.reads[i]
	n.reads = append(n.reads[:i], n.reads[i+1:]...)
	var res []byte
	if err == nil {
		r := kv.Result{Status: kv.StatusNotFound, ClientID: w.clients[rw.client].sess.ClientID, Index: n.applied}
		if v, ok := n.store.Get([]byte(rw.key)); ok {
			r.Status, r.Value = kv.StatusOK, v
		}
		res = r.AppendBinary(nil)
		w.rep.ReadIndexReads++
	}
	w.reply(n, waiter{req: rw.req, client: rw.client}, res, err)
}

// forget drops the waiter or read of request req at node n (its client
// gave up).
func (n *simNode) forget(req uint64) {
	for i := range n.waiters {
		if n.waiters[i].req == req {
			n.waiters = append(n.waiters[:i], n.waiters[i+1:]...)
			return
		}
	}
	for i := range n.reads {
		if n.reads[i].req == req {
			n.reads = append(n.reads[:i], n.reads[i+1:]...)
			return
		}
	}
}

func hashBytes(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

func describeEntry(e *raft.Entry) string {
	if e.Type == raft.EntryNoop {
		return fmt.Sprintf("{term %d no-op}", e.Term)
	}
	return fmt.Sprintf("{term %d, %d bytes, hash %016x}", e.Term, len(e.Data), hashBytes(e.Data))
}

package raft

import "slices"

// Role is a node's role in its current term (§5.1), plus the pre-candidate
// role of the pre-vote phase (dissertation §9.6).
type Role uint8

const (
	RoleFollower Role = iota
	RolePreCandidate
	RoleCandidate
	RoleLeader
)

func (r Role) String() string {
	switch r {
	case RolePreCandidate:
		return "pre-candidate"
	case RoleCandidate:
		return "candidate"
	case RoleLeader:
		return "leader"
	}
	return "follower"
}

// maxRejectedPerReady bounds the proposal rejections buffered between two
// Readys; rejections beyond it are counted and their proposers time out.
const maxRejectedPerReady = 256

// Raft is one node's consensus state machine. It does no I/O and reads no
// clock: drive it with Tick, Step and Propose, and collect its output with
// Ready/Advance (see doc.go). It is not safe for concurrent use.
type Raft struct {
	id   NodeID
	cfg  Config
	term Term
	vote NodeID
	lead NodeID
	role Role
	log  *raftLog

	// prs has one entry per member, self included, in Config.Peers order.
	prs  []progress
	self *progress

	electionElapsed  int
	heartbeatElapsed int
	// randomizedElectionTimeout is drawn from [E, 2E) at every reset (§5.2).
	randomizedElectionTimeout int
	rng                       prng

	// tick and step hold the role's behaviour; only become* sets them.
	tick func()
	step func(m Message) error

	// uncommittedBytes is the payload a leader has appended in its term and
	// not yet seen applied (bounded by MaxUncommittedBytes).
	uncommittedBytes int
	matchScratch     []Index
	ackScratch       []uint64
	propSeq          uint64 // last forwarded proposal's sequence number
	propSeqBase      uint64 // propSeq at start; valid sequences are above it

	// Output buffers, double-buffered so that a Ready's slices stay valid
	// while the caller handles it and Step keeps producing output.
	msgs, msgsSpare         []Message
	rejected, rejectedSpare []ProposalRejection
	prevHardState           HardState
	prevSoftState           SoftState
	readyPending            bool
	readyID                 uint64
	readErrReported         bool

	// ticks counts every Tick since start (leases measure time in it).
	ticks uint64
	// hbSeq numbers the leader's heartbeat broadcasts; hbSent remembers
	// when recent ones left.
	hbSeq  uint64
	hbSent [hbRingSize]struct{ seq, tick uint64 }
	// reads are the leader's pending read requests, in arrival order;
	// readRoundPending asks for a heartbeat round at the next Ready.
	reads                       []readRequest
	readRoundPending            bool
	readStates, readStatesSpare []ReadState

	// incoming is a follower's snapshot transfer in progress; snapChunks
	// its chunks for the next Ready, pendingSnap a completed transfer for
	// the caller to install.
	incoming                    incoming
	snapChunks, snapChunksSpare []SnapshotChunk
	pendingSnap                 SnapshotMeta

	// conf is the configuration in effect (the last committed one);
	// confRecs the configuration entries above the commit index.
	conf     ConfState
	confRecs []confRec
	// leadTransferee is the node a leader is handing leadership to, for
	// at most an election timeout (transferElapsed ticks so far).
	leadTransferee  NodeID
	transferElapsed int
	// leaseRevoked: this leader sent MsgTimeoutNow in its term, so its
	// read lease no longer holds (sendTimeoutNow).
	leaseRevoked bool

	stats Stats
}

// New returns a node restored from cfg.Storage, as a follower.
func New(cfg Config) (*Raft, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hs, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, err
	}
	log, err := newLog(cfg.Storage, hs, cfg.Applied)
	if err != nil {
		return nil, err
	}
	r := &Raft{id: cfg.ID, cfg: cfg, log: log, rng: newPRNG(cfg.Seed, cfg.ID),
		propSeq: cfg.ForwardSeqBase, propSeqBase: cfg.ForwardSeqBase}
	r.cfg.Peers = slices.Clone(cfg.Peers)
	snap, err := cfg.Storage.Snapshot()
	if err != nil {
		return nil, err
	}
	if err := r.initConf(snap, cfg.Peers); err != nil {
		return nil, err
	}
	r.msgs = make([]Message, 0, 4*max(len(r.prs), 3))
	r.msgsSpare = make([]Message, 0, 4*max(len(r.prs), 3))
	r.becomeFollower(hs.Term, None)
	r.vote = hs.Vote
	if lt, err := r.log.lastTerm(); err == nil && lt > hs.Term {
		// A crash after a snapshot install (durable at once) and before
		// the Ready's hard state was synced leaves a stored term below the
		// log's. Raising the term (with no vote) is what receiving the
		// leader's message did; a term below the log's would let this node
		// lead with entries older than its own log's last.
		r.becomeFollower(lt, None)
	}
	r.prevHardState = hs
	r.prevSoftState = r.softState()
	return r, nil
}

// ID returns this node's ID.
func (r *Raft) ID() NodeID { return r.id }

// Term returns the current term; SoftState the current leader and role.
// Both are cheap, unlike Status.
func (r *Raft) Term() Term { return r.term }

// SoftState returns the current leader and role.
func (r *Raft) SoftState() SoftState { return r.softState() }

// Tick advances the node's logical clock by one tick.
func (r *Raft) Tick() {
	r.ticks++
	r.tick()
}

// Campaign makes a follower start an election now (with a pre-vote round
// unless disabled), as if its election timeout had elapsed.
func (r *Raft) Campaign() { r.hup() }

func (r *Raft) progressOf(id NodeID) *progress {
	for i := range r.prs {
		if r.prs[i].id == id {
			return &r.prs[i]
		}
	}
	return nil
}

func (r *Raft) hardState() HardState {
	return HardState{Term: r.term, Vote: r.vote, Commit: r.log.committed}
}

func (r *Raft) softState() SoftState { return SoftState{Lead: r.lead, Role: r.role} }

// send queues m for the caller to deliver. Term is stamped unless the
// message already carries one (pre-vote traffic uses a future term).
func (r *Raft) send(m Message) {
	m.From = r.id
	if m.Term == 0 {
		m.Term = r.term
	}
	r.msgs = append(r.msgs, m)
}

// reset prepares for a new role in term, forgetting the vote if the term
// changes.
func (r *Raft) reset(term Term) {
	if r.term != term {
		r.term = term
		r.vote = None
	}
	r.lead = None
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.randomizedElectionTimeout = r.cfg.ElectionTicks + r.rng.intn(r.cfg.ElectionTicks)
	r.uncommittedBytes = 0
	for i := range r.prs {
		r.prs[i].vote = voteUnknown
		r.prs[i].readAck = 0
	}
	// Pending reads die with the leadership that would have confirmed
	// them; the runtime answers their callers when it sees the change.
	r.reads = r.reads[:0]
	r.readRoundPending = false
	r.leadTransferee, r.transferElapsed = None, 0
	r.leaseRevoked = false
}

func (r *Raft) becomeFollower(term Term, lead NodeID) {
	r.reset(term)
	r.role = RoleFollower
	r.lead = lead
	r.tick = r.tickElection
	r.step = r.stepFollower
}

func (r *Raft) becomePreCandidate() {
	// Pre-vote changes neither term nor vote: a partitioned node that keeps
	// failing pre-votes never inflates its term (dissertation §9.6).
	r.role = RolePreCandidate
	r.lead = None
	for i := range r.prs {
		r.prs[i].vote = voteUnknown
	}
	r.tick = r.tickElection
	r.step = r.stepCandidate
}

func (r *Raft) becomeCandidate() {
	r.reset(r.term + 1)
	r.vote = r.id
	r.role = RoleCandidate
	r.tick = r.tickElection
	r.step = r.stepCandidate
}

func (r *Raft) becomeLeader() {
	r.reset(r.term)
	r.role = RoleLeader
	r.lead = r.id
	r.tick = r.tickHeartbeat
	r.step = r.stepLeader
	next := r.log.lastIndex() + 1
	for i := range r.prs {
		r.prs[i].resetForLeader(next)
	}
	r.self.match = r.log.stableLast()
	// A no-op of the new term lets the leader commit entries of earlier
	// terms, which it may not count replicas of directly (§5.4.2, §8).
	r.appendEntry(Entry{Term: r.term, Index: next, Type: EntryNoop})
	if r.conf.Joint() && len(r.confRecs) == 0 {
		r.appendConf(leaveJoint(r.conf)) // the previous leader did not get to it
	}
}

// appendEntry adds one entry of the current term to the leader's log.
func (r *Raft) appendEntry(e Entry) {
	ents := []Entry{e}
	r.log.unstable.truncateAndAppend(ents)
	if e.Type == EntryConfChange {
		r.recordConfs(ents)
	}
}

// tickElection is the tick of followers and candidates.
// Learners and non-members never campaign, and their electionElapsed keeps
// growing, so that they leave the leader lease (inLease) once no leader is
// heard: they may be voters of a configuration they have not learned yet,
// whose candidates need their votes.
func (r *Raft) tickElection() {
	r.electionElapsed++
	if r.promotable() && r.electionElapsed >= r.randomizedElectionTimeout {
		r.electionElapsed = 0
		r.hup()
	}
}

// tickHeartbeat is the leader's tick.
func (r *Raft) tickHeartbeat() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.electionElapsed >= r.cfg.ElectionTicks {
		r.electionElapsed = 0
		if !r.cfg.DisableCheckQuorum && !r.quorumActive() {
			// Check-quorum (§6.2): a leader that has not heard from a
			// majority for an election timeout steps down, so clients of
			// a partitioned leader fail fast instead of waiting forever.
			r.becomeFollower(r.term, None)
			return
		}
	}
	if r.leadTransferee != None {
		if r.transferElapsed++; r.transferElapsed >= r.cfg.ElectionTicks {
			failed := r.leadTransferee
			r.leadTransferee = None // the transfer failed; lead on
			if !r.promotable() {
				r.handOff(failed) // or hand off again, to another voter
			}
		}
	}
	if r.heartbeatElapsed >= r.cfg.HeartbeatTicks {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat()
	}
}

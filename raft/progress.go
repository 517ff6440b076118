package raft

// ProgressState is how the leader replicates to one follower.
type ProgressState uint8

const (
	// StateProbe: the leader does not know where the follower's log
	// matches; it sends one MsgApp at a time and waits for the answer.
	StateProbe ProgressState = iota
	// StateReplicate: the follower's log matches up to Match; the leader
	// streams MsgApps optimistically, up to MaxInflightMsgs unacknowledged.
	StateReplicate
	// StateSnapshot: the entries the follower needs are compacted; the
	// leader streams it a snapshot in chunks and sends no MsgApp.
	StateSnapshot
)

func (s ProgressState) String() string {
	switch s {
	case StateReplicate:
		return "replicate"
	case StateSnapshot:
		return "snapshot"
	}
	return "probe"
}

// progress is the leader's view of one member (§5.3 nextIndex/matchIndex).
// Invariant: Match < Next.
type progress struct {
	id    NodeID
	match Index
	next  Index
	state ProgressState
	// probeSent pauses a probing follower until it answers.
	probeSent bool
	// recentActive is set by any message from the follower and cleared at
	// each check-quorum round.
	recentActive bool
	inflights    inflights
	// vote records this member's answer in the current election.
	vote voteState
	// readAck is the highest heartbeat sequence this member echoed in the
	// current leadership.
	readAck uint64
	// voter and outgoing place the member in the configuration's voter
	// sets (incoming and, when joint, outgoing); a member in neither is a
	// learner.
	voter, outgoing bool

	// In StateSnapshot: the snapshot being sent, the stream offset of the
	// next chunk to send, the offset the follower acknowledged, the offset
	// last gone back to (refusals of it are not repeated), and snapAcked at
	// the last heartbeat (no progress for a heartbeat means retransmit).
	snap          SnapshotMeta
	snapHdr       []byte // the stream header (configuration)
	snapSent      uint64
	snapAcked     uint64
	snapRewound   uint64
	snapAckedAtHB uint64
}

type voteState uint8

const (
	voteUnknown voteState = iota
	voteGranted
	voteRejected
)

// resetForLeader starts a new leader's view: nothing known to match, next
// optimistically just past the leader's log (§5.3).
func (p *progress) resetForLeader(next Index) {
	p.match = 0
	p.becomeProbe()
	p.next = next
	p.recentActive = true
}

func (p *progress) becomeProbe() {
	p.state = StateProbe
	p.next = p.match + 1
	p.probeSent = false
	p.inflights.reset()
}

// becomeSnapshot starts sending snap from its first byte.
func (p *progress) becomeSnapshot(snap SnapshotMeta) {
	p.state = StateSnapshot
	p.snap = snap
	p.snapHdr = snapHeader(snap)
	p.snapSent, p.snapAcked, p.snapAckedAtHB = 0, 0, 0
	p.snapRewound = ^uint64(0)
	p.probeSent = false
	p.inflights.reset()
}

// rewindSnapshot resends the snapshot stream from the acknowledged offset.
func (p *progress) rewindSnapshot() {
	p.snapSent = p.snapAcked
	p.snapRewound = p.snapAcked
}

func (p *progress) becomeReplicate() {
	p.state = StateReplicate
	p.next = p.match + 1
	p.inflights.reset()
}

// isPaused reports whether the leader must hold back MsgApps to this member.
func (p *progress) isPaused() bool {
	switch p.state {
	case StateProbe:
		return p.probeSent
	case StateSnapshot:
		return true
	}
	return p.inflights.full()
}

// maybeUpdate records a successful append up to n.
func (p *progress) maybeUpdate(n Index) bool {
	if n <= p.match {
		return false
	}
	p.match = n
	p.next = max(p.next, n+1)
	p.probeSent = false
	return true
}

// maybeDecrTo handles a rejection of the MsgApp whose preceding index was
// rejected; hint is the largest index that may match. Stale rejections
// (of messages sent before a later state change) return false.
func (p *progress) maybeDecrTo(rejected, hint Index) bool {
	switch p.state {
	case StateSnapshot:
		return false // a rejection of a MsgApp sent before the snapshot
	case StateReplicate:
		if rejected <= p.match {
			return false
		}
		p.next = p.match + 1
		return true
	}
	if p.next-1 != rejected {
		return false
	}
	p.next = max(min(rejected, hint+1), p.match+1)
	p.probeSent = false
	return true
}

// inflights is a fixed-size ring of the last indexes of MsgApps sent to one
// follower and not yet acknowledged. It never allocates after creation.
type inflights struct {
	start, count int
	buf          []Index
}

func newInflights(size int) inflights { return inflights{buf: make([]Index, size)} }

func (in *inflights) full() bool { return in.count == len(in.buf) }

func (in *inflights) add(last Index) {
	if in.full() {
		panic("raft: inflights overflow") // callers check isPaused first
	}
	in.buf[(in.start+in.count)%len(in.buf)] = last
	in.count++
}

// freeLE releases every message whose last index is <= to.
func (in *inflights) freeLE(to Index) {
	for in.count > 0 && in.buf[in.start] <= to {
		in.start = (in.start + 1) % len(in.buf)
		in.count--
	}
}

func (in *inflights) reset() { in.start, in.count = 0, 0 }

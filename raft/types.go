package raft

// Term is a Raft term number. Terms only grow; 0 means "no term yet".
type Term uint64

// Index is a position in the replicated log. The first entry has index 1;
// 0 means "before the log".
type Index uint64

// NodeID names a member of the cluster. The zero value None means "nobody".
type NodeID uint64

// None is the NodeID meaning "no node": no vote cast, no leader known.
const None NodeID = 0

// EntryType tells the state machine driver how to treat an entry.
type EntryType uint8

const (
	// EntryNormal carries application data proposed by a client.
	EntryNormal EntryType = 0
	// EntryNoop is appended by every new leader for its term (§5.4.2, §8):
	// committing it commits everything before it. It carries no data and is
	// not given to the application's state machine.
	EntryNoop EntryType = 1
	// EntryConfChange carries a membership change: Data is the resulting
	// ConfState (AppendConfState). It takes effect on every node when it
	// is committed, and is not given to the application's state machine.
	EntryConfChange EntryType = 2
)

// Entry is one record of the replicated log.
type Entry struct {
	Term  Term
	Index Index
	Type  EntryType
	// Data is the application payload. The core keeps a reference to it and
	// never modifies it; callers must not modify it after handing it over.
	Data []byte
}

// MessageType identifies a Raft message. The numeric values are part of the
// wire format (see docs/WIRE.md) and must never be renumbered.
type MessageType uint8

const (
	// MsgApp is AppendEntries (§5.3): Index/LogTerm are the index and term
	// of the entry preceding Entries; Commit is the leader's commit index.
	MsgApp MessageType = 1
	// MsgAppResp answers MsgApp. On success Index is the last index the
	// follower now matches; acknowledgements are cumulative, so a follower
	// answers the appends it steps between two Readys with one success
	// (Stats.AcksMerged). On Reject, Index is the rejected MsgApp's Index,
	// and Hint/LogTerm are a conflict hint: the largest index <= Hint in the
	// follower's log whose term (LogTerm) is <= the rejected LogTerm.
	MsgAppResp MessageType = 2
	// MsgVote is RequestVote (§5.2): Index/LogTerm describe the candidate's
	// last log entry (§5.4.1). Reject set marks a campaign started by a
	// leadership transfer (see MsgTimeoutNow).
	MsgVote MessageType = 3
	// MsgVoteResp answers MsgVote; Reject=false grants the vote. A refusal
	// carries the responder's commit index in Commit and the term of the
	// entry there in LogTerm, which the candidate may commit up to if its
	// log holds that entry.
	MsgVoteResp MessageType = 4
	// MsgPreVote asks whether a vote would be granted for Term without
	// anyone changing term (dissertation §9.6).
	MsgPreVote MessageType = 5
	// MsgPreVoteResp answers MsgPreVote (a refusal carries Commit and
	// LogTerm as MsgVoteResp's does).
	MsgPreVoteResp MessageType = 6
	// MsgHeartbeat asserts leadership; Commit is min(follower match, commit).
	// Index is the leader's heartbeat sequence number, echoed in the
	// response: a quorum of echoes of sequence s proves the sender still
	// led after it sent s (ReadIndex, dissertation §6.4).
	MsgHeartbeat MessageType = 7
	// MsgHeartbeatResp answers MsgHeartbeat (Index: the echoed sequence);
	// it keeps the follower counted as active for check-quorum (§6.2).
	MsgHeartbeatResp MessageType = 8
	// MsgProp carries proposals forwarded from a follower to the leader.
	// Index is the forwarder's proposal sequence number.
	MsgProp MessageType = 9
	// MsgPropResp tells a forwarder that its proposal (Index = sequence
	// number) was refused; Hint carries a RejectReason.
	MsgPropResp MessageType = 10
	// MsgReadIndex asks the leader for a read index on a follower's
	// behalf; Index is the follower's read request ID.
	MsgReadIndex MessageType = 11
	// MsgReadIndexResp answers MsgReadIndex: Index echoes the request ID,
	// Commit is the read index; Reject (with a RejectReason in Hint) if
	// the receiver cannot serve it.
	MsgReadIndexResp MessageType = 12
	// MsgSnap carries one chunk of a snapshot to a follower whose entries
	// the leader has compacted. Index/LogTerm are the snapshot's last
	// included index and term; the chunk is Entries[0].Data (the entry's
	// other fields are zero), at byte offset Commit of a stream of Hint
	// bytes: the snapshot's data followed by its CRC-32C (4 bytes, little
	// endian).
	MsgSnap MessageType = 13
	// MsgSnapResp acknowledges MsgSnap: Index/LogTerm name the snapshot,
	// Commit is how many stream bytes the follower holds in order. Reject
	// says a chunk was refused (a gap, or an unknown transfer): the leader
	// resends from Commit. A complete transfer is answered by MsgAppResp.
	MsgSnapResp MessageType = 14
	// MsgTimeoutNow tells the target of a leadership transfer, whose log
	// the leader has brought up to date, to campaign at once; its MsgVotes
	// then have Reject set, which makes voters answer despite their
	// leader lease (dissertation §3.10).
	MsgTimeoutNow MessageType = 15
)

// msgTypeMax is the largest valid MessageType.
const msgTypeMax = MsgTimeoutNow

// Valid reports whether t is a known message type.
func (t MessageType) Valid() bool { return t >= MsgApp && t <= msgTypeMax }

// String returns the message type's name.
func (t MessageType) String() string {
	names := [...]string{"MsgInvalid", "MsgApp", "MsgAppResp", "MsgVote", "MsgVoteResp",
		"MsgPreVote", "MsgPreVoteResp", "MsgHeartbeat", "MsgHeartbeatResp", "MsgProp", "MsgPropResp",
		"MsgReadIndex", "MsgReadIndexResp", "MsgSnap", "MsgSnapResp", "MsgTimeoutNow"}
	if int(t) < len(names) {
		return names[t]
	}
	return "MsgUnknown"
}

// IsResponse reports whether t answers another message.
func (t MessageType) IsResponse() bool {
	switch t {
	case MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp, MsgPropResp, MsgReadIndexResp, MsgSnapResp:
		return true
	}
	return false
}

// RejectReason says why a leader refused a forwarded proposal (carried in
// MsgPropResp.Hint).
type RejectReason uint8

const (
	RejectNotLeader RejectReason = 1 // the receiver no longer leads
	RejectBusy      RejectReason = 2 // a flow-control bound was hit
	RejectTooLarge  RejectReason = 3 // the entry exceeds MaxEntryBytes
)

// Message is the unit of communication between Raft nodes. Which fields are
// meaningful depends on Type (see the MessageType constants); the wire codec
// encodes only those.
type Message struct {
	Type    MessageType
	From    NodeID
	To      NodeID
	Term    Term
	LogTerm Term
	Index   Index
	Commit  Index
	Hint    Index
	Reject  bool
	Entries []Entry
}

// HardState is the state a node must persist before it sends the messages of
// the Ready that carries it (Figure 2: currentTerm, votedFor; plus the commit
// index so that a restart does not have to rediscover it).
type HardState struct {
	Term   Term
	Vote   NodeID
	Commit Index
}

// IsEmpty reports whether hs is the zero HardState.
func (hs HardState) IsEmpty() bool { return hs == HardState{} }

package raft

import "strconv"

// Defaults for Config fields left at zero. With the runtime's default 10 ms
// tick they give the seed's timing: heartbeat 100 ms, election timeout
// randomized in [300 ms, 600 ms).
const (
	DefaultElectionTicks             = 30
	DefaultHeartbeatTicks            = 10
	DefaultMaxInflightMsgs           = 16
	DefaultMaxMsgBytes               = 1024
	DefaultMaxUncommittedBytes       = 64 << 10
	DefaultMaxEntriesInMemory        = 1024
	DefaultMaxCommittedBytesPerReady = 64 << 10
	DefaultMaxPendingReads           = 256
)

// msgOverheadBytes bounds what the wire codec adds around entry payloads in
// one MsgApp frame (header, fields, per-entry headers for a handful of
// entries, checksum). DefaultMaxMsgBytes + msgOverheadBytes <= 1200 keeps
// every frame inside one UDP datagram at the IPv6 minimum MTU.
const msgOverheadBytes = 64

// entryOverheadBytes is the budget charged per entry on top of its payload
// when batching entries into one message (the codec needs <= 6 bytes for
// indexes below 2^21 and a bit more above).
const entryOverheadBytes = 16

// Config configures one Raft node. The zero value of every bound selects its
// default; ID, Peers and Storage are required.
type Config struct {
	// ID is this node's identity; it must be listed in Peers.
	ID NodeID
	// Peers lists every voting member, this node included, when a cluster
	// is first started (bootstrap). Later configurations come from the log
	// and snapshots and override it. Empty: the node joins an existing
	// cluster and learns the configuration from the leader, which must add
	// it (ConfAddLearner or ConfAddVoter).
	Peers []NodeID
	// Storage is read by the core; the caller writes it (see doc.go).
	Storage Storage
	// Applied is the index the caller's state machine has already applied
	// (0 if it starts empty and replays the log).
	Applied Index
	// Seed drives the PRNG that randomizes election timeouts.
	Seed uint64
	// ForwardSeqBase starts the numbering of forwarded proposals (see
	// Proposal.Seq). Give each start of a node a different base (the
	// runtime uses a random incarnation) so that a refusal addressed to a
	// previous incarnation cannot be taken for one of the new proposals.
	ForwardSeqBase uint64

	// ElectionTicks is E: followers start an election after a random
	// timeout in [E, 2E) ticks without hearing from a leader (§5.2).
	ElectionTicks int
	// HeartbeatTicks is how often a leader sends heartbeats. Must be < E.
	HeartbeatTicks int
	// DisablePreVote turns off the pre-vote phase (dissertation §9.6).
	DisablePreVote bool
	// DisableCheckQuorum turns off leader step-down when a quorum has not
	// been heard from for an election timeout, and the leader lease that
	// makes nodes ignore vote requests while they hear a leader (§6.2).
	DisableCheckQuorum bool

	// MaxInflightMsgs bounds the MsgApp messages in flight to one follower
	// in the replicate state (the pipelining window).
	MaxInflightMsgs int
	// MaxMsgBytes bounds the entry bytes (payload + per-entry overhead)
	// batched into one MsgApp; also the largest entry that can be proposed.
	MaxMsgBytes int
	// MaxUncommittedBytes bounds the payload bytes a leader holds in
	// proposals not yet committed; over it proposals fail with ErrBusy.
	MaxUncommittedBytes int
	// MaxEntriesInMemory bounds the entries the core buffers itself (not yet
	// persisted). Proposals over it fail with ErrBusy; a follower accepts
	// only the prefix of an append that fits.
	MaxEntriesInMemory int
	// MaxCommittedBytesPerReady bounds the payload bytes of committed
	// entries handed out in one Ready (at least one entry is always given).
	MaxCommittedBytesPerReady int
	// MaxPendingReads bounds the read requests a leader holds while it
	// confirms its leadership; over it ReadIndex fails with ErrBusy.
	MaxPendingReads int

	// ReadLease lets a leader answer ReadIndex at once while it holds a
	// lease: a quorum acknowledged a heartbeat it sent less than
	// ElectionTicks-LeaseMarginTicks ticks ago. Safe only if no node's
	// clock runs faster than the leader's by more than the margin over an
	// election timeout (followers ignore candidates for ElectionTicks after
	// hearing the leader). Requires check-quorum. A leader that has
	// handed leadership over (TransferLeadership, or its removal) stops
	// using its lease for the rest of its term: the target's campaign
	// overrides the followers' lease.
	ReadLease bool
	// LeaseMarginTicks is the clock-drift allowance of ReadLease (default
	// ElectionTicks/10, at least 1).
	LeaseMarginTicks int
}

// MaxEntryBytes is the largest Data a proposal may carry under c.
func (c *Config) MaxEntryBytes() int { return c.MaxMsgBytes - entryOverheadBytes }

// withDefaults returns c with zero bounds replaced by their defaults.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.ElectionTicks, DefaultElectionTicks)
	def(&c.HeartbeatTicks, DefaultHeartbeatTicks)
	def(&c.MaxInflightMsgs, DefaultMaxInflightMsgs)
	def(&c.MaxMsgBytes, DefaultMaxMsgBytes)
	def(&c.MaxUncommittedBytes, DefaultMaxUncommittedBytes)
	def(&c.MaxEntriesInMemory, DefaultMaxEntriesInMemory)
	def(&c.MaxCommittedBytesPerReady, DefaultMaxCommittedBytesPerReady)
	def(&c.MaxPendingReads, DefaultMaxPendingReads)
	def(&c.LeaseMarginTicks, max(1, c.ElectionTicks/10))
	return c
}

// validate checks a defaulted Config.
func (c *Config) validate() error {
	bad := func(field, why string) error { return &configError{field, why} }
	switch {
	case c.ID == None:
		return bad("ID", "must not be 0")
	case c.Storage == nil:
		return bad("Storage", "must be set")
	case c.HeartbeatTicks < 1:
		return bad("HeartbeatTicks", "must be >= 1")
	case c.ElectionTicks <= c.HeartbeatTicks:
		return bad("ElectionTicks", "must exceed HeartbeatTicks ("+strconv.Itoa(c.HeartbeatTicks)+")")
	case c.MaxInflightMsgs < 1:
		return bad("MaxInflightMsgs", "must be >= 1")
	case c.MaxMsgBytes <= entryOverheadBytes:
		return bad("MaxMsgBytes", "must exceed "+strconv.Itoa(entryOverheadBytes))
	case c.MaxUncommittedBytes < c.MaxEntryBytes():
		return bad("MaxUncommittedBytes", "must be >= MaxMsgBytes-"+strconv.Itoa(entryOverheadBytes))
	case c.MaxEntriesInMemory < 1:
		return bad("MaxEntriesInMemory", "must be >= 1")
	case c.MaxCommittedBytesPerReady < 1:
		return bad("MaxCommittedBytesPerReady", "must be >= 1")
	case c.MaxPendingReads < 1:
		return bad("MaxPendingReads", "must be >= 1")
	case c.ReadLease && c.DisableCheckQuorum:
		return bad("ReadLease", "needs check-quorum (followers' lease is what makes it safe)")
	case c.ReadLease && c.LeaseMarginTicks >= c.ElectionTicks:
		return bad("LeaseMarginTicks", "must be below ElectionTicks")
	}
	return validatePeers(c.ID, c.Peers)
}

func validatePeers(id NodeID, peers []NodeID) error {
	if len(peers) == 0 {
		return nil // joining: the configuration comes from the leader
	}
	if len(peers) > MaxMembers {
		return &configError{"Peers", "more than MaxMembers (" + strconv.Itoa(MaxMembers) + ")"}
	}
	self := false
	for i, p := range peers {
		if p == None {
			return &configError{"Peers", "must not contain 0"}
		}
		if p == id {
			self = true
		}
		for _, q := range peers[:i] {
			if p == q {
				return &configError{"Peers", "duplicate ID " + strconv.FormatUint(uint64(p), 10)}
			}
		}
	}
	if !self {
		return &configError{"Peers", "must contain ID " + strconv.FormatUint(uint64(id), 10)}
	}
	return nil
}

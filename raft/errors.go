package raft

import "errors"

// Errors returned to callers of the core. Each is a sentinel usable with
// errors.Is; none of them means the node is broken.
var (
	// ErrNoLeader: the proposal cannot be accepted or forwarded because this
	// node knows of no leader (an election is under way). Retry later.
	ErrNoLeader = errors.New("raft: no leader")
	// ErrBusy: a flow-control bound (MaxUncommittedBytes or
	// MaxEntriesInMemory) is reached. Retry after commits catch up.
	ErrBusy = errors.New("raft: busy, bound reached")
	// ErrTooLarge: the proposal's data exceeds MaxEntryBytes and could never
	// travel in one message.
	ErrTooLarge = errors.New("raft: entry too large")
	// ErrNotLeader: a forwarded proposal reached a node that no longer leads.
	ErrNotLeader = errors.New("raft: not leader")
	// ErrUnknownPeer: a message names a sender that is not a cluster member,
	// or a recipient other than this node. The message is ignored.
	ErrUnknownPeer = errors.New("raft: message from unknown peer or for another node")
	// ErrInvalidMessage: a message's type or fields cannot be valid. The
	// message is ignored.
	ErrInvalidMessage = errors.New("raft: invalid message")
	// ErrConfig: the Config is invalid; the wrapped text says which field.
	ErrConfig = errors.New("raft: invalid config")

	// ErrCompacted: the requested index precedes the storage's first index.
	ErrCompacted = errors.New("raft: requested index is compacted")
	// ErrUnavailable: the requested index is beyond the storage's last index.
	ErrUnavailable = errors.New("raft: requested index is unavailable")
	// ErrSnapshotChanged: ReadSnapshot was asked for a snapshot that is no
	// longer the stored one (a newer snapshot replaced it).
	ErrSnapshotChanged = errors.New("raft: snapshot replaced by a newer one")
	// ErrSnapshotMismatch: an incoming snapshot does not match what was
	// announced (size or checksum), or storage holds no such snapshot.
	ErrSnapshotMismatch = errors.New("raft: snapshot does not match its metadata")
	// ErrInvalidConf: an encoded configuration is malformed or violates
	// a ConfState invariant.
	ErrInvalidConf = errors.New("raft: invalid configuration")
	// ErrInvalidConfChange: a membership change that cannot apply (a
	// no-op, ConfAddLearner alone on a voter, removing every voter, an
	// unknown type).
	ErrInvalidConfChange = errors.New("raft: invalid membership change")
	// ErrConfChangePending: a membership change (or the end of a joint
	// configuration) is not committed yet; one runs at a time.
	ErrConfChangePending = errors.New("raft: a membership change is in progress")
	// ErrNotVoter: leadership can only be transferred to a voter.
	ErrNotVoter = errors.New("raft: target is not a voter")
)

// configError wraps ErrConfig with the name of the offending field, without
// fmt (the core must stay portable).
type configError struct{ field, why string }

func (e *configError) Error() string { return "raft: invalid config: " + e.field + ": " + e.why }
func (e *configError) Unwrap() error { return ErrConfig }

// rejectErr maps a RejectReason received from a leader to its sentinel.
func rejectErr(r RejectReason) error {
	switch r {
	case RejectBusy:
		return ErrBusy
	case RejectTooLarge:
		return ErrTooLarge
	}
	return ErrNotLeader
}

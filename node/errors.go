package node

import (
	"errors"

	"github.com/embraft/embraft/raft"
)

// Errors a Propose may return (besides the context's).
var (
	ErrNoLeader      = raft.ErrNoLeader
	ErrBusy          = raft.ErrBusy
	ErrTooLarge      = raft.ErrTooLarge
	ErrNotLeader     = raft.ErrNotLeader
	ErrLeaderChanged = errors.New("node: leader changed before the command was applied; outcome unknown")
	ErrStopped       = errors.New("node: stopped")
	// ErrForwardTimeout: a proposal forwarded to the leader got no outcome
	// within Config.ForwardTimeout (its message may have been lost). It may
	// or may not be applied; retry with the same client session.
	ErrForwardTimeout = errors.New("node: forwarded proposal got no outcome in time")
)

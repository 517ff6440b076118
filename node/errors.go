package node

import (
	"errors"
	"fmt"

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
	// ErrForwardDropped: a proposal or read this follower forwards to the
	// leader was dropped before it left, because the transport's bounded
	// queue to the leader was full. Nothing was proposed, so the caller can
	// retry at once instead of waiting for ErrForwardTimeout. It wraps
	// ErrBusy: the queue is one of the node's bounds.
	ErrForwardDropped = fmt.Errorf("node: forwarded request dropped, the transport's queue to the leader is full; nothing was proposed: %w", ErrBusy)
)

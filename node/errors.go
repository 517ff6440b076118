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
)

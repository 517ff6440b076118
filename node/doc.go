// Package node runs one Raft core: a goroutine that owns the core, its
// storage, its transport endpoint and its state machine, and drives them
// through the core's Ready contract (persist, send, apply, Advance).
//
// Clients call Propose on any node. The node wraps the command in an
// envelope naming itself and a request ID, proposes it (a follower's core
// forwards it to the leader), and answers the caller when the entry is
// applied locally — with the state machine's result — or with an error the
// caller can act on:
//
//   - ErrNoLeader: no leader is known (an election is under way).
//   - ErrBusy: a bound is reached (proposal queue, pending proposals, or a
//     core bound such as MaxUncommittedBytes).
//   - ErrTooLarge: the command can never fit one message.
//   - ErrLeaderChanged: the term changed before the command was applied;
//     it may or may not be applied later. Retry with the same client
//     session (package kv) to have it applied exactly once.
//   - ErrForwardTimeout: a proposal forwarded to the leader got no outcome
//     within Config.ForwardTimeout (a lost message); outcome unknown.
//   - ErrForwardDropped (wraps ErrBusy): the transport refused the
//     forwarded message (its queue to the leader was full); nothing was
//     proposed.
//   - ErrStopped: the node is shutting down.
//   - the context's error.
//
// No waiter is leaked: each one is answered exactly once, by application,
// by one of the errors above, or when its context ends.
package node

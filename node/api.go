package node

import (
	"context"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
)

// Propose replicates cmd and returns the state machine's result once the
// command is committed and applied on this node. It works on any node
// (followers forward to the leader) and fails fast with ErrNoLeader,
// ErrBusy, ErrTooLarge, ErrStopped, ErrLeaderChanged or ctx's error.
// cmd must not be modified until Propose returns.
func (n *Node) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) > n.maxCmd {
		return nil, ErrTooLarge
	}
	// The envelope is built here, so cmd is copied before Propose can
	// return and the caller may reuse it at once.
	req := n.incarnation<<32 | n.nextReq.Add(1)&0xFFFFFFFF
	data := appendEnvelope(make([]byte, 0, envelopeMaxBytes+len(cmd)), n.id, req, cmd)
	p := &proposal{ctx: ctx, data: data, req: req, done: make(chan result, 1)}
	select {
	case <-n.done:
		return nil, ErrStopped
	default:
	}
	select {
	case n.propc <- p:
	default:
		return nil, ErrBusy // the bounded queue is full
	}
	select {
	case r := <-p.done:
		return r.val, r.err
	case <-ctx.Done():
		return nil, ctx.Err() // the node drops the waiter at its next sweep
	case <-n.done:
		select {
		case r := <-p.done:
			return r.val, r.err
		default:
			return nil, ErrStopped
		}
	}
}

// MaxCommandBytes is the largest command Propose accepts.
func (n *Node) MaxCommandBytes() int { return n.maxCmd }

// Status is a node's state for monitoring.
type Status struct {
	raft.Status
	Transport transport.Stats
	// FramesBad counts received frames that did not decode.
	FramesBad uint64
	// StepErrors counts decoded messages the core refused.
	StepErrors uint64
	// Pending counts proposals awaiting their outcome.
	Pending int
	// AppliedHash fingerprints the applied sequence (see hashEntry).
	AppliedHash uint64
	// SnapshotIndex is the index of the newest stored snapshot;
	// SnapshotsTaken counts the snapshots this node took since it started.
	SnapshotIndex  raft.Index
	SnapshotBytes  uint64
	SnapshotsTaken uint64
	Uptime         time.Duration
	Stopped        bool
}

// Status returns the node's current state (its final state once stopped).
func (n *Node) Status() Status {
	c := make(chan Status, 1)
	select {
	case n.statusc <- c:
		return <-c
	case <-n.done:
		return n.final
	}
}

func (n *Node) status() Status {
	return Status{
		Status: n.r.Status(), Transport: n.cfg.Transport.Stats(),
		FramesBad: n.framesBad, StepErrors: n.stepErrors, Pending: len(n.waiters),
		AppliedHash: n.appliedHash, Uptime: time.Since(n.started),
		SnapshotIndex: n.snapIndex, SnapshotBytes: n.snapBytes, SnapshotsTaken: n.snapshots,
	}
}

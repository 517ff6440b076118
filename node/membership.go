package node

import (
	"context"
	"errors"
	"slices"

	"github.com/embraft/embraft/raft"
)

// ErrTransferFailed: the leadership transfer target did not take over
// within two election timeouts.
var ErrTransferFailed = errors.New("node: leadership transfer did not complete")

// ctrl is a request run in the node goroutine: membership changes and
// leadership transfers.
type ctrl struct {
	ctx     context.Context
	changes []raft.ConfChange
	to      raft.NodeID // transfer target (changes empty)
	done    chan ctrlResult
	// set in the node goroutine:
	index, expire uint64
	term          raft.Term
}

type ctrlResult struct {
	conf raft.ConfState
	err  error
}

// ChangeMembership proposes a membership change at this node, which must
// lead (else ErrNotLeader; Status().Lead names the leader), and waits until
// it is committed and applied here. One voter changes directly; larger
// changes pass through a joint configuration that the leader leaves
// automatically (the returned configuration may still be joint; a
// following change fails with raft.ErrConfChangePending until it is left).
// Add a node as a learner first (raft.ConfAddLearner) so it catches up
// before it votes, then promote it (raft.ConfAddVoter).
func (n *Node) ChangeMembership(ctx context.Context, changes ...raft.ConfChange) (raft.ConfState, error) {
	if len(changes) == 0 {
		return raft.ConfState{}, raft.ErrInvalidConfChange
	}
	return n.control(&ctrl{ctx: ctx, changes: slices.Clone(changes)})
}

// TransferLeadership asks this node, which must lead, to hand leadership
// to the voter to, and waits until to leads (or ErrTransferFailed after two
// election timeouts). Proposals fail with ErrBusy meanwhile.
func (n *Node) TransferLeadership(ctx context.Context, to raft.NodeID) error {
	_, err := n.control(&ctrl{ctx: ctx, to: to})
	return err
}

func (n *Node) control(c *ctrl) (raft.ConfState, error) {
	c.done = make(chan ctrlResult, 1)
	select {
	case n.ctrlc <- c:
	case <-c.ctx.Done():
		return raft.ConfState{}, c.ctx.Err()
	case <-n.done:
		return raft.ConfState{}, ErrStopped
	}
	select {
	case r := <-c.done:
		return r.conf, r.err
	case <-c.ctx.Done():
		return raft.ConfState{}, c.ctx.Err()
	case <-n.done:
		return raft.ConfState{}, ErrStopped
	}
}

// startControl runs c in the node goroutine.
func (n *Node) startControl(c *ctrl) {
	if len(c.changes) == 0 {
		n.startTransfer(c)
		return
	}
	p, err := n.r.ProposeConfChange(c.changes...)
	if err != nil {
		c.done <- ctrlResult{err: err}
		return
	}
	c.index, c.term = uint64(p.Index), p.Term
	n.confWaiters = append(n.confWaiters, c)
	n.log.Info("membership change proposed", "changes", describeChanges(c.changes), "index", uint64(p.Index))
}

func (n *Node) startTransfer(c *ctrl) {
	if err := n.r.TransferLeadership(c.to); err != nil {
		c.done <- ctrlResult{err: err}
		return
	}
	if n.r.SoftState().Lead == c.to {
		c.done <- ctrlResult{}
		return
	}
	n.log.Info("leadership transfer started", "to", uint64(c.to))
	c.expire = n.ticks + 2*n.electionTicks()
	n.transfers = append(n.transfers, c)
}

func (n *Node) electionTicks() uint64 {
	if e := n.cfg.Raft.ElectionTicks; e > 0 {
		return uint64(e)
	}
	return raft.DefaultElectionTicks
}

// appliedConf handles an applied configuration entry: it becomes the
// configuration snapshots record, and answers the change's waiter.
func (n *Node) appliedConf(e *raft.Entry) {
	cs, err := raft.DecodeConfState(e.Data)
	if err != nil {
		n.log.Error("skipping malformed configuration entry", "index", uint64(e.Index))
		return
	}
	n.conf = cs
	n.log.Info("configuration changed", "index", uint64(e.Index), "voters", cs.Voters,
		"outgoing", cs.VotersOutgoing, "learners", cs.Learners)
	n.confWaiters = slices.DeleteFunc(n.confWaiters, func(c *ctrl) bool {
		if c.index != uint64(e.Index) {
			return false
		}
		if c.term != e.Term {
			c.done <- ctrlResult{err: ErrLeaderChanged}
		} else {
			c.done <- ctrlResult{conf: cs}
		}
		return true
	})
}

// checkControls answers transfers that completed or expired, and fails
// membership waiters stranded by a change of term or whose caller left.
func (n *Node) checkControls() {
	lead := n.soft.Lead
	n.transfers = slices.DeleteFunc(n.transfers, func(c *ctrl) bool {
		switch {
		case lead == c.to:
			c.done <- ctrlResult{}
		case c.ctx.Err() != nil:
			c.done <- ctrlResult{err: c.ctx.Err()}
		case n.ticks >= c.expire:
			c.done <- ctrlResult{err: ErrTransferFailed}
		default:
			return false
		}
		return true
	})
	n.confWaiters = slices.DeleteFunc(n.confWaiters, func(c *ctrl) bool {
		switch {
		case c.term != n.term:
			c.done <- ctrlResult{err: ErrLeaderChanged}
		case c.ctx.Err() != nil:
			c.done <- ctrlResult{err: c.ctx.Err()}
		default:
			return false
		}
		return true
	})
}

// failControls answers every control request at shutdown.
func (n *Node) failControls() {
	for _, c := range slices.Concat(n.transfers, n.confWaiters) {
		c.done <- ctrlResult{err: ErrStopped}
	}
	n.transfers, n.confWaiters = nil, nil
}

func describeChanges(cs []raft.ConfChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

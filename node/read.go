package node

import (
	"context"

	"github.com/embraft/embraft/raft"
)

// readWaiter is a LinearizableRead in progress.
type readWaiter struct {
	ctx  context.Context
	id   uint64
	term raft.Term
	lead raft.NodeID
	// index is the read index once the leader answered (0 before).
	index      raft.Index
	expireTick uint64
	done       chan error // buffered
}

// LinearizableRead returns once this node's state machine has applied
// every command committed before the call (ReadIndex, dissertation §6.4):
// reads of the state machine made after it returns are linearizable. It
// works on followers (the leader confirms the read index). It fails with
// ErrNoLeader, ErrBusy (ErrForwardDropped among them), ErrLeaderChanged,
// ErrForwardTimeout, ErrStopped or ctx's error. With raft.Config.ReadLease
// the leader skips the confirmation round while its lease holds (see its
// clock assumption).
func (n *Node) LinearizableRead(ctx context.Context) error {
	w := &readWaiter{ctx: ctx, id: n.incarnation<<32 | n.nextReq.Add(1)&0xFFFFFFFF, done: make(chan error, 1)}
	select {
	case <-n.done:
		return ErrStopped
	default:
	}
	select {
	case n.readc <- w:
	default:
		return ErrBusy
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		select {
		case err := <-w.done:
			return err
		default:
			return ErrStopped
		}
	}
}

// startRead hands a read to the core (node goroutine).
func (n *Node) startRead(w *readWaiter) {
	if err := w.ctx.Err(); err != nil {
		w.done <- err
		return
	}
	if len(n.reads) >= n.cfg.MaxPendingProposals {
		w.done <- ErrBusy
		return
	}
	if err := n.r.ReadIndex(w.id); err != nil {
		w.done <- err
		return
	}
	w.term, w.lead = n.r.Term(), n.r.SoftState().Lead
	if w.lead != n.id {
		w.expireTick = n.ticks + n.forwardTicks // the forwarded request may be lost
	}
	n.reads[w.id] = w
}

// readStates records the read indexes the core confirmed and answers the
// reads whose index is applied.
func (n *Node) readStates(rss []raft.ReadState) {
	for _, rs := range rss {
		w := n.reads[rs.ID]
		if w == nil {
			continue
		}
		if rs.Err != nil {
			n.resolveRead(w, rs.Err)
			continue
		}
		w.index = rs.Index
	}
	n.serveReads()
}

// serveReads answers every confirmed read whose index is applied.
func (n *Node) serveReads() {
	for _, w := range n.reads {
		if w.index != 0 && n.applied >= w.index {
			n.resolveRead(w, nil)
		}
	}
}

func (n *Node) resolveRead(w *readWaiter, err error) {
	delete(n.reads, w.id)
	w.done <- err
}

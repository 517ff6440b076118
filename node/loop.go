package node

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/wire"
)

// run is the node goroutine: it alone touches the core, the storage and
// the state machine, so none of them needs a lock.
func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	inbox := n.cfg.Transport.Inbox()
	for {
		select {
		case <-n.stopc:
			n.shutdown(nil)
			return
		case <-ctx.Done():
			n.shutdown(nil)
			return
		case <-ticker.C:
			n.tick()
		case f := <-inbox:
			n.receive(f)
		case p := <-n.propc:
			n.propose(p)
		case w := <-n.readc:
			n.startRead(w)
		case c := <-n.statusc:
			c <- n.status()
		case c := <-n.ctrlc:
			n.startControl(c)
		}
		n.drain(inbox)
		if err := n.handleReady(); err != nil {
			n.log.Error("node stopping: storage failed", "err", err)
			n.shutdown(err)
			return
		}
	}
}

// drain takes up to maxBatch more queued inputs without blocking, so that
// one Ready (and one sync) covers them all: group commit.
func (n *Node) drain(inbox <-chan []byte) {
	for range maxBatch {
		select {
		case f := <-inbox:
			n.receive(f)
		case p := <-n.propc:
			n.propose(p)
		case w := <-n.readc:
			n.startRead(w)
		default:
			return
		}
	}
}

func (n *Node) tick() {
	n.r.Tick()
	n.ticks++
	if n.ticks%sweepTicks == 0 {
		n.sweep()
	}
	if len(n.transfers)+len(n.confWaiters) > 0 {
		n.checkControls()
	}
	if n.ticks%dropReportTicks == 0 {
		n.reportDrops()
	}
}

// receive decodes one frame and steps it into the core. Bad frames are
// counted and dropped: peer input never stops the node.
func (n *Node) receive(f []byte) {
	if err := wire.DecodeMessage(f, n.cfg.ClusterID, &n.msg, n.cfg.WireLimits); err != nil {
		n.framesBad++
		n.log.Debug("frame dropped", "err", err, "bytes", len(f))
		return
	}
	if err := n.r.Step(n.msg); err != nil {
		n.stepErrors++
		n.log.Debug("message refused", "err", err, "type", n.msg.Type.String(), "from", uint64(n.msg.From))
	}
}

// handleReady runs the core's contract: persist, send, apply, Advance.
func (n *Node) handleReady() error {
	for n.r.HasReady() {
		rd := n.r.Ready()
		if rd.Err != nil {
			return rd.Err // the core cannot read its storage back
		}
		if err := n.installSnapshot(rd); err != nil {
			return err
		}
		if err := n.persist(rd); err != nil {
			return err
		}
		n.send(rd.Messages)
		n.apply(rd.Committed)
		if err := n.maybeSnapshot(); err != nil {
			return err
		}
		n.rejected(rd.Rejected)
		n.readStates(rd.ReadStates)
		n.observe(rd)
		n.r.Advance(rd)
	}
	return nil
}

func (n *Node) persist(rd raft.Ready) error {
	// Entries first: a hard state whose commit index names entries that a
	// crash kept from the disk would make the node refuse to restart.
	st := n.cfg.Storage
	if err := st.Append(rd.Entries); err != nil {
		return err
	}
	if !rd.HardState.IsEmpty() {
		if err := st.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	if rd.MustSync {
		return st.Sync() // one sync per Ready, however many entries
	}
	return nil
}

func (n *Node) send(msgs []raft.Message) {
	for i := range msgs {
		buf, err := n.cfg.WireLimits.AppendMessage(n.sendBuf[:0], n.cfg.ClusterID, &msgs[i])
		if err != nil {
			n.log.Error("cannot encode message", "err", err, "type", msgs[i].Type.String())
			continue
		}
		n.sendBuf = buf
		if err := n.cfg.Transport.Send(msgs[i].To, buf); errors.Is(err, transport.ErrQueueFull) {
			n.r.ReportUnreachable(msgs[i].To)
			n.forwardDropped(&msgs[i])
		}
	}
}

// forwardDropped answers at once the waiter of a forwarded proposal or read
// whose message the transport refused: it certainly never reached the
// leader, and waiting for ForwardTimeout (seconds) would stall the caller
// for a loss that is known now.
func (n *Node) forwardDropped(m *raft.Message) {
	switch m.Type {
	case raft.MsgProp:
		if req, ok := n.bySeq[uint64(m.Index)]; ok {
			if p := n.waiters[req]; p != nil {
				n.resolve(p, nil, ErrForwardDropped)
			}
		}
	case raft.MsgReadIndex:
		if w := n.reads[uint64(m.Index)]; w != nil && w.index == 0 {
			n.resolveRead(w, ErrForwardDropped)
		}
	}
}

// apply hands committed commands to the state machine in log order and
// answers this node's waiters.
func (n *Node) apply(ents []raft.Entry) {
	for i := range ents {
		e := &ents[i]
		n.hashEntry(e)
		n.applied, n.appliedTerm = e.Index, e.Term
		if e.Type == raft.EntryConfChange {
			n.appliedConf(e)
		}
		if e.Type != raft.EntryNormal {
			continue
		}
		origin, req, cmd, err := parseEnvelope(e.Data)
		if err != nil {
			// Same bytes on every replica, so every replica skips it.
			n.log.Error("skipping malformed entry", "index", uint64(e.Index))
			continue
		}
		res := n.cfg.StateMachine.Apply(e.Index, cmd)
		if origin == n.id {
			if p := n.waiters[req]; p != nil {
				n.resolve(p, res, nil)
			}
		}
	}
	if k := len(ents); k > 0 {
		n.log.Debug("applied", "from", uint64(ents[0].Index), "to", uint64(ents[k-1].Index))
		n.serveReads()
	}
}

// hashStart seeds appliedHash.
const hashStart = 14695981039346656037

// crcTable is CRC-64/ECMA's table, built once (table-driven: several
// bytes per step, unlike a byte-at-a-time hash on every replica).
var crcTable = crc64.MakeTable(crc64.ECMA)

// hashEntry folds an applied entry into appliedHash, a fingerprint of the
// applied sequence that is equal on two nodes iff (with overwhelming
// probability) they applied the same entries in the same order.
func (n *Node) hashEntry(e *raft.Entry) {
	var hdr [2 * binary.MaxVarintLen64]byte
	b := binary.AppendUvarint(hdr[:0], uint64(e.Index))
	b = binary.AppendUvarint(b, uint64(e.Term))
	h := crc64.Update(n.appliedHash, crcTable, b)
	n.appliedHash = crc64.Update(h, crcTable, e.Data)
}

func (n *Node) rejected(rs []raft.ProposalRejection) {
	for _, rj := range rs {
		if p := n.waiters[n.bySeq[rj.Seq]]; p != nil && p.seq == rj.Seq {
			n.resolve(p, nil, rj.Err)
		}
	}
}

// observe logs role and commit changes, and fails waiters stranded by a
// change of term or leader: their command may or may not be applied later.
func (n *Node) observe(rd raft.Ready) {
	stale := false
	if hs := rd.HardState; !hs.IsEmpty() {
		if hs.Term > n.term {
			n.term = hs.Term
			stale = true
		}
		if hs.Commit > n.commit {
			n.log.Debug("commit advanced", "commit", uint64(hs.Commit))
			n.commit = hs.Commit
		}
	}
	if rd.SoftState != n.soft {
		stale = stale || rd.SoftState.Lead != n.soft.Lead
		n.soft = rd.SoftState
		n.logRole()
	}
	if stale {
		n.failStale()
	}
	if len(n.transfers)+len(n.confWaiters) > 0 {
		n.checkControls()
	}
}

func (n *Node) logRole() {
	switch n.soft.Role {
	case raft.RolePreCandidate:
		n.log.Info("election timeout: pre-vote started", "for_term", uint64(n.term)+1)
	case raft.RoleCandidate:
		n.log.Info("election started", "term", uint64(n.term))
	case raft.RoleLeader:
		n.log.Info("became leader", "term", uint64(n.term))
	case raft.RoleFollower:
		n.log.Info("became follower", "term", uint64(n.term), "leader", uint64(n.soft.Lead))
	}
}

// failStale answers the waiters proposed under another term or leader:
// a leader that stepped down, or a leader a follower forwarded to that is
// gone, may never report their outcome.
func (n *Node) failStale() {
	for _, p := range n.waiters {
		if p.term != n.term || p.lead != n.soft.Lead {
			n.resolve(p, nil, ErrLeaderChanged)
		}
	}
	for _, w := range n.reads {
		// A confirmed read stays valid (its index was confirmed while the
		// leader led); an unconfirmed one is lost with the leadership.
		if w.index == 0 && (w.term != n.term || w.lead != n.soft.Lead) {
			n.resolveRead(w, ErrLeaderChanged)
		}
	}
}

func (n *Node) resolve(p *proposal, val []byte, err error) {
	delete(n.waiters, p.req)
	if p.seq != 0 {
		delete(n.bySeq, p.seq)
	}
	p.reply(val, err)
}

// propose takes one client command into the core.
func (n *Node) propose(p *proposal) {
	if err := p.ctx.Err(); err != nil {
		p.reply(nil, err)
		return
	}
	if len(n.waiters) >= n.cfg.MaxPendingProposals {
		p.reply(nil, ErrBusy)
		return
	}
	prop, err := n.r.Propose(p.data)
	if err != nil {
		p.reply(nil, err)
		return
	}
	// Pin the term and leader the command went to, as the core sees them
	// now (n.term and n.soft lag until the next Ready).
	p.term, p.lead, p.seq = n.r.Term(), n.r.SoftState().Lead, prop.Seq
	if p.seq != 0 {
		// Forwarded: if the MsgProp or its refusal is lost, nothing else
		// would ever answer this waiter.
		p.expireTick = n.ticks + n.forwardTicks
	}
	n.waiters[p.req] = p
	if p.seq != 0 {
		n.bySeq[p.seq] = p.req
	}
}

// sweep answers waiters whose caller has gone (context ended) and
// forwarded proposals that outlived ForwardTimeout.
func (n *Node) sweep() {
	for _, p := range n.waiters {
		switch {
		case p.ctx.Err() != nil:
			n.resolve(p, nil, p.ctx.Err())
		case p.expireTick != 0 && n.ticks >= p.expireTick:
			n.resolve(p, nil, ErrForwardTimeout)
		}
	}
	for _, w := range n.reads {
		switch {
		case w.ctx.Err() != nil:
			n.resolveRead(w, w.ctx.Err())
		case w.index == 0 && w.expireTick != 0 && n.ticks >= w.expireTick:
			n.resolveRead(w, ErrForwardTimeout)
		}
	}
}

func (n *Node) reportDrops() {
	st := n.cfg.Transport.Stats()
	total := st.DroppedFull + st.DroppedFault + n.framesBad
	if total > n.dropsLogged {
		n.log.Info("frames dropped", "since_last", total-n.dropsLogged, "inbox_full", st.DroppedFull,
			"faults", st.DroppedFault, "malformed", n.framesBad)
		n.dropsLogged = total
	}
}

// shutdown answers everyone and releases storage and transport.
func (n *Node) shutdown(cause error) {
	n.err = cause
	n.final = n.status()
	n.final.Stopped = true
	for _, p := range n.waiters {
		n.resolve(p, nil, ErrStopped)
	}
	for _, w := range n.reads {
		n.resolveRead(w, ErrStopped)
	}
	n.failControls()
	for {
		select {
		case p := <-n.propc:
			p.reply(nil, ErrStopped)
			continue
		case w := <-n.readc:
			w.done <- ErrStopped
			continue
		case c := <-n.ctrlc:
			c.done <- ctrlResult{err: ErrStopped}
			continue
		default:
		}
		break
	}
	_ = n.cfg.Transport.Close()
	_ = n.cfg.Storage.Close()
	n.log.Info("node stopped", "term", uint64(n.term), "applied", uint64(n.final.Applied))
}

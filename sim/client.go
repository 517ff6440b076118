package sim

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// client is one client session. It keeps one operation outstanding,
// submits it to a random node, and resubmits the same encoded command on a
// timeout, an error or a change of leader until it gets an answer (kv
// sessions make the retries safe).
type client struct {
	idx        int
	sess       kv.Session
	registered bool
	// busy: an operation (or the registration) is outstanding; op is its
	// history index (-1 for the registration) and cmd its encoding.
	busy    bool
	op      int
	cmd     []byte
	attempt int  // submissions of the current operation
	viaRead bool // the current operation is a get through ReadIndex
	// waiting: the current attempt sits at node index node as request req
	// until deadline.
	waiting  bool
	node     uint8
	req      uint64
	deadline int64
	// nextAt: when to submit (or resubmit, or start the next operation).
	nextAt int64
	count  int // operations started, for unique values
	// last value this client saw for each key ("" and false: unknown).
	seen    []string
	hasSeen []bool
}

// opRecord is one operation of the history checked for linearizability.
// call and ret are ticks of the history clock, which orders every event of
// the run (virtual time alone has ties).
type opRecord struct {
	client    int
	in        kvInput
	out       kvOutput
	call, ret int64
	done      bool
}

// clientStep runs client c's timers.
func (w *world) clientStep(c *client) {
	if c.waiting {
		if w.now < c.deadline {
			return
		}
		n := w.nodes[c.node]
		w.ev.add(event{t: w.now, kind: evTimeout, a: uint8(c.idx), b: uint8(n.id), x: c.req})
		if n.up {
			n.forget(c.req)
		}
		c.waiting = false
		c.nextAt = w.now
	}
	if !c.busy {
		if w.healed || w.now < c.nextAt {
			return
		}
		w.newOp(c)
	}
	if w.now >= c.nextAt {
		w.submit(c)
	}
}

// newOp starts client c's next operation: its registration first, then a
// random put, get, cas or delete on one of a few keys.
func (w *world) newOp(c *client) {
	c.busy, c.attempt, c.viaRead = true, 0, false
	if !c.registered {
		reg := kv.Register()
		c.cmd, c.op = reg.AppendBinary(nil), -1
		w.ev.add(event{t: w.now, kind: evInvoke, a: uint8(c.idx), x: uint64(kv.OpRegister)})
		return
	}
	c.count++
	k := w.rng.IntN(w.cfg.Keys)
	key := w.keys[k]
	val := "c" + strconv.Itoa(c.idx) + "." + strconv.Itoa(c.count)
	if pad := w.rep.ValueBytes - len(val); pad > 0 {
		val += w.padding[:pad]
	}
	var cmd kv.Command
	in := kvInput{Key: key}
	switch r := w.rng.IntN(100); {
	case r < 35:
		in.Op, in.Value = kv.OpPut, val
		cmd = c.sess.Put([]byte(key), []byte(val))
	case r < 70:
		in.Op = kv.OpGet
		if !w.cfg.NoReadIndex && w.rng.IntN(2) == 0 {
			c.viaRead = true // ReadIndex: no command, no session sequence
			break
		}
		cmd = c.sess.Get([]byte(key))
	case r < 95:
		in.Op, in.Value = kv.OpCAS, val
		if c.hasSeen[k] && w.rng.IntN(4) != 0 {
			in.Expected = c.seen[k]
		} else {
			in.Expected = "c" + strconv.Itoa(w.rng.IntN(len(w.clients))) + "." + strconv.Itoa(1+w.rng.IntN(c.count))
		}
		cmd = c.sess.CAS([]byte(key), []byte(in.Expected), []byte(val))
	default:
		in.Op = kv.OpDelete
		cmd = c.sess.Delete([]byte(key))
	}
	c.cmd = cmd.AppendBinary(nil)
	c.op = len(w.ops)
	w.ops = append(w.ops, opRecord{client: c.idx, in: in, call: w.tick()})
	w.ev.add(event{t: w.now, kind: evInvoke, a: uint8(c.idx), x: uint64(in.Op), y: uint64(c.op)})
}

// submit sends client c's command to a random node.
func (w *world) submit(c *client) {
	n := w.nodes[w.rng.IntN(len(w.nodes))]
	w.nextReq++
	req := w.nextReq
	if c.attempt++; c.attempt > 1 {
		w.rep.Retries++
	}
	c.req, c.node = req, n.idx
	if !n.up {
		w.ev.add(event{t: w.now, kind: evPropErr, a: uint8(c.idx), b: uint8(n.id), x: 1})
		c.nextAt = w.now + 1 + w.rng.Int64N(5)
		return
	}
	if c.viaRead {
		w.ev.add(event{t: w.now, kind: evRead, a: uint8(c.idx), b: uint8(n.id), x: req, y: uint64(c.attempt)})
		c.waiting, c.deadline = true, w.now+int64(w.cfg.ClientTimeout)
		if err := w.startRead(n, c.idx, req, w.ops[c.op].in.Key); err != nil {
			c.waiting = false
			w.ev.add(event{t: w.now, kind: evPropErr, a: uint8(c.idx), b: uint8(n.id), x: errCode(err)})
			c.nextAt = w.now + 1 + w.rng.Int64N(10)
		}
		return
	}
	w.ev.add(event{t: w.now, kind: evSubmit, a: uint8(c.idx), b: uint8(n.id), x: req, y: uint64(c.attempt)})
	if w.cfg.staleReads && c.op >= 0 && w.ops[c.op].in.Op == kv.OpGet {
		// The broken read path of checker tests: a local read.
		r := kv.Result{Status: kv.StatusNotFound, ClientID: c.sess.ClientID}
		if v, ok := n.store.Get([]byte(w.ops[c.op].in.Key)); ok {
			r.Status, r.Value = kv.StatusOK, v
		}
		c.waiting, c.deadline = true, w.now+int64(w.cfg.ClientTimeout)
		w.reply(n, waiter{req: req, client: c.idx}, r.AppendBinary(nil), nil)
		return
	}
	// Waiting before proposing: a one-node cluster answers at once.
	c.waiting, c.deadline = true, w.now+int64(w.cfg.ClientTimeout)
	if err := w.propose(n, c.idx, req, c.cmd); err != nil {
		c.waiting = false
		w.ev.add(event{t: w.now, kind: evPropErr, a: uint8(c.idx), b: uint8(n.id), x: errCode(err)})
		c.nextAt = w.now + 1 + w.rng.Int64N(10)
	}
}

func errCode(err error) uint64 {
	switch {
	case errors.Is(err, raft.ErrNoLeader):
		return 2
	case errors.Is(err, raft.ErrBusy):
		return 3
	case errors.Is(err, raft.ErrTooLarge):
		return 4
	case errors.Is(err, raft.ErrNotLeader):
		return 5
	case errors.Is(err, errLeaderChanged):
		return 6
	}
	return 7
}

// reply delivers the outcome of request wt.req, proposed at node n, to
// its client.
func (w *world) reply(n *simNode, wt waiter, res []byte, err error) {
	c := w.clients[wt.client]
	if !c.waiting || c.req != wt.req {
		return // an abandoned attempt
	}
	if err != nil {
		c.waiting = false
		if !errors.Is(err, errLeaderChanged) {
			w.ev.add(event{t: w.now, kind: evPropErr, a: uint8(c.idx), b: uint8(n.id), x: errCode(err)})
		}
		c.nextAt = w.now + 1 + w.rng.Int64N(10)
		return
	}
	if !w.healed && w.rng.Float64() < w.cfg.Faults.ResponseLoss {
		// The answer is lost: the client times out and resubmits.
		w.faults[FaultResponseLoss]++
		w.ev.add(event{t: w.now, kind: evRespLoss, a: uint8(c.idx), b: uint8(n.id), x: wt.req})
		return
	}
	var r kv.Result
	if derr := kv.DecodeResult(res, &r); derr != nil {
		w.fail("session", fmt.Sprintf("client %d: undecodable result from node %d: %v", c.idx, n.id, derr))
		return
	}
	w.ev.add(event{t: w.now, kind: evReply, a: uint8(c.idx), b: uint8(n.id), x: uint64(r.Status), y: uint64(r.Index), z: wt.req})
	c.waiting, c.busy = false, false
	c.nextAt = w.now + w.rng.Int64N(int64(w.cfg.ThinkMax)+1)
	if c.op < 0 {
		if r.Status != kv.StatusOK || r.ClientID == 0 {
			w.fail("session", fmt.Sprintf("client %d: registration answered %v", c.idx, r.Status))
			return
		}
		c.sess = kv.Session{ClientID: r.ClientID}
		c.registered = true
		w.rep.Registrations++
		return
	}
	o := &w.ops[c.op]
	switch r.Status {
	case kv.StatusOK, kv.StatusNotFound, kv.StatusCASMismatch:
	default:
		// Sessions are never evicted here (few clients) and a client has
		// one command outstanding, so any other status means a command was
		// lost, applied twice or answered out of order.
		w.fail("session", fmt.Sprintf("client %d (session %d) op #%d %v seq %d answered %v at index %d",
			c.idx, c.sess.ClientID, c.op, o.in.Op, c.sess.Seq, r.Status, r.Index))
		return
	}
	o.out = kvOutput{Status: r.Status, Value: string(r.Value)}
	o.ret, o.done = w.tick(), true
	k := w.keyIndex(o.in.Key)
	switch {
	case r.Status == kv.StatusOK && o.in.Op == kv.OpGet, r.Status == kv.StatusCASMismatch:
		c.seen[k], c.hasSeen[k] = string(r.Value), true
	case r.Status == kv.StatusOK && (o.in.Op == kv.OpPut || o.in.Op == kv.OpCAS):
		c.seen[k], c.hasSeen[k] = o.in.Value, true
	}
}

func (w *world) keyIndex(key string) int {
	for i, k := range w.keys {
		if k == key {
			return i
		}
	}
	return 0
}

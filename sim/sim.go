package sim

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// world is one simulated run. Everything happens in the goroutine that
// calls Run; nothing reads a clock, and every random choice comes from rng
// in an order fixed by the seed (nodes and clients are always visited in
// ID order, and no map is iterated).
type world struct {
	cfg  Config // with defaults
	orig Config // as given (for the reproduction line)
	rng  *rand.Rand
	// batchRng draws which Readys wait for the end of the time unit
	// (Config.NoReadyBatching), apart from rng so that the choice does not
	// shift the fault schedule.
	batchRng *rand.Rand

	now    int64 // virtual time: one unit per step
	step   int
	healed bool // the liveness phase: faults are off

	// bootIDs are the initial voters (raft.Config.Peers of the nodes
	// that bootstrap); nodes are all the nodes of the run, initial voters
	// and spares.
	bootIDs []raft.NodeID
	nodes   []*simNode // nodes[i] has ID i+1
	net     network
	clients []*client
	keys    []string
	padding string
	ops     []opRecord
	clock   int64 // history clock: strictly increasing across the run
	nextReq uint64
	// snapEvery, snapMargin, snapPad: the run's snapshot settings
	// (snapEvery 0: no snapshots).
	snapEvery, snapMargin, snapPad int

	// transfer is the last leadership transfer requested (churn).
	transfer pendingTransfer

	ev     eventLog
	chk    checker
	rep    Report
	faults FaultCounts
	err    *Violation

	msg   raft.Message // decode buffer
	reenc []byte       // re-encode buffer (canonical encoding check)
}

// Run simulates one cluster as cfg describes and checks it. It returns a
// *Violation error if a safety property failed at any step, if the client
// history is not linearizable, or if the cluster did not serve every
// pending operation and converge once the faults healed; any other error
// means cfg is invalid. The Report describes the run (up to the violation,
// if any). Run is deterministic: the same cfg gives the same Report and
// the same events.
func Run(cfg Config) (Report, error) {
	orig := cfg
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	w := newWorld(cfg)
	w.orig = orig
	w.run()
	for _, n := range w.nodes {
		w.addCoreStats(n)
	}
	w.rep.Faults = w.faults
	w.rep.Events, w.rep.EventHash = w.ev.n, w.ev.hash
	if w.err != nil {
		return w.rep, w.err
	}
	return w.rep, nil
}

func newWorld(cfg Config) *world {
	w := &world{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0xE3B0C44298FC1C14)), ev: newEventLog(),
		batchRng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5BD1E9955BD1E995))}
	w.rep.Seed, w.rep.Nodes, w.rep.Spares = cfg.Seed, cfg.Nodes, cfg.Spares
	w.chk.written = make(map[indexTerm]prefixSeen)
	for i := range cfg.Nodes + cfg.Spares {
		n := &simNode{id: raft.NodeID(i + 1), idx: uint8(i), st: newSimStorage(),
			period: 1 + w.rng.Int64N(int64(cfg.Faults.SkewMax))}
		n.st.lies = cfg.lyingDisk
		w.nodes = append(w.nodes, n)
	}
	// Which of the nodes bootstrap the cluster (the others are spares
	// that join when added) is drawn per seed.
	for k, i := range w.rng.Perm(len(w.nodes)) {
		if k < cfg.Nodes {
			w.nodes[i].bootstrap = true
		}
	}
	for _, n := range w.nodes {
		if n.bootstrap {
			w.bootIDs = append(w.bootIDs, n.id)
		}
	}
	w.chk.boot = raft.ConfState{Voters: slices.Clone(w.bootIDs)}
	w.chk.fake = cfg.fakeConf
	for _, n := range w.nodes {
		n.everMember = n.bootstrap
	}
	w.rep.Churn.MinVoters, w.rep.Churn.MaxVoters, w.rep.Churn.MaxMembers = cfg.Nodes, cfg.Nodes, cfg.Nodes
	// The snapshot settings are always drawn, so that setting them does
	// not change the rest of the run.
	every, margin := MinSnapshotEntries+w.rng.IntN(MaxSnapshotEntries-MinSnapshotEntries+1), w.rng.IntN(MaxSnapshotMargin+1)
	pad := [...]int{0, 1000, 4000, 20000}[w.rng.IntN(4)]
	switch {
	case cfg.SnapshotEntries < 0:
		every = 0
	case cfg.SnapshotEntries > 0:
		every = cfg.SnapshotEntries
	}
	switch {
	case cfg.SnapshotMargin < 0:
		margin = 0
	case cfg.SnapshotMargin > 0:
		margin = cfg.SnapshotMargin
	}
	switch {
	case cfg.SnapshotPadBytes < 0:
		pad = 0
	case cfg.SnapshotPadBytes > 0:
		pad = cfg.SnapshotPadBytes
	}
	w.snapEvery, w.snapMargin, w.snapPad = every, margin, pad
	w.rep.Snap.Every, w.rep.Snap.Margin, w.rep.Snap.PadBytes = every, margin, pad
	for _, n := range w.nodes {
		w.start(n)
	}
	vb := cfg.ValueBytes
	if vb == 0 {
		vb = [...]int{0, 32, 100, 250}[w.rng.IntN(4)]
	}
	w.rep.ValueBytes = max(vb, 0)
	w.padding = strings.Repeat("-", w.rep.ValueBytes)
	for k := range cfg.Keys {
		w.keys = append(w.keys, "k"+strconv.Itoa(k))
	}
	for i := range cfg.Clients {
		w.clients = append(w.clients, &client{idx: i, nextAt: w.rng.Int64N(int64(cfg.ThinkMax) + 1),
			seen: make([]string, cfg.Keys), hasSeen: make([]bool, cfg.Keys)})
	}
	return w
}

// tick advances the history clock.
func (w *world) tick() int64 {
	w.clock++
	return w.clock
}

func (w *world) repro() string {
	c, d := w.orig, w.cfg
	s := fmt.Sprintf("go run ./cmd/embraft sim --seed %d --nodes %d --steps %d --clients %d", d.Seed, d.Nodes, d.Steps, d.Clients)
	if c.NoFaults {
		s += " --no-faults"
	}
	if d.Keys != DefaultKeys {
		s += fmt.Sprintf(" --keys %d", d.Keys)
	}
	if c.ValueBytes != 0 {
		s += fmt.Sprintf(" --value-bytes %d", c.ValueBytes)
	}
	if c.DisablePreVote {
		s += " --no-prevote"
	}
	if c.DisableCheckQuorum {
		s += " --no-check-quorum"
	}
	if c.NoReadIndex {
		s += " --no-read-index"
	}
	if c.ReadLease {
		s += " --read-lease"
	}
	if c.NoReadyBatching {
		s += " --no-ready-batching"
	}
	if c.Faults.SkewMax != 0 {
		s += fmt.Sprintf(" --skew-max %d", c.Faults.SkewMax)
	}
	if d.Spares != DefaultSpares {
		s += fmt.Sprintf(" --spares %d", d.Spares)
	}
	switch {
	case c.Faults.Churn < 0:
		s += " --no-churn"
	case c.Faults.Churn > 0:
		s += fmt.Sprintf(" --churn %g", c.Faults.Churn)
	}
	if len(d.Script) > 0 {
		s += fmt.Sprintf(" --script %s --script-every %d", hex.EncodeToString(d.Script), d.ScriptEvery)
	}
	cli := Config{Seed: c.Seed, Nodes: c.Nodes, Spares: c.Spares, Steps: c.Steps, Clients: c.Clients, Keys: c.Keys, ValueBytes: c.ValueBytes,
		NoFaults: c.NoFaults, DisablePreVote: c.DisablePreVote, DisableCheckQuorum: c.DisableCheckQuorum,
		NoReadIndex: c.NoReadIndex, ReadLease: c.ReadLease, NoReadyBatching: c.NoReadyBatching, Faults: Faults{SkewMax: c.Faults.SkewMax, Churn: c.Faults.Churn},
		Script: c.Script, ScriptEvery: c.ScriptEvery}
	if !reflect.DeepEqual(cli, c) {
		s += "  (plus Config fields the CLI does not set: replay with sim.Run)"
	}
	return s
}

func (w *world) run() {
	// The faulty phase.
	for w.step = 0; w.step < w.cfg.Steps; w.step++ {
		w.now = int64(w.step)
		w.faultStep()
		w.stepOnce()
		if w.err == nil && w.step%w.cfg.CheckEvery == 0 {
			w.checkLogMatching()
		}
		if w.err != nil {
			w.rep.Steps = w.step
			return
		}
	}
	w.rep.Steps = w.cfg.Steps
	if w.checkLogMatching(); w.err != nil {
		return
	}
	// The liveness phase: heal everything, then every pending operation
	// must complete and the replicas converge within LivenessSteps.
	w.heal()
	live := ""
	for i := 0; ; i++ {
		if i == w.cfg.LivenessSteps {
			live = w.livenessFailure()
			break
		}
		w.step = w.cfg.Steps + i
		w.now = int64(w.step)
		w.stepOnce()
		if w.err == nil && i%w.cfg.CheckEvery == 0 {
			w.checkLogMatching()
		}
		if w.err != nil {
			return
		}
		if w.converged() {
			w.rep.LivenessSteps = i + 1
			break
		}
	}
	if w.checkLogMatching(); w.err != nil {
		return
	}
	if w.checkConvergedState(); w.err != nil {
		return
	}
	// Linearizability of the whole history (answers during the liveness
	// phase included).
	for _, o := range w.ops {
		if o.done {
			w.rep.ClientOps++
		} else {
			w.rep.Pending++
		}
	}
	switch checkLinearizable(w.ops, w.cfg.LinearizabilityTimeout) {
	case porcupine.Ok:
		w.rep.Linearizable = true
	case porcupine.Unknown:
		w.rep.LinearizabilityUnknown = true
	default:
		w.fail("linearizability", fmt.Sprintf("porcupine rejects the history of %d client operations (%d pending); %s",
			len(w.ops), w.rep.Pending, describeHistoryFailure(w.ops)))
		return
	}
	if live != "" {
		w.fail("liveness", live)
	}
}

// stepOnce runs one unit of virtual time: deliver the frames due, tick the
// nodes due, run the clients' timers.
func (w *world) stepOnce() {
	for len(w.net.q) > 0 && w.net.q[0].at <= w.now && w.err == nil {
		w.deliver(w.net.q.pop())
	}
	for _, n := range w.nodes {
		if n.readyDue && w.err == nil {
			n.readyDue = false
			w.handleReady(n)
		}
	}
	for _, n := range w.nodes {
		if w.err != nil {
			return
		}
		if n.up && w.now >= n.nextTick {
			n.nextTick = w.now + n.period
			n.r.Tick()
			w.handleReady(n)
		}
	}
	for _, c := range w.clients {
		if w.err != nil {
			return
		}
		w.clientStep(c)
	}
}

// send encodes m, a message of node n, and puts it on the network with
// the message faults.
func (w *world) send(n *simNode, m *raft.Message) {
	w.rep.Messages++
	if m.To < 1 || int(m.To) > len(w.nodes) || m.From != n.id {
		w.fail("peer input", fmt.Sprintf("node %d sends %v from %d to %d", n.id, m.Type, m.From, m.To))
		return
	}
	frame, err := w.net.encode(m)
	if err != nil {
		w.fail("codec", fmt.Sprintf("node %d's %v to %d (%d entries) cannot be encoded: %v", n.id, m.Type, m.To, len(m.Entries), err))
		return
	}
	p := packet{from: n.idx, to: uint8(m.To - 1), mt: m.Type, frame: frame}
	if m.Type == raft.MsgSnap {
		n.lastSnapSendAt = w.now
	}
	f := &w.cfg.Faults
	if !w.healed && f.LocalDrop > 0 && w.rng.Float64() < f.LocalDrop {
		// The sender's queue is full: the frame never leaves, and the node
		// tells its core (node/loop.go does this on ErrQueueFull).
		w.faults[FaultLocalDrop]++
		w.ev.add(event{t: w.now, kind: evLocalDrop, a: uint8(n.id), b: uint8(m.To), mt: m.Type})
		n.r.ReportUnreachable(m.To)
		return
	}
	if !w.healed && w.rng.Float64() < f.Loss {
		w.faults[FaultLoss]++
		w.ev.add(event{t: w.now, kind: evLoss, a: uint8(n.id), b: uint8(m.To), mt: m.Type})
		return
	}
	if !w.healed && w.rng.Float64() < f.Corrupt {
		bit := w.rng.IntN(8 * len(frame))
		c := append([]byte(nil), frame...)
		c[bit/8] ^= 1 << (bit % 8)
		p.frame, p.corrupted = c, true
		w.faults[FaultCorrupt]++
		w.ev.add(event{t: w.now, kind: evCorrupt, a: uint8(n.id), b: uint8(m.To), mt: m.Type, x: uint64(bit)})
	}
	p.at = w.now + w.delay()
	w.net.seq++
	p.seq = w.net.seq
	w.net.q.push(p)
	w.ev.add(event{t: w.now, kind: evSend, a: uint8(n.id), b: uint8(m.To), mt: m.Type, x: uint64(len(frame)), y: uint64(p.at - w.now)})
	if !w.healed && w.rng.Float64() < f.Duplicate {
		d := w.delay()
		p.at = w.now + d
		w.net.seq++
		p.seq = w.net.seq
		w.net.q.push(p)
		w.faults[FaultDuplicate]++
		w.ev.add(event{t: w.now, kind: evDup, a: uint8(n.id), b: uint8(m.To), mt: m.Type, y: uint64(d)})
	}
}

// delay draws a message's transit time: 1..MaxDelay units, or with
// probability LongDelay (a delay fault) up to LongDelayMax.
func (w *world) delay() int64 {
	f := &w.cfg.Faults
	if !w.healed && f.LongDelay > 0 && w.rng.Float64() < f.LongDelay {
		w.faults[FaultDelay]++
		return 1 + w.rng.Int64N(int64(f.LongDelayMax))
	}
	return 1 + w.rng.Int64N(int64(f.MaxDelay))
}

// deliver hands frame p to its recipient, unless a partition or a crash
// is in the way. Decoding exercises the codec: a frame a core sent must
// decode and re-encode to the same bytes; a corrupted one must be refused.
func (w *world) deliver(p packet) {
	to := w.nodes[p.to]
	if w.net.isBlocked(p.from, p.to) || !to.up {
		w.rep.Undeliverable++
		why := uint64(1)
		if !to.up {
			why = 2
		}
		w.ev.add(event{t: w.now, kind: evUndeliver, a: p.from + 1, b: p.to + 1, mt: p.mt, x: why})
		return
	}
	if p.seq < w.net.lastSeq[p.from][p.to] {
		w.faults[FaultReorder]++
	} else {
		w.net.lastSeq[p.from][p.to] = p.seq
	}
	err := wire.DecodeMessage(p.frame, clusterID, &w.msg, wire.DefaultLimits)
	if p.corrupted {
		if err == nil {
			w.fail("codec", fmt.Sprintf("a %v frame from %d to %d with one bit flipped decoded without error", p.mt, p.from+1, p.to+1))
		}
		w.ev.add(event{t: w.now, kind: evReject, a: p.from + 1, b: p.to + 1, mt: p.mt})
		return
	}
	if err != nil {
		w.fail("codec", fmt.Sprintf("a %v frame from %d to %d does not decode: %v", p.mt, p.from+1, p.to+1, err))
		return
	}
	var rerr error
	w.reenc, rerr = wire.AppendMessage(w.reenc[:0], clusterID, &w.msg)
	if rerr != nil || !bytes.Equal(w.reenc, p.frame) {
		w.fail("codec", fmt.Sprintf("a decoded %v frame from %d does not re-encode to the same bytes (%v)", p.mt, p.from+1, rerr))
		return
	}
	w.rep.Delivered++
	m := &w.msg
	if m.Type == raft.MsgSnap && !w.healed && w.cfg.corruptSnapChunks > 0 && w.rng.Float64() < w.cfg.corruptSnapChunks {
		// Damage past the frame check: only the snapshot's CRC can tell.
		// The chunk aliases the frame, which a duplicate shares: copy it.
		d := append([]byte(nil), m.Entries[0].Data...)
		bit := w.rng.IntN(8 * len(d))
		d[bit/8] ^= 1 << (bit % 8)
		m.Entries[0].Data = d
		w.rep.Snap.Corrupted++
		w.ev.add(event{t: w.now, kind: evSnapCorrupt, a: p.from + 1, b: p.to + 1, x: uint64(m.Commit), y: uint64(bit)})
	}
	w.ev.add(event{t: w.now, kind: evDeliver, a: p.from + 1, b: p.to + 1, mt: m.Type, x: uint64(m.Term), y: uint64(m.Index), z: uint64(m.Commit)})
	termBefore, roleBefore := to.r.Term(), to.r.SoftState().Role
	if err := to.r.Step(w.msg); err != nil {
		// A core refuses the responses of a node outside its configuration
		// (a removed node, or one it does not know yet; it takes requests
		// from anyone): that is the only refusal a correct core's message
		// may meet.
		if errors.Is(err, raft.ErrUnknownPeer) && m.Type.IsResponse() && !to.r.ConfState().IsMember(m.From) {
			w.rep.Churn.NonMemberRefused++
			w.ev.add(event{t: w.now, kind: evNonMember, a: p.from + 1, b: p.to + 1, mt: m.Type, x: uint64(m.Term)})
			return
		}
		w.fail("peer input", fmt.Sprintf("node %d refused a %v from %d (term %d), sent by a correct core: %v", to.id, m.Type, m.From, m.Term, err))
		return
	}
	switch {
	case m.Type == raft.MsgPreVoteResp && !m.Reject:
		to.notePreVoteGrant(m, termBefore)
	case m.Type == raft.MsgTimeoutNow && to.r.SoftState().Role == raft.RoleCandidate:
		to.transferTerm = to.r.Term()
	}
	if to.r.Term() > termBefore {
		w.termRaised(to, m, termBefore)
	}
	if w.batchReady(to, m, termBefore, roleBefore) {
		return
	}
	w.handleReady(to)
}

// batchReady decides whether node to's Ready waits for the end of the time
// unit (stepOnce), after it stepped m (Config.NoReadyBatching). Only a
// follower's appends of its current term wait: its role and term do not
// change, so the checkers that watch roles and terms through the Readys
// miss nothing, and a message that does change them hands the node every
// pending change at once, as any later Ready does.
func (w *world) batchReady(to *simNode, m *raft.Message, termBefore raft.Term, roleBefore raft.Role) bool {
	if w.cfg.NoReadyBatching || m.Type != raft.MsgApp || roleBefore != raft.RoleFollower ||
		to.r.SoftState().Role != raft.RoleFollower || to.r.Term() != termBefore {
		return false
	}
	if w.batchRng.IntN(2) != 0 {
		return false
	}
	to.readyDue = true
	w.rep.ReadiesBatched++
	return true
}

// converged reports whether the liveness phase is done: every client
// operation answered; a leader, a voter of the configuration its whole
// (fully committed) log ends in, which is not joint; and every member of
// that configuration up, holding, committing and applying the same log,
// its core in the same configuration. Nodes outside the final
// configuration (removed ones, spares never added) may lag forever.
func (w *world) converged() bool {
	for _, c := range w.clients {
		if c.busy {
			return false
		}
	}
	l := w.leader()
	if l == nil {
		return false
	}
	last := l.st.lastIndex()
	if l.commit != last || l.applied != last || int(last) > len(w.chk.canon) {
		return false
	}
	k := w.chk.confK(last)
	cs := w.chk.conf(k)
	if cs.Joint() || !cs.IsVoter(l.id) {
		return false
	}
	for _, id := range cs.Members() {
		n := w.nodes[id-1]
		if !n.up || n.st.lastIndex() != last || n.commit != last || n.applied != last || n.coreK != k {
			return false
		}
	}
	return true
}

// finalMembers is the configuration the converged cluster ends in.
func (w *world) finalMembers() []raft.NodeID {
	return w.chk.conf(w.chk.confK(w.leader().st.lastIndex())).Members()
}

// checkConvergedState compares the state machines of the final
// configuration's members once they applied the same log (skipped if the
// liveness phase failed), and the configuration they track as of it.
func (w *world) checkConvergedState() {
	if !w.converged() {
		return
	}
	members := w.finalMembers()
	w.rep.Churn.FinalVoters = len(w.chk.conf(w.chk.confK(w.leader().st.lastIndex())).Voters)
	w.rep.Churn.FinalMembers = len(members)
	first := w.nodes[members[0]-1]
	d := first.store.Digest()
	for _, id := range members[1:] {
		n := w.nodes[id-1]
		if n.store.Digest() != d {
			w.fail("convergence", fmt.Sprintf("nodes %d and %d applied the same %d entries but hold different kv states", first.id, n.id, n.applied))
			return
		}
	}
	for _, id := range members {
		n := w.nodes[id-1]
		if w.checkAppliedConf(n, "after the liveness phase"); w.err != nil {
			return
		}
	}
}

func (w *world) livenessFailure() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d units after every fault healed, ", w.cfg.LivenessSteps)
	pending := 0
	for _, c := range w.clients {
		if c.busy {
			pending++
		}
	}
	if pending > 0 {
		fmt.Fprintf(&b, "%d clients still wait for an answer; ", pending)
	} else {
		b.WriteString("the replicas have not converged; ")
	}
	latest := w.chk.conf(len(w.chk.confs))
	fmt.Fprintf(&b, "latest committed configuration %s; ", describeConf(latest))
	for i, n := range w.nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		tag := ""
		switch {
		case latest.IsVoter(n.id):
			tag = "voter "
		case latest.IsMember(n.id):
			tag = "learner "
		default:
			tag = "non-member "
		}
		if !n.up {
			fmt.Fprintf(&b, "%snode %d down", tag, n.id)
			continue
		}
		fmt.Fprintf(&b, "%snode %d %v term %d lead %d last %d commit %d applied %d conf %s", tag, n.id, n.soft.Role, n.term,
			n.soft.Lead, n.st.lastIndex(), n.commit, n.applied, describeConf(w.coreConf(n)))
	}
	return b.String()
}

// describeHistoryFailure names the keys whose sub-history porcupine
// rejects.
func describeHistoryFailure(ops []opRecord) string {
	parts := partitionByKey(history(ops))
	var bad []string
	for _, p := range parts {
		if !porcupine.CheckOperations(kvModel, p) {
			bad = append(bad, fmt.Sprintf("key %s (%d ops)", p[0].Input.(kvInput).Key, len(p)))
		}
	}
	return "not linearizable: " + strings.Join(bad, ", ")
}

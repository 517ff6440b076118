package sim

import "github.com/embraft/embraft/raft"

// Script actions: FuzzCluster's script bytes, one per action. The low 3
// bits choose the action; the high 5 bits its argument (a node, a rate).
const (
	ActionSkew          = 0 // node arg%N ticks every 1+(arg/N)%SkewMax units
	ActionCrash         = 1 // crash node arg%N (if up)
	ActionRestart       = 2 // restart node arg%N (if down)
	ActionSplit         = 3 // symmetric split into two random sides
	ActionOneWay        = 4 // one-way cut between two random sides
	ActionIsolateLeader = 5 // cut the current leader off
	ActionBridge        = 6 // two sides connected only through one node
	ActionHeal          = 7 // end the partition
)

// faultStep injects the faults of this step: from the script if there is
// one, otherwise at random.
func (w *world) faultStep() {
	w.churnStep()
	if w.err != nil {
		return
	}
	if len(w.cfg.Script) > 0 {
		if w.step%w.cfg.ScriptEvery == 0 {
			if i := w.step / w.cfg.ScriptEvery; i < len(w.cfg.Script) {
				w.action(w.cfg.Script[i])
			}
		}
		return
	}
	f := &w.cfg.Faults
	for _, n := range w.nodes {
		if !n.up && w.now >= n.downUntil {
			w.start(n)
		}
	}
	if w.net.partition != 0 && w.now >= w.net.healAt {
		w.healPartition()
	}
	w.snapshotCrashes()
	if f.Crash > 0 && w.rng.Float64() < f.Crash {
		var n *simNode
		if w.rng.IntN(2) == 0 {
			n = w.leader()
		}
		if n == nil {
			n = w.nodes[w.rng.IntN(len(w.nodes))]
		}
		if n.up {
			w.crashFor(n, crashRandom)
		}
	}
	if f.Partition > 0 && w.net.partition == 0 && w.rng.Float64() < f.Partition {
		kind := FaultSplit + FaultKind(w.rng.IntN(4))
		w.partition(kind)
		w.net.healAt = w.now + int64(f.PartitionMin) + w.rng.Int64N(int64(f.PartitionMax-f.PartitionMin+1))
	}
	if f.Skew > 0 && f.SkewMax > 1 && w.rng.Float64() < f.Skew {
		w.setSkew(w.nodes[w.rng.IntN(len(w.nodes))], 1+w.rng.Int64N(int64(f.SkewMax)))
	}
}

// action performs one script byte.
func (w *world) action(b byte) {
	arg := int(b >> 3)
	n := w.nodes[arg%len(w.nodes)]
	switch b & 7 {
	case ActionSkew:
		w.setSkew(n, 1+int64((arg/len(w.nodes))%w.cfg.Faults.SkewMax))
	case ActionCrash:
		if n.up {
			w.crashFor(n, crashRandom)
		}
	case ActionRestart:
		if !n.up {
			w.start(n)
		}
	case ActionSplit:
		w.partition(FaultSplit)
	case ActionOneWay:
		w.partition(FaultOneWay)
	case ActionIsolateLeader:
		w.partition(FaultIsolateLeader)
	case ActionBridge:
		w.partition(FaultBridge)
	case ActionHeal:
		if w.net.partition != 0 {
			w.healPartition()
		}
	}
}

// snapshotCrashes injects the deliberate crashes around snapshots: of the
// nodes that installed one at the previous step (CrashAfterInstall), and,
// with probability CrashInTransfer per step while a follower holds a
// partial incoming snapshot it is receiving, of that follower or (a third
// of the time) of the leader streaming it.
func (w *world) snapshotCrashes() {
	for _, n := range w.nodes {
		if n.crashNext {
			n.crashNext = false
			if n.up {
				w.faults[FaultCrashAfterInstall]++
				w.crashFor(n, crashAfterInstall)
			}
		}
	}
	f := &w.cfg.Faults
	if f.CrashInTransfer <= 0 {
		return
	}
	var recvA [MaxUniverse]*simNode
	recv := recvA[:0]
	for _, n := range w.nodes {
		if n.up && n.st.inActive && w.now-n.lastChunkAt <= TransferWindow {
			recv = append(recv, n)
		}
	}
	if len(recv) == 0 || w.rng.Float64() >= f.CrashInTransfer {
		return
	}
	n := recv[w.rng.IntN(len(recv))]
	if w.rng.IntN(3) == 0 {
		// The leader streaming to n: the next leader must restart the
		// transfer, which n's partial snapshot does not match.
		if n.soft.Lead != raft.None {
			if l := w.nodes[n.soft.Lead-1]; l.up && l.soft.Role == raft.RoleLeader && w.now-l.lastSnapSendAt <= TransferWindow {
				w.faults[FaultCrashSnapSender]++
				w.crashFor(l, crashSnapSender)
				return
			}
		}
	}
	w.faults[FaultCrashInTransfer]++
	w.crashFor(n, crashInTransfer)
}

func (w *world) setSkew(n *simNode, period int64) {
	if n.period == period {
		return
	}
	n.period = period
	w.faults[FaultSkew]++
	w.ev.add(event{t: w.now, kind: evSkew, a: uint8(n.id), x: uint64(period)})
}

// leader returns the up node that leads the highest term, or nil.
func (w *world) leader() *simNode {
	var best *simNode
	for _, n := range w.nodes {
		if n.up && n.soft.Role == raft.RoleLeader && (best == nil || n.term > best.term) {
			best = n
		}
	}
	return best
}

// randomSides splits the nodes into two non-empty random sides (masks of
// node indexes), leaving out the nodes in except.
func (w *world) randomSides(except uint64) (a, b uint64) {
	var pool []int
	for i := range w.nodes {
		if except&(1<<i) == 0 {
			pool = append(pool, i)
		}
	}
	w.rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	k := 1 + w.rng.IntN(len(pool)-1)
	for i, x := range pool {
		if i < k {
			a |= 1 << x
		} else {
			b |= 1 << x
		}
	}
	return a, b
}

// partition replaces the network's partition with a new one of kind.
func (w *world) partition(kind FaultKind) {
	n := len(w.nodes)
	if n < 2 || (kind == FaultBridge && n < 3) {
		return
	}
	w.net.clearBlocks()
	all := uint64(1)<<n - 1
	var a, b uint64
	var bridge uint8
	switch kind {
	case FaultSplit:
		a, b = w.randomSides(0)
		w.net.cut(a, b, n)
		w.net.cut(b, a, n)
	case FaultOneWay:
		a, b = w.randomSides(0)
		w.net.cut(a, b, n)
	case FaultIsolateLeader:
		l := w.leader()
		if l == nil {
			l = w.nodes[w.rng.IntN(n)]
		}
		a = 1 << l.idx
		b = all &^ a
		w.net.cut(a, b, n)
		w.net.cut(b, a, n)
	case FaultBridge:
		m := w.rng.IntN(n)
		bridge = uint8(m + 1)
		a, b = w.randomSides(1 << m)
		w.net.cut(a, b, n)
		w.net.cut(b, a, n)
	}
	w.net.partition = kind
	w.faults[kind]++
	w.ev.add(event{t: w.now, kind: evPartition, a: bridge, x: uint64(kind), y: a, z: b})
}

func (w *world) healPartition() {
	w.net.clearBlocks()
	w.ev.add(event{t: w.now, kind: evHeal})
}

// heal ends every fault for the liveness phase: the network is whole and
// loses, duplicates, corrupts and long-delays nothing, every node is up,
// and every clock runs at the same rate.
func (w *world) heal() {
	w.healed = true
	w.ev.add(event{t: w.now, kind: evPhase})
	w.net.clearBlocks()
	for _, n := range w.nodes {
		n.period = 1
		if !n.up {
			w.start(n)
		}
	}
	if w.cfg.DisablePreVote && w.cfg.DisableCheckQuorum {
		w.retireRemoved()
	}
}

// retireRemoved stops for good, as an operator would, every node that was
// removed but never learned it: a voter of the configuration its own core
// tracks, yet neither a member of the latest committed configuration (or
// of one appended after it on a member), nor counted on by a member whose
// core still tracks an older configuration (it may need that node's vote
// to learn the newer one). With neither pre-vote nor check-quorum, nothing
// keeps such a node from campaigning in higher and higher terms, each one
// deposing the members' leader (Raft dissertation §4.2.3), and the
// liveness phase could never end. A node that knows of its removal never
// campaigns and keeps running; with either protection on, every removed
// node keeps running and must not disrupt the cluster.
func (w *world) retireRemoved() {
	latest := w.chk.conf(len(w.chk.confs))
	members := idMask(latest.Members())
	from := raft.Index(0)
	if k := len(w.chk.confs); k > 0 {
		from = w.chk.confs[k-1].index
	}
	keep := members
	for _, n := range w.nodes {
		if !n.up || members&idMask([]raft.NodeID{n.id}) == 0 {
			continue
		}
		keep |= idMask(n.r.ConfState().Members())
		for i := from + 1; i <= n.st.lastIndex(); i++ {
			if e, ok := n.st.entry(i); ok && e.Type == raft.EntryConfChange {
				if cs, err := raft.DecodeConfState(e.Data); err == nil {
					keep |= idMask(cs.Members())
				}
			}
		}
	}
	for _, n := range w.nodes {
		if !n.up || keep&idMask([]raft.NodeID{n.id}) != 0 || !n.r.ConfState().IsVoter(n.id) {
			continue
		}
		w.rep.Churn.Retired++
		w.stopNode(n, crashRetired)
	}
}

package raft

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// testNode is one core plus the storage and state machine a runtime would
// give it, handled exactly as doc.go prescribes.
type testNode struct {
	r       *Raft
	st      *MemoryStorage
	applied []Entry // committed entries in the order they were applied
	reads   []ReadState
	// snaps counts the snapshots this node took itself.
	snaps int
}

// network is an in-test message bus. Messages leave a node only through
// Ready, in the order doc.go gives; the bus can drop, duplicate, reorder
// and cut links, all driven by a seeded PRNG.
type network struct {
	t     testing.TB
	ids   []NodeID
	nodes map[NodeID]*testNode
	queue []Message
	// cut[a][b] blocks messages from a to b.
	cut map[[2]NodeID]bool
	// fault injection (probabilities in [0,1])
	dropRate, dupRate float64
	reorder           bool
	rng               *rand.Rand
	// sent records every message leaving any node, for determinism tests.
	sent []Message
	// leaders[term] records who led each term (Election Safety, §5.2).
	leaders map[Term]NodeID
	// snapEvery > 0 makes every node snapshot its state machine (the
	// applied list) once it has applied snapEvery entries past its last
	// snapshot, then compact its log up to snapMargin entries below it.
	snapEvery, snapMargin int
}

func ids(n int) []NodeID {
	out := make([]NodeID, n)
	for i := range out {
		out[i] = NodeID(i + 1)
	}
	return out
}

// newNetwork builds n nodes with a common seed; opt may adjust each Config.
func newNetwork(t testing.TB, n int, seed uint64, opt func(*Config)) *network {
	nw := &network{t: t, ids: ids(n), nodes: map[NodeID]*testNode{}, cut: map[[2]NodeID]bool{},
		rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), leaders: map[Term]NodeID{}}
	for _, id := range nw.ids {
		st := NewMemoryStorage()
		cfg := Config{ID: id, Peers: nw.ids, Storage: st, Seed: seed, ElectionTicks: 10, HeartbeatTicks: 1}
		if opt != nil {
			opt(&cfg)
		}
		r, err := New(cfg)
		if err != nil {
			t.Fatalf("New(%d): %v", id, err)
		}
		nw.nodes[id] = &testNode{r: r, st: st}
	}
	return nw
}

func (nw *network) node(id NodeID) *Raft { return nw.nodes[id].r }

// process handles one Ready of node id: persist, send, apply, Advance.
func (nw *network) process(id NodeID) bool {
	n := nw.nodes[id]
	if !n.r.HasReady() {
		return false
	}
	rd := n.r.Ready()
	nw.installSnapshot(id, n, rd)
	if !rd.HardState.IsEmpty() {
		n.st.SetHardState(rd.HardState)
	}
	if err := n.st.Append(rd.Entries); err != nil {
		nw.t.Fatalf("node %d: append: %v", id, err)
	}
	if rd.SoftState.Role == RoleLeader {
		nw.recordLeader(id, n.r.term)
	}
	for _, m := range rd.Messages {
		m.Entries = slices.Clone(m.Entries) // the wire would copy them
		nw.sent = append(nw.sent, m)
		nw.queue = append(nw.queue, m)
	}
	n.applied = append(n.applied, rd.Committed...)
	n.reads = append(n.reads, rd.ReadStates...)
	nw.maybeSnapshot(n)
	n.r.Advance(rd)
	return true
}

// installSnapshot writes rd's snapshot chunks and installs its snapshot,
// restoring the state machine (the applied list) from the snapshot data.
func (nw *network) installSnapshot(id NodeID, n *testNode, rd Ready) {
	for _, c := range rd.SnapshotChunks {
		if err := n.st.WriteSnapshotChunk(c); err != nil {
			nw.t.Fatalf("node %d: write chunk at %d: %v", id, c.Offset, err)
		}
	}
	if rd.Snapshot.IsEmpty() {
		return
	}
	if err := n.st.InstallSnapshot(rd.Snapshot); err != nil {
		nw.t.Fatalf("node %d: install %+v: %v", id, rd.Snapshot, err)
	}
	_, data := n.st.SnapshotData()
	applied, err := decodeApplied(data)
	if err != nil {
		nw.t.Fatalf("node %d: restore: %v", id, err)
	}
	n.applied = applied
}

// maybeSnapshot takes a snapshot of the applied list and compacts.
func (nw *network) maybeSnapshot(n *testNode) {
	if nw.snapEvery <= 0 || len(n.applied) == 0 {
		return
	}
	snap, _ := n.st.Snapshot()
	last := n.applied[len(n.applied)-1]
	if int(last.Index-snap.Index) < nw.snapEvery {
		return
	}
	if _, err := n.st.SaveSnapshot(SnapshotMeta{Index: last.Index, Term: last.Term, Conf: n.r.ConfState()}, encodeApplied(n.applied)); err != nil {
		nw.t.Fatalf("snapshot at %d: %v", last.Index, err)
	}
	n.snaps++
	if c := last.Index - Index(min(int(last.Index), nw.snapMargin)); c > 0 {
		if err := n.st.Compact(c); err != nil {
			nw.t.Fatalf("compact to %d: %v", c, err)
		}
	}
}

// encodeApplied is the test state machine's snapshot format: every applied
// entry as uvarints (index, term, type, length) and its data.
func encodeApplied(ents []Entry) []byte {
	var b []byte
	for _, e := range ents {
		b = binary.AppendUvarint(b, uint64(e.Index))
		b = binary.AppendUvarint(b, uint64(e.Term))
		b = binary.AppendUvarint(b, uint64(e.Type))
		b = binary.AppendUvarint(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b
}

func decodeApplied(b []byte) ([]Entry, error) {
	var out []Entry
	for len(b) > 0 {
		var v [4]uint64
		for i := range v {
			x, k := binary.Uvarint(b)
			if k <= 0 {
				return nil, errors.New("bad snapshot")
			}
			v[i], b = x, b[k:]
		}
		if v[3] > uint64(len(b)) {
			return nil, errors.New("bad snapshot length")
		}
		out = append(out, Entry{Index: Index(v[0]), Term: Term(v[1]), Type: EntryType(v[2]), Data: slices.Clone(b[:v[3]])})
		b = b[v[3]:]
	}
	return out, nil
}

func (nw *network) recordLeader(id NodeID, term Term) {
	if prev, ok := nw.leaders[term]; ok && prev != id {
		nw.t.Fatalf("election safety violated: term %d has leaders %d and %d", term, prev, id)
	}
	nw.leaders[term] = id
}

// deliver hands one queued message to its recipient through the faults.
func (nw *network) deliverOne() {
	i := 0
	if nw.reorder && len(nw.queue) > 1 {
		i = nw.rng.IntN(len(nw.queue))
	}
	m := nw.queue[i]
	nw.queue = slices.Delete(nw.queue, i, i+1)
	if nw.cut[[2]NodeID{m.From, m.To}] || nw.rng.Float64() < nw.dropRate {
		return
	}
	if nw.rng.Float64() < nw.dupRate {
		nw.queue = append(nw.queue, m)
	}
	if to, ok := nw.nodes[m.To]; ok {
		_ = to.r.Step(m)
	}
}

// settle processes Readys and delivers messages until nothing moves, or
// until limit deliveries (so a livelock fails the test instead of hanging).
func (nw *network) settle() {
	for steps := 0; steps < 100000; steps++ {
		moved := false
		for _, id := range nw.ids {
			for nw.process(id) {
				moved = true
			}
		}
		if len(nw.queue) > 0 {
			nw.deliverOne()
			moved = true
		}
		if !moved {
			return
		}
	}
	nw.t.Fatalf("network did not settle")
}

// tick advances every node's clock once and settles.
func (nw *network) tick(n int) {
	for range n {
		for _, id := range nw.ids {
			nw.node(id).Tick()
		}
		nw.settle()
	}
}

func (nw *network) isolate(id NodeID) {
	for _, o := range nw.ids {
		if o != id {
			nw.cut[[2]NodeID{id, o}] = true
			nw.cut[[2]NodeID{o, id}] = true
		}
	}
}

func (nw *network) heal() { nw.cut = map[[2]NodeID]bool{} }

// leader returns the node that leads in the highest term, or None.
func (nw *network) leader() NodeID {
	var best NodeID
	var term Term
	for _, id := range nw.ids {
		r := nw.node(id)
		if r.role == RoleLeader && r.term >= term {
			best, term = id, r.term
		}
	}
	return best
}

// elect makes id campaign and settles; it fails the test if id does not win.
func (nw *network) elect(id NodeID) {
	nw.node(id).Campaign()
	nw.settle()
	if nw.node(id).role != RoleLeader {
		nw.t.Fatalf("node %d did not become leader (role %v term %d)", id, nw.node(id).role, nw.node(id).term)
	}
}

// propose proposes data at id and settles.
func (nw *network) propose(id NodeID, data string) Proposal {
	p, err := nw.node(id).Propose([]byte(data))
	if err != nil {
		nw.t.Fatalf("propose at %d: %v", id, err)
	}
	nw.settle()
	return p
}

// checkLogs asserts State Machine Safety (§5.4.3): every pair of nodes
// applied the same entry at every index both applied.
func (nw *network) checkApplied() {
	for _, a := range nw.ids {
		for _, b := range nw.ids {
			ea, eb := nw.nodes[a].applied, nw.nodes[b].applied
			for i := 0; i < min(len(ea), len(eb)); i++ {
				if ea[i].Index != eb[i].Index || ea[i].Term != eb[i].Term || string(ea[i].Data) != string(eb[i].Data) {
					nw.t.Fatalf("state machine safety: nodes %d and %d differ at position %d: %+v vs %+v", a, b, i, ea[i], eb[i])
				}
			}
		}
	}
}

// dataOf lists the payloads of normal entries applied at id.
func (nw *network) dataOf(id NodeID) []string {
	var out []string
	for _, e := range nw.nodes[id].applied {
		if e.Type == EntryNormal {
			out = append(out, string(e.Data))
		}
	}
	return out
}

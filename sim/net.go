package sim

import (
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// clusterID is the wire cluster ID of simulated clusters.
const clusterID wire.ClusterID = 0x5EED

// packet is one frame in flight.
type packet struct {
	at        int64  // delivery time
	seq       uint64 // send order: ties in at deliver in send order
	from, to  uint8  // node indexes
	mt        raft.MessageType
	corrupted bool
	frame     []byte
}

// packetQueue is a min-heap of packets by (at, seq).
type packetQueue []packet

func (q packetQueue) less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}

func (q *packetQueue) push(p packet) {
	*q = append(*q, p)
	h := *q
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *packetQueue) pop() packet {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = packet{}
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// network is the simulated network: a queue of frames ordered by delivery
// time, and a matrix of blocked links.
type network struct {
	q   packetQueue
	seq uint64
	// blocked[a][b]: frames from node index a to node index b are dropped
	// at delivery time.
	blocked [MaxUniverse][MaxUniverse]bool
	// partition in force (FaultSplit.. FaultBridge), 0 if none, and when
	// it heals (random schedule only).
	partition FaultKind
	healAt    int64
	// lastSeq[a][b] is the highest send sequence delivered on link a->b,
	// to count reorderings.
	lastSeq [MaxUniverse][MaxUniverse]uint64
	// slab is the spare capacity frames are cut from: frames are never
	// reused (decoded entries alias them), so they are carved from large
	// chunks instead of allocated one by one.
	slab []byte
}

const slabBytes = 64 << 10

// encode appends m's frame to the slab and returns it, capacity clipped.
func (nw *network) encode(m *raft.Message) ([]byte, error) {
	if cap(nw.slab)-len(nw.slab) < wire.DefaultMaxFrameBytes {
		nw.slab = make([]byte, 0, slabBytes)
	}
	start := len(nw.slab)
	b, err := wire.AppendMessage(nw.slab, clusterID, m)
	if err != nil {
		return nil, err
	}
	nw.slab = b
	return b[start:len(b):len(b)], nil
}

func (nw *network) isBlocked(from, to uint8) bool { return nw.blocked[from][to] }

func (nw *network) clearBlocks() {
	nw.blocked = [MaxUniverse][MaxUniverse]bool{}
	nw.partition = 0
}

// cut blocks every link from a node in maskA to a node in maskB.
func (nw *network) cut(maskA, maskB uint64, n int) {
	for i := range n {
		for j := range n {
			if maskA&(1<<i) != 0 && maskB&(1<<j) != 0 {
				nw.blocked[i][j] = true
			}
		}
	}
}

// Package channel is an in-process transport: each node's inbox is a
// bounded Go channel (default 32 frames, as in the seed). A full inbox drops
// the frame and counts it; a sender never blocks. Frames are copied, so
// every configuration exercises the wire codec exactly as a network would.
package channel

import (
	"math/rand/v2"
	"sync"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
)

// DefaultInboxSize is the seed's channel-transport capacity.
const DefaultInboxSize = 32

// Options configures a Network.
type Options struct {
	// InboxSize bounds each node's inbox (frames).
	InboxSize int
	// DropRate drops this fraction of frames at random (fault injection).
	DropRate float64
	// Seed seeds the fault-injection PRNG.
	Seed uint64
}

// Network connects the endpoints of one cluster.
type Network struct {
	mu        sync.RWMutex
	endpoints map[raft.NodeID]*Endpoint
	inboxSize int
	dropRate  float64
	cut       map[[2]raft.NodeID]bool
	rngMu     sync.Mutex
	rng       *rand.Rand
}

// NewNetwork returns an empty network.
func NewNetwork(opts Options) *Network {
	if opts.InboxSize <= 0 {
		opts.InboxSize = DefaultInboxSize
	}
	return &Network{endpoints: map[raft.NodeID]*Endpoint{}, inboxSize: opts.InboxSize,
		dropRate: opts.DropRate, cut: map[[2]raft.NodeID]bool{},
		rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0xC0FFEE))}
}

// Endpoint attaches node id, replacing a closed endpoint of the same node.
func (n *Network) Endpoint(id raft.NodeID) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.endpoints[id]; old != nil {
		old.closeLocked()
	}
	e := &Endpoint{net: n, id: id, inbox: make(chan []byte, n.inboxSize)}
	n.endpoints[id] = e
	return e
}

// SetDropRate changes the fraction of frames dropped at random.
func (n *Network) SetDropRate(p float64) {
	n.mu.Lock()
	n.dropRate = p
	n.mu.Unlock()
}

// Cut blocks (or, with blocked false, restores) frames from a to b.
func (n *Network) Cut(a, b raft.NodeID, blocked bool) {
	n.mu.Lock()
	n.cut[[2]raft.NodeID{a, b}] = blocked
	n.mu.Unlock()
}

func (n *Network) faulty() bool {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return n.rng.Float64() < n.dropRate
}

// Endpoint is one node's attachment; it implements transport.Transport.
type Endpoint struct {
	net    *Network
	id     raft.NodeID
	inbox  chan []byte
	closed bool // guarded by net.mu
	stats  transport.Counters
}

var _ transport.Transport = (*Endpoint)(nil)

// Send implements transport.Transport.
func (e *Endpoint) Send(to raft.NodeID, frame []byte) error {
	n := e.net
	n.mu.RLock()
	defer n.mu.RUnlock()
	if e.closed {
		return transport.ErrClosed
	}
	dst := n.endpoints[to]
	if dst == nil || dst.closed {
		e.stats.DroppedFault.Add(1) // the peer is down: the frame is lost
		return nil
	}
	if n.cut[[2]raft.NodeID{e.id, to}] || (n.dropRate > 0 && n.faulty()) {
		e.stats.DroppedFault.Add(1)
		return nil
	}
	select {
	case dst.inbox <- append([]byte(nil), frame...):
		e.stats.Sent.Add(1)
		dst.stats.Received.Add(1)
	default:
		dst.stats.DroppedFull.Add(1) // bounded inbox full: never block the sender
		return transport.ErrQueueFull
	}
	return nil
}

// Inbox implements transport.Transport.
func (e *Endpoint) Inbox() <-chan []byte { return e.inbox }

// Stats implements transport.Transport.
func (e *Endpoint) Stats() transport.Stats { return e.stats.Snapshot() }

// Close implements transport.Transport.
func (e *Endpoint) Close() error {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	e.closeLocked()
	return nil
}

func (e *Endpoint) closeLocked() {
	if !e.closed {
		e.closed = true
		if e.net.endpoints[e.id] == e {
			delete(e.net.endpoints, e.id)
		}
	}
}

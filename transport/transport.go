// Package transport defines how encoded frames travel between nodes. A
// frame is one wire-encoded message (see docs/WIRE.md): transports move
// bytes and never interpret them. Implementations live in subpackages:
// channel (in-process), and later udp (OS sockets) and netstack (gVisor's
// TCP/IP stack on a simulated Ethernet).
package transport

import (
	"errors"
	"sync/atomic"

	"github.com/embraft/embraft/raft"
)

// Transport is one node's endpoint.
type Transport interface {
	// Send queues frame for peer to. It never blocks: when a bound is
	// reached the frame is dropped, counted, and ErrQueueFull returned (Raft
	// retransmits; the node tells the core at once so that it does not
	// wait a heartbeat to notice). It does not retain frame after returning.
	Send(to raft.NodeID, frame []byte) error
	// Inbox delivers received frames. Each frame is a fresh buffer that the
	// receiver owns. The channel is bounded; when it is full, arriving
	// frames are dropped and counted.
	Inbox() <-chan []byte
	// Stats returns the endpoint's counters.
	Stats() Stats
	// Close stops the endpoint; later Sends fail with ErrClosed.
	Close() error
}

// Stats counts an endpoint's traffic.
type Stats struct {
	Sent, Received uint64
	// DroppedFull counts frames lost to a full bounded queue.
	DroppedFull uint64
	// DroppedFault counts frames lost to injected faults.
	DroppedFault uint64
	// DroppedBad counts received frames refused as malformed (counted by
	// the transport when it can tell, otherwise by the node).
	DroppedBad uint64
}

// Counters is a concurrency-safe Stats for implementations to embed.
type Counters struct {
	Sent, Received, DroppedFull, DroppedFault, DroppedBad atomic.Uint64
}

// Snapshot returns the counters' current values.
func (c *Counters) Snapshot() Stats {
	return Stats{Sent: c.Sent.Load(), Received: c.Received.Load(), DroppedFull: c.DroppedFull.Load(),
		DroppedFault: c.DroppedFault.Load(), DroppedBad: c.DroppedBad.Load()}
}

var (
	// ErrClosed: the endpoint was closed.
	ErrClosed = errors.New("transport: closed")
	// ErrUnknownPeer: no route to the named node.
	ErrUnknownPeer = errors.New("transport: unknown peer")
	// ErrQueueFull: a bounded queue on the way to the peer was full; the
	// frame was dropped and counted.
	ErrQueueFull = errors.New("transport: queue full, frame dropped")
)

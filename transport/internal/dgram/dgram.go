// Package dgram is the part shared by the datagram transports (udp and
// netstack): bounded per-peer send queues drained by one sender goroutine
// per peer, validation of received datagrams, and the bounded inbox.
//
// A transport supplies the socket: a Write function that the sender
// goroutines call, and a receive loop that hands every datagram to
// Core.Receive together with its source address.
//
// Validation decodes each datagram fully with wire.DecodeMessage into a
// scratch message (tens of nanoseconds for a heartbeat, a few hundred for a
// full 1200-byte append: far below the cost of the system call or the
// simulated network that delivered it). So the inbox only ever holds
// well-formed frames of this cluster, addressed to this node, from a
// configured peer at that peer's configured address; a sender cannot fill
// the bounded inbox with garbage. The node decodes the frame again, which
// is cheap, and keeps its own malformed-frame count for other transports.
package dgram

import (
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/wire"
)

// Defaults for Config fields left at zero.
const (
	DefaultSendQueue   = 16
	DefaultInboxSize   = 32
	DefaultMaxDatagram = wire.DefaultMaxFrameBytes
)

// ErrTooLarge: Send was given a frame longer than MaxDatagram.
var ErrTooLarge = errors.New("transport: frame larger than the maximum datagram")

// Config configures a Core.
type Config struct {
	// ID is this node; Peers maps every other member to its address (an
	// entry for ID itself is ignored).
	ID      raft.NodeID
	Cluster wire.ClusterID
	Peers   map[raft.NodeID]netip.AddrPort
	// SendQueue bounds the frames queued per peer (default 16);
	// InboxSize bounds the received frames not yet taken (default 32).
	SendQueue, InboxSize int
	// MaxDatagram bounds a frame (default 1200 bytes).
	MaxDatagram int
	// MaxEntries bounds the entries of a received MsgApp or MsgProp
	// (default wire.DefaultMaxEntries); it must not be below the node's.
	MaxEntries int
	// Write sends one datagram. The sender goroutines call it
	// concurrently (one goroutine per peer); frame is only valid during
	// the call. An error counts the frame as DroppedFault.
	Write func(to netip.AddrPort, frame []byte) error
	// BeforeTake, if set, is called by a sender goroutine before it takes
	// each frame from its queue (a test hook to stall the senders).
	BeforeTake func(to raft.NodeID)
}

// Core is the queueing and validation shared by datagram transports.
type Core struct {
	cfg     Config
	lim     wire.Limits
	queues  map[raft.NodeID]*peer
	byAddr  map[netip.AddrPort]raft.NodeID
	inbox   chan []byte
	pool    sync.Pool // *[]byte of capacity MaxDatagram
	closed  atomic.Bool
	done    chan struct{}
	wg      sync.WaitGroup
	scratch raft.Message // owned by the receive loop
	// Counters are the endpoint's counters; a transport may add to them
	// (e.g. DroppedFault for frames its network lost).
	Counters transport.Counters
}

type peer struct {
	id   raft.NodeID
	addr netip.AddrPort
	q    chan *[]byte
}

// New validates cfg and starts one sender goroutine per peer.
func New(cfg Config) (*Core, error) {
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.InboxSize <= 0 {
		cfg.InboxSize = DefaultInboxSize
	}
	if cfg.MaxDatagram <= 0 {
		cfg.MaxDatagram = DefaultMaxDatagram
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = wire.DefaultMaxEntries
	}
	switch {
	case cfg.ID == raft.None:
		return nil, errors.New("transport: ID must not be 0")
	case cfg.Write == nil:
		return nil, errors.New("transport: Write must be set")
	case cfg.MaxDatagram > 65507:
		return nil, errors.New("transport: MaxDatagram exceeds a UDP datagram")
	}
	c := &Core{cfg: cfg, lim: wire.Limits{MaxFrameBytes: cfg.MaxDatagram, MaxEntries: cfg.MaxEntries},
		queues: map[raft.NodeID]*peer{}, byAddr: map[netip.AddrPort]raft.NodeID{},
		inbox: make(chan []byte, cfg.InboxSize), done: make(chan struct{})}
	c.pool.New = func() any { b := make([]byte, 0, cfg.MaxDatagram); return &b }
	for id, addr := range cfg.Peers {
		if id == cfg.ID {
			continue
		}
		if id == raft.None {
			return nil, errors.New("transport: peer ID must not be 0")
		}
		addr = Unmap(addr)
		if !addr.IsValid() || addr.Port() == 0 {
			return nil, errors.New("transport: peer " + idString(id) + " has no valid address")
		}
		if other, dup := c.byAddr[addr]; dup {
			return nil, errors.New("transport: peers " + idString(other) + " and " + idString(id) +
				" share the address " + addr.String())
		}
		c.byAddr[addr] = id
		c.queues[id] = &peer{id: id, addr: addr, q: make(chan *[]byte, cfg.SendQueue)}
	}
	for _, p := range c.queues {
		c.wg.Add(1)
		go c.sender(p)
	}
	return c, nil
}

// Unmap returns a with an IPv4-mapped IPv6 address turned into IPv4.
func Unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func idString(id raft.NodeID) string { return strconv.FormatUint(uint64(id), 10) }

// MaxDatagram returns the configured bound (with its default applied).
func (c *Core) MaxDatagram() int { return c.cfg.MaxDatagram }

// Send implements transport.Transport.Send: it copies frame into the
// peer's bounded queue, or drops and counts it (DroppedFull) and returns
// transport.ErrQueueFull.
func (c *Core) Send(to raft.NodeID, frame []byte) error {
	if c.closed.Load() {
		return transport.ErrClosed
	}
	p := c.queues[to]
	if p == nil {
		return transport.ErrUnknownPeer
	}
	if len(frame) > c.cfg.MaxDatagram {
		return ErrTooLarge
	}
	buf := c.pool.Get().(*[]byte)
	*buf = append((*buf)[:0], frame...)
	select {
	case p.q <- buf:
	default:
		c.pool.Put(buf)
		c.Counters.DroppedFull.Add(1)
		return transport.ErrQueueFull
	}
	return nil
}

func (c *Core) sender(p *peer) {
	defer c.wg.Done()
	for {
		if c.cfg.BeforeTake != nil {
			c.cfg.BeforeTake(p.id)
		}
		select {
		case <-c.done:
			return
		case buf := <-p.q:
			if err := c.cfg.Write(p.addr, *buf); err != nil {
				if c.closed.Load() {
					return // the socket was closed under us
				}
				c.Counters.DroppedFault.Add(1)
			} else {
				c.Counters.Sent.Add(1)
			}
			c.pool.Put(buf)
		}
	}
}

// Verdict is the outcome of Receive.
type Verdict int

const (
	Delivered   Verdict = iota // queued in the inbox
	InboxFull                  // well-formed, dropped: the inbox was full (DroppedFull)
	Oversized                  // longer than MaxDatagram (DroppedBad)
	Malformed                  // did not decode: truncated, version, cluster, checksum... (DroppedBad)
	Misrouted                  // addressed to another node (DroppedBad)
	UnknownPeer                // From is not a configured peer (DroppedBad)
	Spoofed                    // source address is not From's configured address (DroppedBad)
)

var verdictNames = [...]string{"delivered", "inbox full", "oversized", "malformed", "misrouted",
	"unknown peer", "address mismatch"}

func (v Verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Receive validates one received datagram b from src and delivers a fresh
// copy of it to the inbox, counting what it drops. A transport reads into
// a buffer of MaxDatagram+1 bytes, so a b longer than MaxDatagram means
// the datagram was too large (and was cut). Receive must be called from
// one goroutine only.
func (c *Core) Receive(b []byte, src netip.AddrPort) Verdict {
	v := c.check(b, src)
	switch v {
	case Delivered:
		select {
		case c.inbox <- append([]byte(nil), b...):
			c.Counters.Received.Add(1)
		default:
			c.Counters.DroppedFull.Add(1)
			v = InboxFull
		}
	default:
		c.Counters.DroppedBad.Add(1)
	}
	return v
}

func (c *Core) check(b []byte, src netip.AddrPort) Verdict {
	if len(b) > c.cfg.MaxDatagram {
		return Oversized
	}
	m := &c.scratch
	if err := wire.DecodeMessage(b, c.cfg.Cluster, m, c.lim); err != nil {
		return Malformed
	}
	if m.To != c.cfg.ID {
		return Misrouted
	}
	p := c.queues[m.From]
	if p == nil {
		return UnknownPeer
	}
	if p.addr != Unmap(src) {
		return Spoofed
	}
	return Delivered
}

// Inbox implements transport.Transport.Inbox.
func (c *Core) Inbox() <-chan []byte { return c.inbox }

// Stats implements transport.Transport.Stats.
func (c *Core) Stats() transport.Stats { return c.Counters.Snapshot() }

// Closed reports whether Close was called.
func (c *Core) Closed() bool { return c.closed.Load() }

// Close makes later Sends fail with transport.ErrClosed and tells the
// sender goroutines to stop; frames still queued are discarded. The
// transport then closes its socket (so that a Write in progress returns)
// and calls Wait. Close reports whether this call closed the core.
func (c *Core) Close() bool {
	if c.closed.Swap(true) {
		return false
	}
	close(c.done)
	return true
}

// Wait waits for the sender goroutines to return.
func (c *Core) Wait() { c.wg.Wait() }

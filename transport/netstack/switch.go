package netstack

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
)

// Defaults for SwitchOptions fields left at zero.
const (
	DefaultDelayQueue = 1024 // frames held in the delay line
	DefaultPortQueue  = 256  // outbound frames buffered per port
)

// ErrSwitchClosed: the switch was closed.
var ErrSwitchClosed = errors.New("netstack: switch closed")

// SwitchOptions configures a Switch.
type SwitchOptions struct {
	// Seed seeds the fault-injection PRNG.
	Seed uint64
	// Faults apply to every link until changed (default: none).
	Faults Faults
	// DelayQueue bounds the frames waiting in the delay line (default
	// 1024); a frame arriving at a full delay line is dropped and counted.
	DelayQueue int
	// PortQueue bounds the outbound frames a node's link endpoint buffers
	// before the switch takes them (default 256); beyond it the node's
	// stack drops them.
	PortQueue int
	// Logger receives events; nil discards them.
	Logger *slog.Logger
}

// Faults are the faults injected on a link (one direction).
type Faults struct {
	// Loss is the probability that a frame is dropped.
	Loss float64
	// Duplicate is the probability that a frame is delivered twice.
	Duplicate float64
	// Delay is added to every frame; Jitter adds a further uniformly
	// random [0, Jitter). Frames may be reordered by the jitter.
	Delay, Jitter time.Duration
}

func (f Faults) validate() error {
	switch {
	case !(f.Loss >= 0 && f.Loss <= 1):
		return errors.New("netstack: loss must be in [0, 1]")
	case !(f.Duplicate >= 0 && f.Duplicate <= 1):
		return errors.New("netstack: duplicate must be in [0, 1]")
	case f.Delay < 0 || f.Jitter < 0:
		return errors.New("netstack: delay and jitter must not be negative")
	}
	return nil
}

// SwitchStats counts the switch's work. A frame sent to several ports (a
// flood) counts once per destination.
type SwitchStats struct {
	// Forwarded counts frames delivered to a port (duplicates included).
	Forwarded uint64
	// Flooded counts frames flooded to every other port (broadcasts, such
	// as ARP requests, and unknown destinations).
	Flooded uint64
	// Duplicated counts extra copies injected by the Duplicate fault.
	Duplicated uint64
	// Delayed counts frames that went through the delay line.
	Delayed uint64
	// DroppedLoss, DroppedPartition and DroppedQueueFull count frames
	// dropped by the Loss fault, by a partition or cut, and because the
	// delay line was full.
	DroppedLoss, DroppedPartition, DroppedQueueFull uint64
	// DroppedNoPort counts frames for a port that had gone, and runt
	// frames.
	DroppedNoPort uint64
}

// Switch is an in-process Ethernet switch connecting nodes' gVisor stacks.
// It reads every outbound frame of every port, learns source MACs,
// forwards unicast frames to the learned port and floods broadcasts and
// unknown destinations (so ARP works), applying the configured faults on
// the way. All methods are safe for concurrent use.
type Switch struct {
	log        *slog.Logger
	portQueue  int
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	delayLimit int

	mu      sync.Mutex // guards everything below, including rng
	closed  bool
	ports   map[raft.NodeID]*port
	macs    map[tcpip.LinkAddress]raft.NodeID
	faults  Faults
	links   map[link]Faults
	blocked map[link]bool
	rng     *rand.Rand

	dmu   sync.Mutex // guards the delay line
	delay delayHeap
	seq   uint64
	wake  chan struct{}

	forwarded, flooded, duplicated, delayed                        atomic.Uint64
	droppedLoss, droppedPartition, droppedQueueFull, droppedNoPort atomic.Uint64
}

// link is a direction: frames from link[0] to link[1].
type link [2]raft.NodeID

// NewSwitch returns a switch with no ports. Close stops it.
func NewSwitch(opts SwitchOptions) (*Switch, error) {
	if err := opts.Faults.validate(); err != nil {
		return nil, err
	}
	if opts.DelayQueue <= 0 {
		opts.DelayQueue = DefaultDelayQueue
	}
	if opts.PortQueue <= 0 {
		opts.PortQueue = DefaultPortQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Switch{log: opts.Logger.With("switch", "netstack"), portQueue: opts.PortQueue,
		ctx: ctx, cancel: cancel, delayLimit: opts.DelayQueue,
		ports: map[raft.NodeID]*port{}, macs: map[tcpip.LinkAddress]raft.NodeID{},
		faults: opts.Faults, links: map[link]Faults{}, blocked: map[link]bool{},
		rng:  rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9E3779B97F4A7C15)),
		wake: make(chan struct{}, 1)}
	s.wg.Add(1)
	go s.delayLoop()
	return s, nil
}

// Close stops the switch's goroutines and discards delayed frames. The
// transports attached to it stay open (their owners close them) but are
// disconnected; Attach fails from now on.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.dmu.Lock()
	s.delay = nil
	s.dmu.Unlock()
	return nil
}

// SetFaults sets the faults of every link that has no faults of its own.
func (s *Switch) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// SetLinkFaults sets the faults of frames from node from to node to,
// overriding SetFaults for that direction.
func (s *Switch) SetLinkFaults(from, to raft.NodeID, f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.links[link{from, to}] = f
	s.mu.Unlock()
	return nil
}

// ResetFaults removes every fault setting (not partitions: see Heal).
func (s *Switch) ResetFaults() {
	s.mu.Lock()
	s.faults = Faults{}
	clear(s.links)
	s.mu.Unlock()
}

// Partition blocks every frame between nodes of different groups, in both
// directions. A node in no group keeps talking to everyone. Partitions
// and cuts accumulate until Heal.
func (s *Switch) Partition(groups ...[]raft.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					if a != b {
						s.blocked[link{a, b}] = true
					}
				}
			}
		}
	}
}

// Cut blocks the frames from node from to node to (one way).
func (s *Switch) Cut(from, to raft.NodeID) {
	s.mu.Lock()
	s.blocked[link{from, to}] = true
	s.mu.Unlock()
}

// Heal removes every partition and cut.
func (s *Switch) Heal() {
	s.mu.Lock()
	clear(s.blocked)
	s.mu.Unlock()
}

// Stats returns the switch's counters.
func (s *Switch) Stats() SwitchStats {
	return SwitchStats{
		Forwarded: s.forwarded.Load(), Flooded: s.flooded.Load(), Duplicated: s.duplicated.Load(),
		Delayed: s.delayed.Load(), DroppedLoss: s.droppedLoss.Load(),
		DroppedPartition: s.droppedPartition.Load(), DroppedQueueFull: s.droppedQueueFull.Load(),
		DroppedNoPort: s.droppedNoPort.Load(),
	}
}

// port is one node's attachment: its gVisor stack and link endpoint.
type port struct {
	id  raft.NodeID
	net NetworkConfig
	ep  *channel.Endpoint
	stk *stack.Stack
	// counters, if set, are the attached transport's: frames from this
	// port that the switch drops count as its DroppedFault.
	counters atomic.Pointer[transport.Counters]

	mu     sync.RWMutex // held (read) while injecting into the stack
	closed bool
	done   chan struct{} // closed when the switch stops reading the port
}

const nicID tcpip.NICID = 1

// attach builds node id's stack — IPv4, ARP and UDP over an Ethernet NIC
// on a channel link endpoint, with the node's static address and a route
// for the subnet — and connects it to the switch.
func (s *Switch) attach(id raft.NodeID) (*port, error) {
	cfg, err := NetworkFor(id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSwitchClosed
	}
	if s.ports[id] != nil {
		return nil, errors.New("netstack: node " + strconv.FormatUint(uint64(id), 10) + " is already attached")
	}
	stk := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol},
	})
	ep := channel.New(s.portQueue, uint32(cfg.MTU+14), tcpip.LinkAddress(cfg.MAC))
	fail := func(what string, e tcpip.Error) (*port, error) {
		stk.Destroy()
		return nil, errors.New("netstack: " + what + ": " + e.String())
	}
	if e := stk.CreateNIC(nicID, ethernet.New(ep)); e != nil {
		return fail("create NIC", e)
	}
	addr := cfg.Address.Addr().As4()
	if e := stk.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(addr), PrefixLen: cfg.Address.Bits()},
	}, stack.AddressProperties{}); e != nil {
		return fail("add address", e)
	}
	subnet, e := tcpip.NewSubnet(tcpip.AddrFrom4(Subnet.Addr().As4()), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
	if e != nil {
		stk.Destroy()
		return nil, e
	}
	stk.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: nicID}})
	p := &port{id: id, net: cfg, ep: ep, stk: stk, done: make(chan struct{})}
	s.ports[id] = p
	s.wg.Add(1)
	go s.readPort(p)
	s.log.Debug("port attached", "node", uint64(id), "config", cfg.String())
	return p, nil
}

// detach disconnects p and destroys its stack. Its socket must be closed.
func (s *Switch) detach(p *port) {
	s.mu.Lock()
	if s.ports[p.id] == p {
		delete(s.ports, p.id)
	}
	for mac, id := range s.macs {
		if id == p.id {
			delete(s.macs, mac)
		}
	}
	s.mu.Unlock()
	p.mu.Lock()
	p.closed = true // no more injections
	p.mu.Unlock()
	p.ep.Close() // ends readPort
	p.stk.Destroy()
	<-p.done
}

// readPort takes the frames p's stack sends and switches them.
func (s *Switch) readPort(p *port) {
	defer s.wg.Done()
	defer close(p.done)
	for {
		pkt := p.ep.ReadContext(s.ctx)
		if pkt == nil {
			return // the endpoint was closed or the switch stopped
		}
		buf := pkt.ToBuffer()
		frame := buf.Flatten()
		buf.Release()
		pkt.DecRef()
		s.forward(p, frame)
	}
}

// delivery is one frame copy bound for a port.
type delivery struct {
	dst   *port
	after time.Duration
}

// ethernet header offsets
const (
	ethDst    = 0
	ethSrc    = 6
	ethHeader = 14
)

// forward switches one frame from port src.
func (s *Switch) forward(src *port, frame []byte) {
	if len(frame) < ethHeader {
		s.droppedNoPort.Add(1)
		return
	}
	dstMAC := tcpip.LinkAddress(frame[ethDst : ethDst+6])
	srcMAC := tcpip.LinkAddress(frame[ethSrc : ethSrc+6])
	var out [8]delivery
	ds := out[:0]
	var faults uint64
	s.mu.Lock()
	if srcMAC[0]&1 == 0 { // learn unicast source addresses
		s.macs[srcMAC] = src.id
	}
	if id, known := s.macs[dstMAC]; known && dstMAC[0]&1 == 0 {
		if dst := s.ports[id]; dst != nil && dst != src {
			ds, faults = s.decideLocked(ds, src, dst)
		}
	} else {
		s.flooded.Add(1)
		for _, dst := range s.ports {
			if dst != src {
				ds, faults = s.decideLocked(ds, src, dst)
			}
		}
	}
	s.mu.Unlock()
	s.countFaults(src, faults)
	for _, d := range ds {
		if d.after <= 0 {
			s.deliver(d.dst, frame)
		} else if !s.schedule(d.dst, frame, d.after) {
			s.countFaults(src, 1)
		}
	}
}

// decideLocked applies the link's faults to a frame from src to dst and
// appends the copies to deliver; it returns how many frames it dropped.
func (s *Switch) decideLocked(ds []delivery, src, dst *port) ([]delivery, uint64) {
	l := link{src.id, dst.id}
	if s.blocked[l] {
		s.droppedPartition.Add(1)
		return ds, 1
	}
	f, ok := s.links[l]
	if !ok {
		f = s.faults
	}
	if f.Loss > 0 && s.rng.Float64() < f.Loss {
		s.droppedLoss.Add(1)
		return ds, 1
	}
	copies := 1
	if f.Duplicate > 0 && s.rng.Float64() < f.Duplicate {
		copies = 2
		s.duplicated.Add(1)
	}
	for range copies {
		after := f.Delay
		if f.Jitter > 0 {
			after += time.Duration(s.rng.Int64N(int64(f.Jitter)))
		}
		ds = append(ds, delivery{dst: dst, after: after})
	}
	return ds, 0
}

func (s *Switch) countFaults(src *port, n uint64) {
	if n == 0 {
		return
	}
	if c := src.counters.Load(); c != nil {
		c.DroppedFault.Add(n)
	}
}

// deliver injects frame into dst's stack. The stack copies it.
func (s *Switch) deliver(dst *port, frame []byte) {
	dst.mu.RLock()
	defer dst.mu.RUnlock()
	if dst.closed {
		s.droppedNoPort.Add(1)
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	dst.ep.InjectInbound(0, pkt) // the Ethernet endpoint reads the protocol from the header
	pkt.DecRef()
	s.forwarded.Add(1)
}

// The delay line: a heap of frames ordered by due time, served by one
// goroutine with one timer.

type delayed struct {
	due   time.Time
	seq   uint64 // FIFO among equal due times
	dst   *port
	frame []byte
}

type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = delayed{}
	*h = old[:len(old)-1]
	return x
}

// schedule queues a copy of frame for dst after d; it reports false (and
// counts) when the delay line is full.
func (s *Switch) schedule(dst *port, frame []byte, d time.Duration) bool {
	s.dmu.Lock()
	if len(s.delay) >= s.delayLimit {
		s.dmu.Unlock()
		s.droppedQueueFull.Add(1)
		return false
	}
	s.seq++
	it := delayed{due: time.Now().Add(d), seq: s.seq, dst: dst, frame: frame}
	heap.Push(&s.delay, it)
	first := s.delay[0].seq == it.seq
	s.dmu.Unlock()
	s.delayed.Add(1)
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return true
}

func (s *Switch) delayLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []delayed
	for {
		now := time.Now()
		next := time.Hour
		s.dmu.Lock()
		for len(s.delay) > 0 && !s.delay[0].due.After(now) {
			due = append(due, heap.Pop(&s.delay).(delayed))
		}
		if len(s.delay) > 0 {
			next = s.delay[0].due.Sub(now)
		}
		s.dmu.Unlock()
		for i := range due {
			s.deliver(due[i].dst, due[i].frame)
			due[i] = delayed{}
		}
		due = due[:0]
		timer.Reset(next)
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

package netstack

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/transport/internal/dgram"
	"github.com/embraft/embraft/wire"
)

// Defaults for Options fields left at zero.
const (
	DefaultSendQueue   = dgram.DefaultSendQueue   // frames queued per peer
	DefaultInboxSize   = dgram.DefaultInboxSize   // received frames not yet taken
	DefaultMaxDatagram = dgram.DefaultMaxDatagram // bytes: wire.DefaultMaxFrameBytes
)

var (
	// ErrConfig is wrapped by Attach's configuration errors.
	ErrConfig = errors.New("netstack: invalid options")
	// ErrTooLarge: Send was given a frame longer than MaxDatagram.
	ErrTooLarge = dgram.ErrTooLarge
)

// Options configures one node's Transport.
type Options struct {
	// ID is this node: it gets address 192.0.2.ID and port 9000+ID.
	ID raft.NodeID
	// ClusterID is the cluster every accepted frame must belong to.
	ClusterID wire.ClusterID
	// Peers lists the members; ID itself may be included.
	Peers []raft.NodeID
	// SendQueue bounds the frames queued per peer (default 16).
	SendQueue int
	// InboxSize bounds the received frames not yet taken (default 32).
	InboxSize int
	// MaxDatagram bounds a frame, sent or received (default 1200 bytes).
	MaxDatagram int
	// MaxEntries bounds the entries of a received MsgApp or MsgProp
	// (default wire.DefaultMaxEntries); keep it equal to the node's.
	MaxEntries int
	// Logger receives events; nil discards them.
	Logger *slog.Logger

	beforeTake func(raft.NodeID) // test hook: stall the senders
}

// Transport is one node's endpoint on a Switch: a UDP socket of the
// node's own gVisor stack. It implements transport.Transport.
type Transport struct {
	sw        *Switch
	port      *port
	conn      *gonet.UDPConn
	core      *dgram.Core
	log       *slog.Logger
	readDone  chan struct{}
	closeOnce sync.Once
}

var _ transport.Transport = (*Transport)(nil)

// Attach gives node opts.ID a stack on the switch (its NIC, MAC, static
// address and route: see NetworkFor), binds its UDP socket and starts the
// transport. A node ID can be attached again once its previous transport
// is closed (a restarted node).
func (s *Switch) Attach(opts Options) (*Transport, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := NetworkFor(opts.ID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	peers := make(map[raft.NodeID]netip.AddrPort, len(opts.Peers))
	dsts := map[netip.AddrPort]*net.UDPAddr{}
	for _, id := range opts.Peers {
		cfg, err := NetworkFor(id)
		if err != nil {
			return nil, fmt.Errorf("%w: peer %d: %w", ErrConfig, id, err)
		}
		ap := cfg.AddrPort()
		peers[id] = ap
		dsts[ap] = &net.UDPAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	p, err := s.attach(opts.ID)
	if err != nil {
		return nil, err
	}
	conn, err := listen(p)
	if err != nil {
		s.detach(p)
		return nil, err
	}
	t := &Transport{sw: s, port: p, conn: conn, readDone: make(chan struct{}),
		log: opts.Logger.With("transport", "netstack", "node", uint64(opts.ID))}
	t.core, err = dgram.New(dgram.Config{
		ID: opts.ID, Cluster: opts.ClusterID, Peers: peers,
		SendQueue: opts.SendQueue, InboxSize: opts.InboxSize, MaxDatagram: opts.MaxDatagram,
		MaxEntries: opts.MaxEntries, BeforeTake: opts.beforeTake,
		Write: func(to netip.AddrPort, frame []byte) error {
			_, err := conn.WriteTo(frame, dsts[to])
			return err
		},
	})
	if err != nil {
		_ = conn.Close()
		s.detach(p)
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	p.counters.Store(&t.core.Counters)
	go t.readLoop()
	t.log.Debug("netstack transport attached", "config", p.net.String())
	return t, nil
}

// listen binds the node's UDP socket on its stack.
func listen(p *port) (*gonet.UDPConn, error) {
	a := p.net.AddrPort()
	return gonet.DialUDP(p.stk, &tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(a.Addr().As4()), Port: a.Port()},
		nil, ipv4.ProtocolNumber)
}

func (t *Transport) readLoop() {
	defer close(t.readDone)
	buf := make([]byte, t.core.MaxDatagram()+1) // one more byte detects oversized datagrams
	for {
		n, from, err := t.conn.ReadFrom(buf)
		if err != nil {
			if t.core.Closed() || errors.Is(err, io.EOF) {
				return
			}
			t.log.Warn("netstack read failed", "err", err)
			time.Sleep(time.Millisecond) // never spin on a persistent error
			continue
		}
		var src netip.AddrPort
		if ua, ok := from.(*net.UDPAddr); ok {
			src = ua.AddrPort()
		}
		if v := t.core.Receive(buf[:n], src); v != dgram.Delivered {
			t.log.Debug("datagram dropped", "why", v.String(), "from", src.String(), "bytes", n)
		}
	}
}

// Send implements transport.Transport: it queues a copy of frame for peer
// to, or drops it (DroppedFull) when that peer's queue is full. It fails
// with transport.ErrUnknownPeer for a node that is not a peer and
// ErrTooLarge for a frame longer than MaxDatagram.
func (t *Transport) Send(to raft.NodeID, frame []byte) error { return t.core.Send(to, frame) }

// Inbox implements transport.Transport.
func (t *Transport) Inbox() <-chan []byte { return t.core.Inbox() }

// Stats implements transport.Transport. DroppedFault counts the frames
// from this node that the switch dropped (loss, partition, full delay
// line; ARP included, one count per destination).
func (t *Transport) Stats() transport.Stats { return t.core.Stats() }

// Network returns the node's network configuration.
func (t *Transport) Network() NetworkConfig { return t.port.net }

// LocalAddr returns the node's UDP address (192.0.2.ID:9000+ID).
func (t *Transport) LocalAddr() netip.AddrPort { return t.port.net.AddrPort() }

// Close implements transport.Transport: it closes the socket, waits for the
// transport's goroutines, detaches the node from the switch and destroys
// its stack. It is idempotent.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.core.Close()
		_ = t.conn.Close()
		<-t.readDone
		t.core.Wait()
		t.port.counters.Store(nil)
		t.sw.detach(t.port)
	})
	return nil
}

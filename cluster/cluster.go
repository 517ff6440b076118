// Package cluster is the one place where a configuration — storage kind ×
// transport kind × node count — becomes running nodes (the seed's
// configurations/mod.rs). A new storage or transport kind is added here and
// nowhere else; everything above this package is configuration-agnostic.
package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/storage/file"
	"github.com/embraft/embraft/storage/memory"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/transport/channel"
	"github.com/embraft/embraft/transport/netstack"
	"github.com/embraft/embraft/transport/udp"
	"github.com/embraft/embraft/wire"
)

// StorageKind names a storage implementation.
type StorageKind string

// TransportKind names a transport implementation.
type TransportKind string

const (
	// StorageMemory keeps each node's log in memory (lost with the process).
	StorageMemory StorageKind = "memory"
	// StorageFile keeps each node's log in DataDir/node-N, durably.
	StorageFile StorageKind = "file"

	// TransportChannel passes frames through bounded Go channels.
	TransportChannel TransportKind = "channel"
	// TransportNetstack sends UDP datagrams through gVisor's TCP/IP stack,
	// one stack per node, over an in-process Ethernet switch (192.0.2.0/24).
	TransportNetstack TransportKind = "netstack"
	// TransportUDP sends UDP datagrams through OS sockets on 127.0.0.1.
	TransportUDP TransportKind = "udp"
)

// StorageKinds and TransportKinds list what this build can run.
var (
	StorageKinds   = []StorageKind{StorageMemory, StorageFile}
	TransportKinds = []TransportKind{TransportChannel, TransportNetstack, TransportUDP}
)

// MaxNodes bounds the cluster size (one process, bounded memory).
const MaxNodes = 7

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("cluster: invalid config")

// Config describes a cluster to run in this process.
type Config struct {
	// Nodes is how many nodes run (IDs 1..Nodes).
	Nodes int
	// Voters, if set, makes only nodes 1..Voters the initial members; the
	// others start empty, ready to be added (zero: every node).
	Voters    int
	Storage   StorageKind
	Transport TransportKind
	ClusterID wire.ClusterID
	// Seed seeds every node's core and the transport's fault injection.
	Seed         uint64
	TickInterval time.Duration
	// DropRate drops this fraction of frames in the transport.
	DropRate float64
	// InboxSize bounds each node's inbox (frames).
	InboxSize int
	// Raft is a template for every node's core (ticks, bounds, pre-vote);
	// ID, Peers, Seed and Storage are set per node.
	Raft raft.Config
	// ProposalQueue and MaxPendingProposals bound each node's client
	// proposals (zero: node defaults).
	ProposalQueue       int
	MaxPendingProposals int
	// MemoryMaxEntries bounds each in-memory log (memory storage only).
	MemoryMaxEntries int
	// SnapshotEntries and SnapshotMargin set every node's automatic
	// snapshots and log compaction (zero: node defaults; see node.Config).
	SnapshotEntries int
	SnapshotMargin  int
	// DataDir holds one directory per node (file storage only).
	DataDir string
	// Faults are the netstack switch's initial fault settings (loss,
	// duplication, delay, jitter on every link).
	Faults netstack.Faults
	// NewStateMachine builds a node's state machine (at start and restart).
	NewStateMachine func(id raft.NodeID) node.StateMachine
	Logger          *slog.Logger
}

func (c *Config) validate() error {
	bad := func(why string) error { return errors.Join(ErrConfig, errors.New("cluster: "+why)) }
	switch {
	case c.Nodes < 1 || c.Nodes > MaxNodes:
		return bad("nodes must be 1.." + strconv.Itoa(MaxNodes) + ", got " + strconv.Itoa(c.Nodes))
	case !slices.Contains(StorageKinds, c.Storage):
		return bad("unknown storage " + strconv.Quote(string(c.Storage)) + " (have: " + kinds(StorageKinds) + ")")
	case !slices.Contains(TransportKinds, c.Transport):
		return bad("unknown transport " + strconv.Quote(string(c.Transport)) + " (have: " + kinds(TransportKinds) + ")")
	case c.Storage == StorageFile && c.DataDir == "":
		return bad("file storage needs DataDir")
	case c.NewStateMachine == nil:
		return bad("NewStateMachine must be set")
	case c.Voters < 0 || c.Voters > c.Nodes:
		return bad("voters must be 0..nodes")
	case c.DropRate < 0 || c.DropRate >= 1:
		return bad("drop rate must be in [0, 1)")
	}
	return nil
}

func kinds[K ~string](ks []K) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Cluster is a set of nodes running in this process.
type Cluster struct {
	cfg Config
	ctx context.Context
	ids []raft.NodeID

	// One of these backs the transport kind.
	net   *channel.Network
	sw    *netstack.Switch
	conns map[raft.NodeID]*net.UDPConn // pre-bound loopback sockets
	addrs map[raft.NodeID]string       // UDP peer addresses

	mu     sync.Mutex
	nodes  map[raft.NodeID]*node.Node
	stores map[raft.NodeID]*memory.Storage
	sms    map[raft.NodeID]node.StateMachine
}

// Start builds and starts every node. Cancelling ctx stops them all.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{cfg: cfg, ctx: ctx, nodes: map[raft.NodeID]*node.Node{},
		stores: map[raft.NodeID]*memory.Storage{}, sms: map[raft.NodeID]node.StateMachine{}}
	for i := 1; i <= cfg.Nodes; i++ {
		c.ids = append(c.ids, raft.NodeID(i))
	}
	if err := c.startNetwork(); err != nil {
		return nil, err
	}
	for _, id := range c.ids {
		if err := c.startNode(id); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// startNetwork creates what the transport kind shares between nodes.
func (c *Cluster) startNetwork() error {
	cfg := c.cfg
	switch cfg.Transport {
	case TransportChannel:
		c.net = channel.NewNetwork(channel.Options{InboxSize: cfg.InboxSize, DropRate: cfg.DropRate, Seed: cfg.Seed})
	case TransportNetstack:
		f := cfg.Faults
		f.Loss = max(f.Loss, cfg.DropRate)
		sw, err := netstack.NewSwitch(netstack.SwitchOptions{Seed: cfg.Seed, Faults: f, Logger: cfg.Logger})
		if err != nil {
			return err
		}
		c.sw = sw
	case TransportUDP:
		conns, addrs, err := udp.ListenLoopback(c.ids)
		if err != nil {
			return err
		}
		c.conns, c.addrs = conns, addrs
	}
	return nil
}

// openStorage opens member id's storage of the configured kind.
func (c *Cluster) openStorage(id raft.NodeID) (storage.Storage, error) {
	switch c.cfg.Storage {
	case StorageFile:
		return file.Open(c.NodeDir(id), file.Options{ClusterID: c.cfg.ClusterID, NodeID: id, Logger: c.cfg.Logger})
	default:
		st := c.stores[id]
		if st == nil {
			st = memory.New(memory.Options{MaxEntries: c.cfg.MemoryMaxEntries})
			c.stores[id] = st
		}
		st.Reopen()
		return st, nil
	}
}

// openTransport attaches member id to the configured network.
func (c *Cluster) openTransport(id raft.NodeID) (transport.Transport, error) {
	switch c.cfg.Transport {
	case TransportNetstack:
		return c.sw.Attach(netstack.Options{ID: id, ClusterID: c.cfg.ClusterID, Peers: c.ids,
			InboxSize: c.cfg.InboxSize, Logger: c.cfg.Logger})
	case TransportUDP:
		opts := udp.Options{ID: id, Peers: c.addrs, ClusterID: c.cfg.ClusterID, InboxSize: c.cfg.InboxSize, Logger: c.cfg.Logger}
		c.mu.Lock()
		if conn := c.conns[id]; conn != nil {
			opts.Conn = conn // first start: the socket bound in startNetwork
			delete(c.conns, id)
		} else {
			opts.Listen = c.addrs[id] // restart: bind the same port again
		}
		c.mu.Unlock()
		return udp.New(opts)
	default:
		return c.net.Endpoint(id), nil
	}
}

// NodeDir is member id's data directory (file storage).
func (c *Cluster) NodeDir(id raft.NodeID) string {
	return filepath.Join(c.cfg.DataDir, "node-"+strconv.FormatUint(uint64(id), 10))
}

// Switch is the simulated Ethernet switch (netstack transport), or nil.
func (c *Cluster) Switch() *netstack.Switch { return c.sw }

// Network exposes the channel transport's fault injection, or nil.
func (c *Cluster) Network() *channel.Network { return c.net }

// Addrs lists the nodes' UDP addresses (udp transport), or nil.
func (c *Cluster) Addrs() map[raft.NodeID]string { return c.addrs }

// startNode wires one node from the configured kinds.
func (c *Cluster) startNode(id raft.NodeID) error {
	rc := c.cfg.Raft
	rc.ID, rc.Peers, rc.Seed = id, c.ids, c.cfg.Seed
	if v := c.cfg.Voters; v > 0 {
		// Nodes 1..Voters bootstrap the cluster; the others start empty and
		// wait to be added (node.ChangeMembership). Every node's transport
		// knows all Nodes addresses: membership is Raft's configuration,
		// not the address book.
		rc.Peers = c.ids[:v]
		if int(id) > v {
			rc.Peers = nil
		}
	}
	st, err := c.openStorage(id)
	if err != nil {
		return err
	}
	tr, err := c.openTransport(id)
	if err != nil {
		_ = st.Close()
		return err
	}
	sm := c.cfg.NewStateMachine(id)
	n, err := node.Start(c.ctx, node.Config{
		Raft: rc, ClusterID: c.cfg.ClusterID, Storage: st, Transport: tr, StateMachine: sm,
		TickInterval: c.cfg.TickInterval, Logger: c.cfg.Logger,
		ProposalQueue: c.cfg.ProposalQueue, MaxPendingProposals: c.cfg.MaxPendingProposals,
		SnapshotEntries: c.cfg.SnapshotEntries, SnapshotMargin: c.cfg.SnapshotMargin,
	})
	if err != nil {
		_, _ = st.Close(), tr.Close()
		return err
	}
	c.mu.Lock()
	c.nodes[id], c.sms[id] = n, sm
	c.mu.Unlock()
	return nil
}

// IDs lists the members.
func (c *Cluster) IDs() []raft.NodeID { return c.ids }

// Node returns member id's current node.
func (c *Cluster) Node(id raft.NodeID) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// StateMachine returns member id's current state machine. Read it only
// while the node is stopped, or through methods safe for concurrent use.
func (c *Cluster) StateMachine(id raft.NodeID) node.StateMachine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sms[id]
}

// StopNode stops one member, as a crash would (memory storage survives in
// this process so that RestartNode can bring it back).
func (c *Cluster) StopNode(id raft.NodeID) error {
	n := c.Node(id)
	if n == nil {
		return errors.Join(ErrConfig, errors.New("cluster: no node "+strconv.FormatUint(uint64(id), 10)))
	}
	return n.Stop()
}

// RestartNode starts a stopped member again on its stored state, with a
// fresh state machine that the node restores from its stored snapshot, if
// any, and the log replays into.
func (c *Cluster) RestartNode(id raft.NodeID) error { return c.startNode(id) }

// Leader returns the leader agreed by the running nodes' own view of the
// highest term, or None.
func (c *Cluster) Leader() raft.NodeID {
	var lead raft.NodeID
	var term raft.Term
	for _, id := range c.ids {
		st := c.Node(id).Status()
		if !st.Stopped && st.Role == raft.RoleLeader && st.Term >= term {
			lead, term = id, st.Term
		}
	}
	return lead
}

// WaitLeader polls until a leader exists or ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) (raft.NodeID, error) {
	for {
		if l := c.Leader(); l != raft.None {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return raft.None, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Stop stops every node and waits for all of them.
func (c *Cluster) Stop() {
	c.mu.Lock()
	nodes := make([]*node.Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		nodes = append(nodes, n)
	}
	c.mu.Unlock()
	for _, n := range nodes {
		_ = n.Stop()
	}
	c.mu.Lock()
	for id, conn := range c.conns { // sockets of nodes that never started
		_ = conn.Close()
		delete(c.conns, id)
	}
	c.mu.Unlock()
	if c.sw != nil {
		_ = c.sw.Close()
	}
}

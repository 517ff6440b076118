// Package cluster is the one place where a configuration — storage kind ×
// transport kind × node count — becomes running nodes (the seed's
// configurations/mod.rs). A new storage or transport kind is added here and
// nowhere else; everything above this package is configuration-agnostic.
package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/storage/memory"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/transport/channel"
	"github.com/embraft/embraft/wire"
)

// StorageKind names a storage implementation.
type StorageKind string

// TransportKind names a transport implementation.
type TransportKind string

const (
	StorageMemory    StorageKind   = "memory"
	TransportChannel TransportKind = "channel"
)

// StorageKinds and TransportKinds list what this build can run.
var (
	StorageKinds   = []StorageKind{StorageMemory}
	TransportKinds = []TransportKind{TransportChannel}
)

// MaxNodes bounds the cluster size (one process, bounded memory).
const MaxNodes = 7

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("cluster: invalid config")

// Config describes a cluster to run in this process.
type Config struct {
	Nodes     int
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
	// NewStateMachine builds a node's state machine (at start and restart).
	NewStateMachine func(id raft.NodeID) node.StateMachine
	Logger          *slog.Logger
}

func (c *Config) validate() error {
	bad := func(why string) error { return errors.Join(ErrConfig, errors.New("cluster: "+why)) }
	switch {
	case c.Nodes < 1 || c.Nodes > MaxNodes:
		return bad("nodes must be 1.." + strconv.Itoa(MaxNodes) + ", got " + strconv.Itoa(c.Nodes))
	case c.Storage != StorageMemory:
		return bad("unknown storage " + strconv.Quote(string(c.Storage)) + " (have: " + kinds(StorageKinds) + ")")
	case c.Transport != TransportChannel:
		return bad("unknown transport " + strconv.Quote(string(c.Transport)) + " (have: " + kinds(TransportKinds) + ")")
	case c.NewStateMachine == nil:
		return bad("NewStateMachine must be set")
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
	net *channel.Network

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
	c.net = channel.NewNetwork(channel.Options{InboxSize: cfg.InboxSize, DropRate: cfg.DropRate, Seed: cfg.Seed})
	for _, id := range c.ids {
		c.stores[id] = memory.New(memory.Options{MaxEntries: cfg.MemoryMaxEntries})
		if err := c.startNode(id); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// startNode wires one node from the configured kinds.
func (c *Cluster) startNode(id raft.NodeID) error {
	rc := c.cfg.Raft
	rc.ID, rc.Peers, rc.Seed = id, c.ids, c.cfg.Seed
	var st storage.Storage = c.stores[id]
	var tr transport.Transport = c.net.Endpoint(id)
	sm := c.cfg.NewStateMachine(id)
	n, err := node.Start(c.ctx, node.Config{
		Raft: rc, ClusterID: c.cfg.ClusterID, Storage: st, Transport: tr, StateMachine: sm,
		TickInterval: c.cfg.TickInterval, Logger: c.cfg.Logger,
		ProposalQueue: c.cfg.ProposalQueue, MaxPendingProposals: c.cfg.MaxPendingProposals,
	})
	if err != nil {
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

// Network exposes the channel transport's fault injection.
func (c *Cluster) Network() *channel.Network { return c.net }

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
// fresh state machine that the log replays into.
func (c *Cluster) RestartNode(id raft.NodeID) error {
	c.stores[id].Reopen()
	return c.startNode(id)
}

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
}

package bench

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/transport/channel"
)

// countSM applies nothing but a count: the comparison measures replication.
type countSM struct{ n atomic.Uint64 }

func (c *countSM) Apply(raft.Index, []byte) []byte { c.n.Add(1); return nil }
func (c *countSM) Snapshot(io.Writer) error        { return nil }
func (c *countSM) Restore(io.Reader) error         { return nil }

// memoryMaxEntries lifts memory storage's default bound (2^20 entries)
// so that a few seconds at several hundred thousand ops/s never hits
// storage.ErrFull; nothing is compacted, as for the other libraries.
const memoryMaxEntries = 1 << 24

// EmbraftInbox, if non-zero, overrides the channel transport's inbox bound
// (frames per node; embraft's default is 32). For experiments only: the
// comparison's rows use embraft's defaults.
var EmbraftInbox int

type embraftCluster struct {
	c      *cluster.Cluster // memory: through the cluster package
	nodes  []*node.Node     // durable: node.Start per node
	syncs  []*syncCounter
	leader *node.Node
}

func startEmbraft(ctx context.Context, o Options) (Cluster, error) {
	if o.Dir != "" {
		return startEmbraftNodes(ctx, o, func(id raft.NodeID) (storage.Storage, error) {
			return newEmbraftFileStorage(o.Dir, id)
		})
	}
	c, err := cluster.Start(ctx, cluster.Config{
		Nodes: o.Nodes, Storage: cluster.StorageMemory, Transport: cluster.TransportChannel,
		Seed: 1, TickInterval: o.Tick, MemoryMaxEntries: memoryMaxEntries, InboxSize: EmbraftInbox,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return &countSM{} },
	})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	lead, err := c.WaitLeader(wctx)
	cancel()
	if err != nil {
		c.Stop()
		return nil, err
	}
	return &embraftCluster{c: c, leader: c.Node(lead)}, nil
}

// startEmbraftNodes wires nodes the way cluster does, but with a storage
// of the caller's choosing (each wrapped to count Sync calls) and the
// channel transport: node.Start directly, as an application embedding
// embraft with its own storage would.
func startEmbraftNodes(ctx context.Context, o Options, newStorage func(raft.NodeID) (storage.Storage, error)) (Cluster, error) {
	ec := &embraftCluster{}
	net := channel.NewNetwork(channel.Options{InboxSize: EmbraftInbox})
	var ids []raft.NodeID
	for i := 1; i <= o.Nodes; i++ {
		ids = append(ids, raft.NodeID(i))
	}
	for _, id := range ids {
		st, err := newStorage(id)
		if err != nil {
			ec.Stop()
			return nil, err
		}
		sc := &syncCounter{Storage: st}
		n, err := node.Start(ctx, node.Config{
			Raft:    raft.Config{ID: id, Peers: ids, Seed: 1},
			Storage: sc, Transport: net.Endpoint(id), StateMachine: &countSM{},
			TickInterval: o.Tick,
		})
		if err != nil {
			_ = st.Close()
			ec.Stop()
			return nil, err
		}
		ec.nodes = append(ec.nodes, n)
		ec.syncs = append(ec.syncs, sc)
	}
	err := waitFor(ctx, 10*time.Second, func() bool {
		for _, n := range ec.nodes {
			if n.Status().Role == raft.RoleLeader {
				ec.leader = n
				return true
			}
		}
		return false
	})
	if err != nil {
		ec.Stop()
		return nil, err
	}
	return ec, nil
}

func (e *embraftCluster) Propose(ctx context.Context, cmd []byte) error {
	_, err := e.leader.Propose(ctx, cmd)
	return err
}

func (e *embraftCluster) Term() uint64 {
	var t raft.Term
	for _, n := range e.all() {
		t = max(t, n.Status().Term)
	}
	return uint64(t)
}

// Dropped counts frames lost to full inboxes (the channel transport's
// bound, 32 frames per node by default).
func (e *embraftCluster) Dropped() uint64 {
	var d uint64
	for _, n := range e.all() {
		d += n.Status().Transport.DroppedFull
	}
	return d
}

func (e *embraftCluster) all() []*node.Node {
	ns := e.nodes
	if e.c != nil {
		for _, id := range e.c.IDs() {
			ns = append(ns, e.c.Node(id))
		}
	}
	return ns
}

func (e *embraftCluster) Syncs() uint64 {
	var s uint64
	for _, c := range e.syncs {
		s += c.n.Load()
	}
	return s
}

func (e *embraftCluster) Stop() error {
	if e.c != nil {
		e.c.Stop()
		return nil
	}
	var errs []error
	for _, n := range e.nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}

// syncCounter counts fsyncs: the storage's own fsync counter when it has
// one (file storage: segment, directory and HARDSTATE fsyncs), otherwise
// the runtime's Sync calls (one per Ready that must be durable). It is
// updated from the node's goroutine, the storage's only user.
type syncCounter struct {
	storage.Storage
	n     atomic.Uint64 // fsyncs
	calls atomic.Uint64 // Sync calls
}

func (s *syncCounter) Sync() error {
	s.calls.Add(1)
	err := s.Storage.Sync()
	if f, ok := s.Storage.(interface{ fsyncs() uint64 }); ok {
		s.n.Store(f.fsyncs())
	} else {
		s.n.Add(1)
	}
	return err
}

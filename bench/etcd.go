package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// etcd-io/raft settings. ElectionTick/HeartbeatTick are etcd's defaults
// (etcd server: --heartbeat-interval 100ms, --election-timeout 1000ms, i.e.
// 10 and 1 ticks of 100 ms); here a tick is Options.Tick (10 ms, as
// embraft's), so heartbeats go out every 10 ms and elections start after
// 100-200 ms. MaxSizePerMsg 1 MiB and MaxInflightMsgs 256 are raftexample's
// (etcd server uses 1 MiB and 512); MaxUncommittedEntriesSize 1 GiB is
// raftexample's; CheckQuorum and PreVote are on as in etcd server.
const (
	etcdElectionTick   = 10
	etcdHeartbeatTick  = 1
	etcdMaxSizePerMsg  = 1 << 20
	etcdMaxInflight    = 256
	etcdMaxUncommitted = 1 << 30
	// etcdInbox is each node's receive queue, rafthttp's per-peer stream
	// buffer (4096 messages). A full queue drops the message and reports
	// the peer unreachable, as rafthttp does.
	etcdInbox = 4096
)

// EtcdMarshal makes the etcd driver encode every message with its protobuf
// Marshal and decode it on receipt, as a network transport would (embraft's
// channel transport always encodes; hashicorp's InmemTransport never does).
// Off by default: in-process drivers, etcd's own rafttest included, pass
// messages as structs.
var EtcdMarshal bool

type etcdCluster struct {
	nodes  []*etcdNode
	leader atomic.Pointer[etcdNode]
	stop   chan struct{}
	wg     sync.WaitGroup
	reqID  atomic.Uint64
	drops  atomic.Uint64
}

type etcdNode struct {
	c       *etcdCluster
	id      uint64
	node    raft.Node
	storage *raft.MemoryStorage
	inbox   chan etcdFrame

	mu      sync.Mutex
	waiters map[uint64]chan struct{}
	applied atomic.Uint64
}

// etcdFrame is a message in flight: the struct, or its encoding.
type etcdFrame struct {
	m   raftpb.Message
	buf []byte
}

func startEtcd(ctx context.Context, o Options) (Cluster, error) {
	if o.Dir != "" {
		return nil, ErrUnsupported
	}
	c := &etcdCluster{stop: make(chan struct{})}
	peers := make([]raft.Peer, o.Nodes)
	for i := range peers {
		peers[i] = raft.Peer{ID: uint64(i + 1)}
	}
	for i := range o.Nodes {
		st := raft.NewMemoryStorage()
		n := &etcdNode{c: c, id: uint64(i + 1), storage: st, inbox: make(chan etcdFrame, etcdInbox),
			waiters: map[uint64]chan struct{}{}}
		n.node = raft.StartNode(&raft.Config{
			ID: n.id, ElectionTick: etcdElectionTick, HeartbeatTick: etcdHeartbeatTick,
			Storage: st, MaxSizePerMsg: etcdMaxSizePerMsg, MaxInflightMsgs: etcdMaxInflight,
			MaxUncommittedEntriesSize: etcdMaxUncommitted, CheckQuorum: true, PreVote: true,
			Logger: nopLogger{},
		}, peers)
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		c.wg.Add(2)
		go n.readyLoop(o.Tick)
		go n.receiveLoop()
	}
	err := waitFor(ctx, 10*time.Second, func() bool {
		for _, n := range c.nodes {
			if n.node.Status().RaftState == raft.StateLeader {
				c.leader.Store(n)
				return true
			}
		}
		return false
	})
	if err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// readyLoop is raftexample's serveChannels: tick, and handle every Ready
// in order — persist (MemoryStorage: SetHardState, Append), send, apply,
// Advance.
func (n *etcdNode) readyLoop(tick time.Duration) {
	defer n.c.wg.Done()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			n.node.Tick()
		case rd := <-n.node.Ready():
			if !raft.IsEmptyHardState(rd.HardState) {
				_ = n.storage.SetHardState(rd.HardState)
			}
			_ = n.storage.Append(rd.Entries)
			n.send(rd.Messages)
			n.apply(rd.CommittedEntries)
			n.node.Advance()
		case <-n.c.stop:
			n.node.Stop()
			return
		}
	}
}

// receiveLoop steps received messages into the node, as rafthttp's stream
// readers do (Transport.Process -> Node.Step).
func (n *etcdNode) receiveLoop() {
	defer n.c.wg.Done()
	ctx := context.Background()
	for {
		select {
		case f := <-n.inbox:
			if f.buf != nil {
				if err := f.m.Unmarshal(f.buf); err != nil {
					continue
				}
			}
			_ = n.node.Step(ctx, f.m)
		case <-n.c.stop:
			return
		}
	}
}

func (n *etcdNode) send(msgs []raftpb.Message) {
	for _, m := range msgs {
		to := n.c.nodes[m.To-1]
		f := etcdFrame{m: m}
		if EtcdMarshal {
			buf, err := m.Marshal()
			if err != nil {
				continue
			}
			f = etcdFrame{buf: buf}
		}
		select {
		case to.inbox <- f:
		default:
			n.c.drops.Add(1)
			n.node.ReportUnreachable(m.To)
		}
	}
}

func (n *etcdNode) apply(ents []raftpb.Entry) {
	for i := range ents {
		e := &ents[i]
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) < 8 {
				continue // the empty entry a new leader appends
			}
			id := binary.LittleEndian.Uint64(e.Data)
			n.applied.Add(1) // the state machine: a count
			n.mu.Lock()
			ch := n.waiters[id]
			delete(n.waiters, id)
			n.mu.Unlock()
			if ch != nil {
				ch <- struct{}{}
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err == nil {
				n.node.ApplyConfChange(cc)
			}
		}
	}
}

var errEtcdStopped = errors.New("bench: etcd cluster stopped")

// Propose registers a waiter under a fresh request ID carried in the
// entry's first 8 bytes, proposes at the leader and waits for the apply
// loop to see the ID (etcd server's wait.Wait pattern).
func (c *etcdCluster) Propose(ctx context.Context, cmd []byte) error {
	n := c.leader.Load()
	id := c.reqID.Add(1)
	data := make([]byte, 8+len(cmd))
	binary.LittleEndian.PutUint64(data, id)
	copy(data[8:], cmd)
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.waiters[id] = ch
	n.mu.Unlock()
	forget := func() {
		n.mu.Lock()
		delete(n.waiters, id)
		n.mu.Unlock()
	}
	if err := n.node.Propose(ctx, data); err != nil {
		forget()
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		forget()
		return ctx.Err()
	case <-c.stop:
		forget()
		return errEtcdStopped
	}
}

func (c *etcdCluster) Term() uint64 {
	var t uint64
	for _, n := range c.nodes {
		t = max(t, n.node.Status().Term)
	}
	return t
}

func (c *etcdCluster) Syncs() uint64 { return 0 }

// Dropped counts messages lost to full inboxes.
func (c *etcdCluster) Dropped() uint64 { return c.drops.Load() }

func (c *etcdCluster) Stop() error {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.wg.Wait()
	return nil
}

// nopLogger discards etcd-io/raft's log output.
type nopLogger struct{}

func (nopLogger) Debug(...any)            {}
func (nopLogger) Debugf(string, ...any)   {}
func (nopLogger) Error(...any)            {}
func (nopLogger) Errorf(string, ...any)   {}
func (nopLogger) Info(...any)             {}
func (nopLogger) Infof(string, ...any)    {}
func (nopLogger) Warning(...any)          {}
func (nopLogger) Warningf(string, ...any) {}
func (nopLogger) Fatal(v ...any)          { panic(v) }
func (nopLogger) Fatalf(f string, v ...any) {
	panic(f)
}
func (nopLogger) Panic(v ...any)            { panic(v) }
func (nopLogger) Panicf(f string, v ...any) { panic(f) }

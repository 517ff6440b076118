package bench

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// hashicorpApplyTimeout is the enqueue timeout passed to Raft.Apply.
const hashicorpApplyTimeout = 10 * time.Second

// hashicorpLogCache is the LogCache size Consul and Nomad put in front of
// BoltStore (the leader reads recent entries back to replicate them).
const hashicorpLogCache = 512

type hashicorpCluster struct {
	rafts  []*raft.Raft
	trans  []*raft.InmemTransport
	bolts  []*raftboltdb.BoltStore
	syncs  []*boltSyncCounter
	leader *raft.Raft
}

// hashicorpFSM applies nothing but a count.
type hashicorpFSM struct{ n atomic.Uint64 }

func (f *hashicorpFSM) Apply(*raft.Log) any                 { f.n.Add(1); return nil }
func (f *hashicorpFSM) Snapshot() (raft.FSMSnapshot, error) { return hashicorpSnap{}, nil }
func (f *hashicorpFSM) Restore(r io.ReadCloser) error       { return r.Close() }

type hashicorpSnap struct{}

func (hashicorpSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (hashicorpSnap) Release()                          {}

// startHashicorp starts nodes with raft.DefaultConfig() (heartbeat and
// election timeout 1 s, MaxAppendEntries 64, BatchApplyCh off, snapshots
// every 8192 entries checked every 120-240 s: none during a run), a null
// logger, InmemSnapshotStore and InmemTransport connected pairwise; with
// Options.Dir, raft-boltdb/v2's BoltStore (fsync on) behind a 512-entry
// LogCache as LogStore and StableStore.
func startHashicorp(ctx context.Context, o Options) (Cluster, error) {
	h := &hashicorpCluster{}
	var servers []raft.Server
	addrs := make([]raft.ServerAddress, o.Nodes)
	for i := range o.Nodes {
		id := raft.ServerID(strconv.Itoa(i + 1))
		addr, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		addrs[i] = addr
		h.trans = append(h.trans, tr)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: id, Address: addr})
	}
	for i, a := range h.trans {
		for j, b := range h.trans {
			if i != j {
				a.Connect(addrs[j], b)
			}
		}
	}
	for i := range o.Nodes {
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		conf.Logger = hclog.NewNullLogger()
		var logs raft.LogStore
		var stable raft.StableStore
		if o.Dir != "" {
			bs, err := raftboltdb.NewBoltStore(filepath.Join(o.Dir, "hashicorp-"+strconv.Itoa(i+1)+".db"))
			if err != nil {
				_ = h.Stop()
				return nil, err
			}
			h.bolts = append(h.bolts, bs)
			sc := &boltSyncCounter{BoltStore: bs}
			h.syncs = append(h.syncs, sc)
			cache, err := raft.NewLogCache(hashicorpLogCache, sc)
			if err != nil {
				_ = h.Stop()
				return nil, err
			}
			logs, stable = cache, sc
		} else {
			st := raft.NewInmemStore()
			logs, stable = st, st
		}
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(conf, logs, stable, snaps, h.trans[i], raft.Configuration{Servers: servers}); err != nil {
			_ = h.Stop()
			return nil, err
		}
		r, err := raft.NewRaft(conf, &hashicorpFSM{}, logs, stable, snaps, h.trans[i])
		if err != nil {
			_ = h.Stop()
			return nil, err
		}
		h.rafts = append(h.rafts, r)
	}
	err := waitFor(ctx, 15*time.Second, func() bool {
		for _, r := range h.rafts {
			if r.State() == raft.Leader {
				h.leader = r
				return true
			}
		}
		return false
	})
	if err != nil {
		_ = h.Stop()
		return nil, err
	}
	return h, nil
}

func (h *hashicorpCluster) Propose(_ context.Context, cmd []byte) error {
	return h.leader.Apply(cmd, hashicorpApplyTimeout).Error()
}

func (h *hashicorpCluster) Term() uint64 {
	var t uint64
	for _, r := range h.rafts {
		v, _ := strconv.ParseUint(r.Stats()["term"], 10, 64)
		t = max(t, v)
	}
	return t
}

func (h *hashicorpCluster) Syncs() uint64 {
	var s uint64
	for _, c := range h.syncs {
		s += c.n.Load()
	}
	return s
}

func (h *hashicorpCluster) Stop() error {
	var errs []error
	for _, r := range h.rafts {
		errs = append(errs, r.Shutdown().Error())
	}
	for _, t := range h.trans {
		errs = append(errs, t.Close())
	}
	for _, b := range h.bolts {
		errs = append(errs, b.Close())
	}
	return errors.Join(errs...)
}

// boltFsyncsPerTx: bbolt (v1.3.5) commits a read-write transaction with two
// fdatasync calls, one after writing the dirty pages and one after writing
// the meta page (tx.write, tx.writeMeta), plus one more when the file grows.
const boltFsyncsPerTx = 2

// boltSyncCounter counts BoltStore's write transactions: every StoreLog(s),
// DeleteRange, Set and SetUint64 is one bbolt transaction, committed with
// boltFsyncsPerTx fdatasyncs.
type boltSyncCounter struct {
	*raftboltdb.BoltStore
	n atomic.Uint64
}

func (b *boltSyncCounter) StoreLog(l *raft.Log) error {
	b.n.Add(boltFsyncsPerTx)
	return b.BoltStore.StoreLog(l)
}

func (b *boltSyncCounter) StoreLogs(ls []*raft.Log) error {
	b.n.Add(boltFsyncsPerTx)
	return b.BoltStore.StoreLogs(ls)
}

func (b *boltSyncCounter) DeleteRange(lo, hi uint64) error {
	b.n.Add(boltFsyncsPerTx)
	return b.BoltStore.DeleteRange(lo, hi)
}

func (b *boltSyncCounter) Set(k, v []byte) error {
	b.n.Add(boltFsyncsPerTx)
	return b.BoltStore.Set(k, v)
}

func (b *boltSyncCounter) SetUint64(k []byte, v uint64) error {
	b.n.Add(boltFsyncsPerTx)
	return b.BoltStore.SetUint64(k, v)
}

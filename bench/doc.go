// Package bench drives identical workloads on embraft, etcd-io/raft and
// hashicorp/raft running in one process, for the comparison in
// docs/BENCHMARKS.md. It is a nested module so that the comparison's
// dependencies (etcd-io/raft, hashicorp/raft, raft-boltdb) never reach
// embraft's own go.mod.
//
// Every library is driven the way its users drive it:
//
//   - embraft: cluster.Start (memory storage, channel transport) or, for the
//     durable variant, node.Start per node; Node.Propose at the leader.
//   - etcd-io/raft: raft.StartNode per node and a raftexample-style Ready
//     loop (append to raft.MemoryStorage, send, apply, Advance); messages
//     travel over bounded in-process channels; proposals wait for their
//     request ID to be applied, as etcd's server does.
//   - hashicorp/raft: raft.NewRaft with InmemStore, InmemSnapshotStore and
//     InmemTransport (or raft-boltdb's BoltStore for the durable variant);
//     Raft.Apply(cmd, timeout).Error() at the leader.
//
// Run the comparison with `go run ./cmd/compare` from this directory.
package bench

import (
	"context"
	"errors"
	"time"
)

// Options describes one cluster to start.
type Options struct {
	// Nodes is the cluster size.
	Nodes int
	// Dir, if set, selects durable storage under this directory.
	Dir string
	// Tick is the logical clock tick for embraft and etcd-io/raft.
	Tick time.Duration
}

// Cluster is a running cluster of one library with a known leader.
type Cluster interface {
	// Propose replicates cmd through the leader and returns once it is
	// committed and applied on the leader. cmd is not modified.
	Propose(ctx context.Context, cmd []byte) error
	// Term is the highest term any node reports (leader changes show up
	// as a term increase).
	Term() uint64
	// Syncs counts fsync-equivalent flushes across all nodes so far (0 for
	// memory storage). See each driver for how it counts.
	Syncs() uint64
	// Stop stops every node and releases its storage.
	Stop() error
}

// Library names a driver.
type Library string

const (
	Embraft   Library = "embraft"
	Etcd      Library = "etcd-raft"
	Hashicorp Library = "hashicorp"
)

// Libraries lists the drivers in table order.
var Libraries = []Library{Embraft, Etcd, Hashicorp}

// ErrUnsupported: the driver has no such configuration (yet).
var ErrUnsupported = errors.New("bench: configuration not supported")

// Start starts a cluster of lib and waits until it has a leader.
func Start(ctx context.Context, lib Library, o Options) (Cluster, error) {
	if o.Tick <= 0 {
		o.Tick = 10 * time.Millisecond
	}
	switch lib {
	case Embraft:
		return startEmbraft(ctx, o)
	case Etcd:
		return startEtcd(ctx, o)
	case Hashicorp:
		return startHashicorp(ctx, o)
	}
	return nil, errors.New("bench: unknown library " + string(lib))
}

// waitFor polls cond every 2 ms until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("bench: no leader within " + timeout.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

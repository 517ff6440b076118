// Package transporttest holds test helpers shared by the transports'
// tests: wire-encoded frames, receiving with a deadline, and a small Raft
// cluster of node.Nodes over any transport.Transport.
package transporttest

import (
	"context"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/memory"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/wire"
)

// Heartbeat returns the frame of a MsgHeartbeat from -> to in term 1.
func Heartbeat(t testing.TB, cluster wire.ClusterID, from, to raft.NodeID, commit raft.Index) []byte {
	t.Helper()
	m := raft.Message{Type: raft.MsgHeartbeat, From: from, To: to, Term: 1, Commit: commit}
	b, err := wire.AppendMessage(nil, cluster, &m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Decode decodes a frame of cluster, failing the test if it is bad.
func Decode(t testing.TB, cluster wire.ClusterID, f []byte) raft.Message {
	t.Helper()
	var m raft.Message
	if err := wire.DecodeMessage(f, cluster, &m, wire.Limits{}); err != nil {
		t.Fatalf("received a frame that does not decode: %v", err)
	}
	return m
}

// Recv waits up to d for a frame from tr's inbox.
func Recv(t testing.TB, tr transport.Transport, d time.Duration) []byte {
	t.Helper()
	select {
	case f := <-tr.Inbox():
		return f
	case <-time.After(d):
		t.Fatalf("no frame within %v (stats %+v)", d, tr.Stats())
		return nil
	}
}

// NoFrame fails if tr's inbox yields a frame within d.
func NoFrame(t testing.TB, tr transport.Transport, d time.Duration) {
	t.Helper()
	select {
	case f := <-tr.Inbox():
		t.Fatalf("unexpected frame %x", f)
	case <-time.After(d):
	}
}

// Eventually polls cond every millisecond until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Recorder is a state machine that remembers what it applied.
type Recorder struct {
	mu   sync.Mutex
	cmds []string
}

// Apply implements node.StateMachine.
func (r *Recorder) Apply(i raft.Index, cmd []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, string(cmd))
	return []byte("ok:" + strconv.FormatUint(uint64(i), 10))
}

// Snapshot implements node.StateMachine.
func (r *Recorder) Snapshot(io.Writer) error { return nil }

// Restore implements node.StateMachine.
func (r *Recorder) Restore(io.Reader) error { return nil }

// Cluster is a set of node.Nodes in this process.
type Cluster struct {
	IDs   []raft.NodeID
	Nodes map[raft.NodeID]*node.Node
}

// StartCluster starts one node per id over the transports made by
// newTransport, with 2 ms ticks; the test's cleanup stops them.
func StartCluster(t testing.TB, ids []raft.NodeID, cluster wire.ClusterID, newTransport func(raft.NodeID) transport.Transport) *Cluster {
	t.Helper()
	c := &Cluster{IDs: ids, Nodes: map[raft.NodeID]*node.Node{}}
	t.Cleanup(c.Stop)
	for _, id := range ids {
		n, err := node.Start(context.Background(), node.Config{
			Raft:      raft.Config{ID: id, Peers: ids, Seed: 7},
			ClusterID: cluster, Storage: memory.New(memory.Options{}), Transport: newTransport(id),
			StateMachine: &Recorder{}, TickInterval: 2 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes[id] = n
	}
	return c
}

// Stop stops every node (closing its transport).
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		_ = n.Stop()
	}
}

// Leader returns the leader of the highest term among the nodes in
// among (all nodes if empty), or None.
func (c *Cluster) Leader(among ...raft.NodeID) raft.NodeID {
	if len(among) == 0 {
		among = c.IDs
	}
	var lead raft.NodeID
	var term raft.Term
	for _, id := range among {
		st := c.Nodes[id].Status()
		if st.Role == raft.RoleLeader && st.Term >= term {
			lead, term = id, st.Term
		}
	}
	return lead
}

// WaitLeader waits up to d for a leader among the given nodes.
func (c *Cluster) WaitLeader(t testing.TB, d time.Duration, among ...raft.NodeID) raft.NodeID {
	t.Helper()
	var lead raft.NodeID
	Eventually(t, d, "a leader", func() bool { lead = c.Leader(among...); return lead != raft.None })
	return lead
}

// ProposeRetry proposes cmd at node id until it is applied or d passes.
func (c *Cluster) ProposeRetry(t testing.TB, id raft.NodeID, cmd string, d time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		var res []byte
		res, err = c.Nodes[id].Propose(ctx, []byte(cmd))
		cancel()
		if err == nil {
			return res
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("command %q never applied at node %d (last error %v)", cmd, id, err)
	return nil
}

// WaitConverged waits up to d until the given nodes (all if none given)
// have applied the same sequence: equal AppliedHash at equal Applied.
func (c *Cluster) WaitConverged(t testing.TB, d time.Duration, among ...raft.NodeID) node.Status {
	t.Helper()
	if len(among) == 0 {
		among = c.IDs
	}
	var last []node.Status
	deadline := time.Now().Add(d)
	for {
		last = last[:0]
		same := true
		for _, id := range among {
			st := c.Nodes[id].Status()
			if len(last) > 0 && (st.AppliedHash != last[0].AppliedHash || st.Applied != last[0].Applied) {
				same = false
			}
			last = append(last, st)
		}
		if same && last[0].Applied > 0 {
			return last[0]
		}
		if time.Now().After(deadline) {
			for _, st := range last {
				t.Logf("node %d: role %v term %d applied %d hash %x transport %+v", st.ID, st.Role, st.Term, st.Applied, st.AppliedHash, st.Transport)
			}
			t.Fatalf("nodes did not converge within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

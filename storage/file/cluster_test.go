package file_test

import (
	"context"
	"hash/fnv"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
	"github.com/embraft/embraft/transport/channel"
)

// sumMachine is a tiny state machine: a running hash of applied commands.
type sumMachine struct {
	mu sync.Mutex
	h  uint64
	n  int
}

func (m *sumMachine) Apply(i raft.Index, cmd []byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := fnv.New64a()
	_, _ = f.Write([]byte(strconv.FormatUint(m.h, 10)))
	_, _ = f.Write(cmd)
	m.h, m.n = f.Sum64(), m.n+1
	return []byte(strconv.FormatUint(uint64(i), 10))
}
func (m *sumMachine) Snapshot(io.Writer) error { return nil }
func (m *sumMachine) Restore(io.Reader) error  { return nil }

func (m *sumMachine) state() (uint64, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.h, m.n
}

type fileCluster struct {
	t     *testing.T
	dirs  map[raft.NodeID]string
	ids   []raft.NodeID
	nodes map[raft.NodeID]*node.Node
	sms   map[raft.NodeID]*sumMachine
}

const clusterID = 42

// start opens every node's directory and starts the nodes on it.
func (c *fileCluster) start(seed uint64) {
	c.t.Helper()
	net := channel.NewNetwork(channel.Options{Seed: seed})
	c.nodes, c.sms = map[raft.NodeID]*node.Node{}, map[raft.NodeID]*sumMachine{}
	for _, id := range c.ids {
		st, err := file.Open(c.dirs[id], file.Options{ClusterID: clusterID, NodeID: id, SegmentBytes: 16 << 10})
		if err != nil {
			c.t.Fatalf("node %d: %v", id, err)
		}
		c.sms[id] = &sumMachine{}
		n, err := node.Start(context.Background(), node.Config{
			Raft: raft.Config{ID: id, Peers: c.ids, Seed: seed}, ClusterID: clusterID,
			Storage: st, Transport: net.Endpoint(id), StateMachine: c.sms[id], TickInterval: 2 * time.Millisecond,
		})
		if err != nil {
			c.t.Fatalf("node %d: %v", id, err)
		}
		c.nodes[id] = n
	}
}

func (c *fileCluster) stop() {
	for _, n := range c.nodes {
		if err := n.Stop(); err != nil {
			c.t.Errorf("node %d stopped with %v", n.ID(), err)
		}
	}
}

func (c *fileCluster) propose(cmd string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for k := 0; time.Now().Before(deadline); k++ {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.nodes[c.ids[k%len(c.ids)]].Propose(ctx, []byte(cmd))
		cancel()
		if err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("%q never committed", cmd)
}

// converge waits until every node applied the same entries, and returns
// their statuses.
func (c *fileCluster) converge() map[raft.NodeID]node.Status {
	c.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		sts := map[raft.NodeID]node.Status{}
		same := true
		for _, id := range c.ids {
			sts[id] = c.nodes[id].Status()
			a, b := sts[id], sts[c.ids[0]]
			same = same && a.Applied == b.Applied && a.AppliedHash == b.AppliedHash && a.Applied == a.Commit
		}
		if same {
			return sts
		}
	}
	c.t.Fatal("nodes did not converge")
	return nil
}

// TestClusterRestart runs five nodes on file storage, stops them all,
// reopens every directory and checks that each node resumes its term and
// log, replays its state machine to the same state, and commits more.
func TestClusterRestart(t *testing.T) {
	c := &fileCluster{t: t, dirs: map[raft.NodeID]string{}, ids: []raft.NodeID{1, 2, 3, 4, 5}}
	base := t.TempDir()
	for _, id := range c.ids {
		c.dirs[id] = filepath.Join(base, "node"+strconv.Itoa(int(id)))
	}
	c.start(1)
	for i := range 60 {
		c.propose("first-" + strconv.Itoa(i))
	}
	before := c.converge()
	wantHash, wantN := c.sms[1].state()
	c.stop()

	c.start(2)
	defer c.stop()
	for _, id := range c.ids {
		st, b := c.nodes[id].Status(), before[id]
		if st.Term < b.Term || st.LastIndex < b.LastIndex || st.Commit < b.Commit {
			t.Fatalf("node %d restarted at term %d last %d commit %d, before term %d last %d commit %d",
				id, st.Term, st.LastIndex, st.Commit, b.Term, b.LastIndex, b.Commit)
		}
	}
	after := c.converge()
	for _, id := range c.ids {
		if after[id].Applied == before[id].Applied && after[id].AppliedHash != before[id].AppliedHash {
			t.Fatalf("node %d replayed entries 1..%d to another applied hash", id, after[id].Applied)
		}
	}
	for _, id := range c.ids {
		if h, n := c.sms[id].state(); n < wantN {
			t.Fatalf("node %d replayed %d commands, want at least %d", id, n, wantN)
		} else if n == wantN && h != wantHash {
			t.Fatalf("node %d replayed to another state", id)
		}
	}
	for i := range 20 {
		c.propose("second-" + strconv.Itoa(i))
	}
	final := c.converge()
	h1, n1 := c.sms[1].state()
	for _, id := range c.ids {
		if h, n := c.sms[id].state(); h != h1 || n != n1 || n < wantN+20 {
			t.Fatalf("node %d state machine: %d commands, want %d on every node (at least %d)", id, n, n1, wantN+20)
		}
	}
	t.Logf("before restart: applied %d; after replay: %d; final: %d (term %d)",
		before[1].Applied, after[1].Applied, final[1].Applied, final[1].Term)
}

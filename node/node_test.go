package node_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/memory"
	"github.com/embraft/embraft/transport/channel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a state machine that remembers what it applied.
type recorder struct {
	mu      sync.Mutex
	cmds    []string
	gate    chan struct{} // if set, Apply waits for it to close
	entered chan struct{} // signalled when Apply starts waiting
}

func (r *recorder) Apply(i raft.Index, cmd []byte) []byte {
	if r.gate != nil {
		select {
		case r.entered <- struct{}{}:
		default:
		}
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, string(cmd))
	return []byte("ok:" + strconv.FormatUint(uint64(i), 10))
}
func (r *recorder) Snapshot(io.Writer) error { return nil }
func (r *recorder) Restore(io.Reader) error  { return nil }

func startCluster(t *testing.T, n int, mut func(*cluster.Config)) *cluster.Cluster {
	t.Helper()
	cfg := cluster.Config{Nodes: n, Storage: cluster.StorageMemory, Transport: cluster.TransportChannel,
		ClusterID: 9, Seed: 1, TickInterval: 2 * time.Millisecond,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return &recorder{} }}
	if mut != nil {
		mut(&cfg)
	}
	c, err := cluster.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func waitLeader(t *testing.T, c *cluster.Cluster) raft.NodeID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatalf("no leader: %v", err)
	}
	return l
}

// proposeRetry retries a command until it is applied (a test state machine
// without sessions tolerates duplicates).
func proposeRetry(t *testing.T, n *node.Node, cmd string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		res, err := n.Propose(ctx, []byte(cmd))
		cancel()
		if err == nil {
			return res
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("command %q never applied", cmd)
	return nil
}

// waitConverged waits until every running node applied the same sequence.
func waitConverged(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var hash uint64
		var applied raft.Index
		same := true
		for i, id := range c.IDs() {
			st := c.Node(id).Status()
			if i == 0 {
				hash, applied = st.AppliedHash, st.Applied
			} else if st.AppliedHash != hash || st.Applied != applied {
				same = false
			}
		}
		if same {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("nodes did not converge on one applied sequence")
}

func TestProposeOnEveryNode(t *testing.T) {
	c := startCluster(t, 3, nil)
	waitLeader(t, c)
	for _, id := range c.IDs() { // followers forward to the leader
		res := proposeRetry(t, c.Node(id), "from-"+strconv.Itoa(int(id)))
		if len(res) < 4 || string(res[:3]) != "ok:" {
			t.Fatalf("node %d: result %q", id, res)
		}
	}
	waitConverged(t, c)
	rec := c.StateMachine(1).(*recorder)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.cmds) != 3 {
		t.Fatalf("applied %v, want 3 commands", rec.cmds)
	}
}

func TestCommitsWithTwentyPercentDrop(t *testing.T) {
	c := startCluster(t, 5, func(cfg *cluster.Config) { cfg.DropRate = 0.2; cfg.Seed = 3 })
	waitLeader(t, c)
	for i := 0; i < 20; i++ {
		id := c.IDs()[i%5]
		proposeRetry(t, c.Node(id), "c"+strconv.Itoa(i))
	}
	waitConverged(t, c)
	var drops uint64
	for _, id := range c.IDs() {
		drops += c.Node(id).Status().Transport.DroppedFault
	}
	if drops == 0 {
		t.Fatal("no frames were dropped: the fault injection did not run")
	}
}

// TestProposeDuringLeaderLoss: with the leader gone, a proposal returns a
// result or an error by its deadline; it never hangs.
func TestProposeDuringLeaderLoss(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead := waitLeader(t, c)
	if err := c.StopNode(lead); err != nil {
		t.Fatal(err)
	}
	follower := c.IDs()[0]
	if follower == lead {
		follower = c.IDs()[1]
	}
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		_, err := c.Node(follower).Propose(ctx, []byte("x"))
		cancel()
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Propose took %v with a 100ms deadline (err %v)", took, err)
		}
	}
	if _, err := c.Node(lead).Propose(context.Background(), []byte("x")); !errors.Is(err, node.ErrStopped) {
		t.Fatalf("Propose on a stopped node: %v, want ErrStopped", err)
	}
	// The survivors elect a new leader and commit.
	proposeRetry(t, c.Node(follower), "after")
}

func TestRestartedNodeCatchesUp(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead := waitLeader(t, c)
	victim := raft.NodeID(1)
	if victim == lead {
		victim = 2
	}
	_ = c.StopNode(victim)
	for i := 0; i < 5; i++ {
		proposeRetry(t, c.Node(lead), "while-down-"+strconv.Itoa(i))
	}
	if err := c.RestartNode(victim); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c)
}

func TestTooLarge(t *testing.T) {
	c := startCluster(t, 1, nil)
	n := c.Node(1)
	if _, err := n.Propose(context.Background(), make([]byte, n.MaxCommandBytes()+1)); !errors.Is(err, node.ErrTooLarge) {
		t.Fatalf("oversized command: %v, want ErrTooLarge", err)
	}
	waitLeader(t, c)
	if _, err := n.Propose(context.Background(), make([]byte, n.MaxCommandBytes())); err != nil {
		t.Fatalf("command of exactly MaxCommandBytes: %v", err)
	}
}

// TestProposalQueueBound: while the node goroutine is busy, exactly
// ProposalQueue proposals wait in the queue and the next one fails fast
// with ErrBusy.
func TestProposalQueueBound(t *testing.T) {
	const queue = 4
	rec := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	c := startCluster(t, 1, func(cfg *cluster.Config) {
		cfg.NewStateMachine = func(raft.NodeID) node.StateMachine { return rec }
		cfg.ProposalQueue = queue
	})
	waitLeader(t, c)
	n := c.Node(1)
	first := make(chan error, 1)
	go func() { _, err := n.Propose(context.Background(), []byte("block")); first <- err }()
	<-rec.entered // the node goroutine is now stuck inside Apply
	for i := 1; i <= queue+1; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		_, err := n.Propose(ctx, []byte("q"))
		cancel()
		switch {
		case i <= queue && !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("proposal %d: %v, want it queued (then its deadline)", i, err)
		case i == queue+1 && !errors.Is(err, node.ErrBusy):
			t.Fatalf("proposal %d over the queue bound: %v, want ErrBusy", i, err)
		}
	}
	close(rec.gate)
	if err := <-first; err != nil {
		t.Fatalf("blocked proposal: %v", err)
	}
}

// TestMaxPendingProposals: a leader that cannot commit holds at most
// MaxPendingProposals waiters; the next proposal fails with ErrBusy.
func TestMaxPendingProposals(t *testing.T) {
	const pending = 3
	c := startCluster(t, 3, func(cfg *cluster.Config) { cfg.MaxPendingProposals = pending })
	lead := waitLeader(t, c)
	for _, id := range c.IDs() { // nothing leaves the leader: nothing commits
		c.Network().Cut(lead, id, true)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range pending {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Node(lead).Propose(ctx, []byte("p")) }()
	}
	waitFor(t, func() bool { return c.Node(lead).Status().Pending == pending })
	if _, err := c.Node(lead).Propose(ctx, []byte("over")); !errors.Is(err, node.ErrBusy) {
		t.Fatalf("proposal over MaxPendingProposals: %v, want ErrBusy", err)
	}
	cancel()
	wg.Wait()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestContextCancelStopsEveryNode: one cancellation stops the cluster and
// every goroutine exits (goleak checks in TestMain).
func TestContextCancelStopsEveryNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c, err := cluster.Start(ctx, cluster.Config{Nodes: 5, Storage: cluster.StorageMemory,
		Transport: cluster.TransportChannel, TickInterval: time.Millisecond,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return &recorder{} }})
	if err != nil {
		t.Fatal(err)
	}
	waitLeader(t, c)
	cancel()
	for _, id := range c.IDs() {
		select {
		case <-c.Node(id).Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("node %d still running after cancellation", id)
		}
	}
}

func TestClusterConfigErrors(t *testing.T) {
	sm := func(raft.NodeID) node.StateMachine { return &recorder{} }
	for name, cfg := range map[string]cluster.Config{
		"zero nodes":    {Nodes: 0, Storage: "memory", Transport: "channel", NewStateMachine: sm},
		"eight nodes":   {Nodes: 8, Storage: "memory", Transport: "channel", NewStateMachine: sm},
		"bad storage":   {Nodes: 3, Storage: "tape", Transport: "channel", NewStateMachine: sm},
		"bad transport": {Nodes: 3, Storage: "memory", Transport: "pigeon", NewStateMachine: sm},
		"no sm":         {Nodes: 3, Storage: "memory", Transport: "channel"},
	} {
		if _, err := cluster.Start(context.Background(), cfg); !errors.Is(err, cluster.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// TestIsolatedLeaderAnswersWaiters: a leader cut off from everyone steps
// down (check-quorum) without a new term; proposals waiting on it with no
// deadline must still get an answer.
func TestIsolatedLeaderAnswersWaiters(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead := waitLeader(t, c)
	for _, id := range c.IDs() {
		c.Network().Cut(lead, id, true)
		c.Network().Cut(id, lead, true)
	}
	errc := make(chan error, 3)
	for range 3 {
		go func() { _, err := c.Node(lead).Propose(context.Background(), []byte("x")); errc <- err }()
	}
	for range 3 {
		select {
		case err := <-errc:
			if !errors.Is(err, node.ErrLeaderChanged) && !errors.Is(err, node.ErrNoLeader) {
				t.Fatalf("waiter answered %v, want ErrLeaderChanged", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter on an isolated leader got no answer")
		}
	}
}

// TestLostForwardAnswered: when only the follower-to-leader link is cut,
// the follower keeps hearing its leader, so no change of term or leader
// ever answers a forwarded proposal; ForwardTimeout must.
func TestLostForwardAnswered(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead := waitLeader(t, c)
	f := c.IDs()[0]
	if f == lead {
		f = c.IDs()[1]
	}
	c.Network().Cut(f, lead, true)
	errc := make(chan error, 1)
	go func() { _, err := c.Node(f).Propose(context.Background(), []byte("x")); errc <- err }()
	select {
	case err := <-errc:
		if !errors.Is(err, node.ErrForwardTimeout) && !errors.Is(err, node.ErrLeaderChanged) {
			t.Fatalf("lost forward answered %v, want ErrForwardTimeout", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a forwarded proposal whose message was lost got no answer")
	}
}

var errDisk = errors.New("injected disk read failure")

// flakyStorage fails reads of entries once armed.
type flakyStorage struct {
	*memory.Storage
	armed atomic.Bool
}

func (s *flakyStorage) Entries(lo, hi raft.Index, maxBytes int) ([]raft.Entry, error) {
	if s.armed.Load() {
		return nil, errDisk
	}
	return s.Storage.Entries(lo, hi, maxBytes)
}

// TestStorageReadErrorStopsNode: committed entries that cannot be read
// back stop the node with the error instead of wedging its loop.
func TestStorageReadErrorStopsNode(t *testing.T) {
	st := &flakyStorage{Storage: memory.New(memory.Options{})}
	net := channel.NewNetwork(channel.Options{})
	n, err := node.Start(context.Background(), node.Config{
		Raft: raft.Config{ID: 1, Peers: []raft.NodeID{1}}, Storage: st, Transport: net.Endpoint(1),
		StateMachine: &recorder{}, TickInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	waitFor(t, func() bool { return n.Status().Role == raft.RoleLeader })
	st.armed.Store(true)
	_, _ = n.Propose(context.Background(), []byte("x"))
	select {
	case <-n.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("node still running after a storage read failure")
	}
	if !errors.Is(n.Err(), errDisk) {
		t.Fatalf("node stopped with %v, want the storage error", n.Err())
	}
}

// TestLinearizableReadSeesCompletedWrites: after a write completes at one
// node, a linearizable read at any other node reflects it.
func TestLinearizableReadSeesCompletedWrites(t *testing.T) {
	c := startCluster(t, 3, nil)
	waitLeader(t, c)
	for i := 0; i < 10; i++ {
		w := c.IDs()[i%3]
		r := c.IDs()[(i+1)%3]
		cmd := "w" + strconv.Itoa(i)
		proposeRetry(t, c.Node(w), cmd)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Node(r).LinearizableRead(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read at node %d: %v", r, err)
		}
		rec := c.StateMachine(r).(*recorder)
		rec.mu.Lock()
		found := slices.Contains(rec.cmds, cmd)
		rec.mu.Unlock()
		if !found {
			t.Fatalf("node %d's linearizable read does not see the completed write %q", r, cmd)
		}
	}
}

func TestLinearizableReadWithoutLeader(t *testing.T) {
	c := startCluster(t, 3, func(cfg *cluster.Config) { cfg.TickInterval = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Node(1).LinearizableRead(ctx); !errors.Is(err, node.ErrNoLeader) {
		t.Fatalf("read with no leader: %v, want ErrNoLeader", err)
	}
}

package client

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const cid wire.ClusterID = 9

// fakeNode applies proposals to its store at once (a one-node cluster),
// unless fail says otherwise.
type fakeNode struct {
	id    raft.NodeID
	store *kv.Store
	lead  raft.NodeID
	mu    sync.Mutex
	index raft.Index
	fail  func() error // consulted before every proposal and read (under mu)
	block chan struct{}
	calls atomic.Int64
	// Membership (under mu): the configuration, a failure to return
	// before serving admin calls, and the admin calls served.
	conf        raft.ConfState
	adminFail   func() error
	adminCalls  int
	transferred bool
}

func (n *fakeNode) ID() raft.NodeID { return n.id }

func (n *fakeNode) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	n.calls.Add(1)
	if n.block != nil {
		select {
		case <-n.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := n.failure(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.index++
	return n.store.Apply(n.index, cmd), nil
}

func (n *fakeNode) LinearizableRead(ctx context.Context) error {
	n.calls.Add(1)
	return n.failure()
}

func (n *fakeNode) failure() error {
	n.mu.Lock()
	f := n.fail
	n.mu.Unlock()
	if f != nil {
		return f()
	}
	return nil
}

func (n *fakeNode) setFail(f func() error) {
	n.mu.Lock()
	n.fail = f
	n.mu.Unlock()
}

func (n *fakeNode) Status() node.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	role, term := raft.RoleFollower, raft.Term(3)
	if n.lead == n.id {
		role = raft.RoleLeader
	}
	if n.transferred {
		term = 4
	}
	return node.Status{Status: raft.Status{ID: n.id, Role: role, Term: term, Lead: n.lead,
		Commit: n.index, Applied: n.index, LastIndex: n.index, Conf: n.conf.Clone()}, Uptime: 1500 * time.Millisecond}
}

// ChangeMembership applies the changes as the raft core would (one at a
// time here; a no-op or a demotion is refused).
func (n *fakeNode) ChangeMembership(ctx context.Context, changes ...raft.ConfChange) (raft.ConfState, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.adminCalls++
	if n.adminFail != nil {
		if err := n.adminFail(); err != nil {
			return raft.ConfState{}, err
		}
	}
	if n.lead != n.id {
		return raft.ConfState{}, raft.ErrNotLeader
	}
	cs := n.conf.Clone()
	for _, c := range changes {
		voter, learner := slices.Contains(cs.Voters, c.Node), slices.Contains(cs.Learners, c.Node)
		drop := func(l []raft.NodeID) []raft.NodeID {
			return slices.DeleteFunc(l, func(id raft.NodeID) bool { return id == c.Node })
		}
		switch {
		case c.Type == raft.ConfAddVoter && !voter:
			cs.Voters, cs.Learners = append(cs.Voters, c.Node), drop(cs.Learners)
		case c.Type == raft.ConfAddLearner && !voter && !learner:
			cs.Learners = append(cs.Learners, c.Node)
		case c.Type == raft.ConfRemove && (voter || learner) && !(voter && len(cs.Voters) == 1):
			cs.Voters, cs.Learners = drop(cs.Voters), drop(cs.Learners)
		default:
			return raft.ConfState{}, raft.ErrInvalidConfChange
		}
	}
	slices.Sort(cs.Voters)
	slices.Sort(cs.Learners)
	n.conf = cs
	return cs.Clone(), nil
}

// TransferLeadership hands over at once.
func (n *fakeNode) TransferLeadership(ctx context.Context, to raft.NodeID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.adminCalls++
	if n.adminFail != nil {
		if err := n.adminFail(); err != nil {
			return err
		}
	}
	switch {
	case n.lead != n.id:
		return raft.ErrNotLeader
	case !n.conf.IsVoter(to):
		return raft.ErrNotVoter
	}
	n.lead, n.transferred = to, true
	return nil
}

func (n *fakeNode) admin() (calls int, conf raft.ConfState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.adminCalls, n.conf.Clone()
}

func serve(t *testing.T, n Node, store *kv.Store, key *seal.Key, mut func(*ServerConfig)) *Server {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerConfig{Conn: conn, ClusterID: cid, Key: key, Node: n, Store: store}
	if mut != nil {
		mut(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dial(t *testing.T, key *seal.Key, servers ...*Server) *Client {
	t.Helper()
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.Addr().String())
	}
	c, err := Dial(Config{Servers: addrs, ClusterID: cid, Key: key, AttemptTimeout: 200 * time.Millisecond, MaxAttempts: 6, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestOperations(t *testing.T) {
	k := seal.NewKey()
	for name, key := range map[string]*seal.Key{"unauthenticated": nil, "sealed": &k} {
		t.Run(name, func(t *testing.T) {
			store := kv.New(kv.Options{})
			n := &fakeNode{id: 1, lead: 1, store: store}
			s := serve(t, n, store, key, nil)
			c := dial(t, key, s)
			ctx := context.Background()
			if _, err := c.Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, ErrNoSession) {
				t.Fatalf("put before register: %v", err)
			}
			if err := c.Register(ctx); err != nil || c.SessionID() == 0 {
				t.Fatalf("register: %v", err)
			}
			if res, err := c.Put(ctx, []byte("k"), []byte("v1")); err != nil || res.Status != kv.StatusOK {
				t.Fatalf("put: %+v %v", res, err)
			}
			if v, ok, err := c.Get(ctx, []byte("k")); err != nil || !ok || string(v) != "v1" {
				t.Fatalf("get: %q %v %v", v, ok, err)
			}
			if _, ok, err := c.StaleGet(ctx, []byte("missing")); err != nil || ok {
				t.Fatalf("stale get: %v %v", ok, err)
			}
			if res, err := c.CAS(ctx, []byte("k"), []byte("nope"), []byte("v2")); err != nil || res.Status != kv.StatusCASMismatch || string(res.Value) != "v1" {
				t.Fatalf("cas mismatch: %+v %v", res, err)
			}
			if res, err := c.CAS(ctx, []byte("k"), []byte("v1"), []byte("v2")); err != nil || res.Status != kv.StatusOK {
				t.Fatalf("cas: %+v %v", res, err)
			}
			if res, err := c.Delete(ctx, []byte("k")); err != nil || res.Status != kv.StatusOK {
				t.Fatalf("delete: %+v %v", res, err)
			}
			sts := c.StatusAll(ctx, 1)
			if len(sts) != 1 || sts[0].Err != nil || sts[0].Node != 1 || sts[0].Status.Role != raft.RoleLeader || sts[0].Status.UptimeMillis != 1500 {
				t.Fatalf("status: %+v", sts)
			}
			if c.Leader() != 1 {
				t.Fatalf("leader %d", c.Leader())
			}
			deadline := time.Now().Add(5 * time.Second) // the reply is counted after it is sent
			for st := s.Stats(); st.Requests != 8 || st.Replies != 8 || st.Dropped() != 0; st = s.Stats() {
				if time.Now().After(deadline) {
					t.Fatalf("server stats %+v", st)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// TestRetryToLeader: a member that answers CodeNoLeader naming the leader
// sends the client there; the same bytes are applied once.
func TestRetryToLeader(t *testing.T) {
	store := kv.New(kv.Options{})
	leader := &fakeNode{id: 2, lead: 2, store: store}
	follower := &fakeNode{id: 1, lead: 2, store: store, fail: func() error { return node.ErrNoLeader }}
	sf := serve(t, follower, store, nil, nil)
	sl := serve(t, leader, store, nil, nil)
	c := dial(t, nil, sf, sl)
	ctx := context.Background()
	// Learn member 2's address, then start at the follower.
	_ = c.StatusAll(ctx, 1)
	c.mu.Lock()
	c.leader = raft.None
	c.next = len(c.servers) - 1 // the next pick is the follower
	c.mu.Unlock()
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Retries() != 1 || follower.calls.Load() != 1 || c.Leader() != 2 {
		t.Fatalf("retries %d, follower calls %d, leader %d", c.Retries(), follower.calls.Load(), c.Leader())
	}
	// From now on the client goes to the leader first.
	if _, err := c.Put(ctx, []byte("k"), []byte("v")); err != nil || follower.calls.Load() != 1 {
		t.Fatalf("put: %v, follower calls %d", err, follower.calls.Load())
	}
}

// TestUnknownOutcomeRetried: LeaderChanged answers are retried with the
// same bytes, which the session applies once.
func TestUnknownOutcomeRetried(t *testing.T) {
	store := kv.New(kv.Options{})
	var failures atomic.Int64
	var applied atomic.Int64
	rn := &retryNode{fakeNode: &fakeNode{id: 1, lead: 1, store: store}, failures: &failures, applied: &applied}
	s := serve(t, rn, store, nil, nil)
	c := dial(t, nil, s)
	ctx := context.Background()
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	// The CAS reaches the store three times, but the first two answers
	// say "leader changed": the copies after the first are answered from
	// the session cache (a second application would report a mismatch).
	failures.Store(2)
	applied.Store(0)
	res, err := c.CAS(ctx, []byte("k"), []byte("v"), []byte("w"))
	if err != nil || res.Status != kv.StatusOK || applied.Load() != 3 || c.Retries() != 2 {
		t.Fatalf("cas: %+v %v, proposals %d, retries %d", res, err, applied.Load(), c.Retries())
	}
	if v, _, _ := c.Get(ctx, []byte("k")); string(v) != "w" {
		t.Fatalf("value %q", v)
	}
}

// retryNode applies every proposal but answers the first failures of
// them with ErrLeaderChanged (the outcome the client cannot know).
type retryNode struct {
	*fakeNode
	failures *atomic.Int64
	applied  *atomic.Int64
}

func (n *retryNode) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	res, err := n.fakeNode.Propose(ctx, cmd)
	n.applied.Add(1)
	if n.failures.Add(-1) >= 0 {
		return nil, node.ErrLeaderChanged
	}
	return res, err
}

func TestFinalErrors(t *testing.T) {
	store := kv.New(kv.Options{})
	n := &fakeNode{id: 1, lead: 1, store: store}
	s := serve(t, n, store, nil, nil)
	c := dial(t, nil, s)
	ctx := context.Background()
	var e *Error
	if _, err := c.Propose(ctx, []byte{0xff, 1, 2}); !errors.As(err, &e) || e.Code != wire.CodeBadRequest || n.calls.Load() != 0 || c.Retries() != 0 {
		t.Fatalf("bad command: %v (calls %d, retries %d)", err, n.calls.Load(), c.Retries())
	}
	if _, err := c.Propose(ctx, make([]byte, MaxDatagram)); !errors.As(err, &e) || e.Code != wire.CodeTooLarge {
		t.Fatalf("too large: %v", err)
	}
	n.setFail(func() error { return node.ErrTooLarge })
	reg := kv.Register()
	if _, err := c.Propose(ctx, reg.AppendBinary(nil)); !errors.As(err, &e) || e.Code != wire.CodeTooLarge || e.Node != 1 {
		t.Fatalf("too large at the node: %v", err)
	}
	if e.Error() == "" {
		t.Fatal("empty message")
	}
	for err, code := range map[error]wire.ErrorCode{
		node.ErrBusy: wire.CodeBusy, node.ErrStopped: wire.CodeStopped, node.ErrForwardTimeout: wire.CodeTimeout,
		node.ErrNoLeader: wire.CodeNoLeader, errors.New("disk"): wire.CodeInternal,
	} {
		n.setFail(func() error { return err })
		_, _, gerr := c.Get(ctx, []byte("k"))
		if !errors.Is(gerr, ErrNoOutcome) || !errors.As(gerr, &e) || e.Code != code || e.Leader != 1 {
			t.Errorf("%v: got %v", err, gerr)
		}
	}
}

// TestNoAnswer: a silent server ends in ErrNoOutcome after MaxAttempts.
func TestNoAnswer(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c, err := Dial(Config{Servers: []string{silent.LocalAddr().String()}, ClusterID: cid, AttemptTimeout: 20 * time.Millisecond, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, _, err := c.Get(context.Background(), []byte("k")); !errors.Is(err, ErrNoOutcome) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d < 60*time.Millisecond || d > 2*time.Second || c.Retries() != 2 {
		t.Fatalf("took %v, %d retries", d, c.Retries())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c.Get(ctx, []byte("k")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if sts := c.StatusAll(context.Background(), 1); sts[0].Err == nil {
		t.Fatalf("status of a silent server: %+v", sts)
	}
	if _, err := Dial(Config{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no servers: %v", err)
	}
	if _, err := Dial(Config{Servers: []string{"127.0.0.1:1", "127.0.0.1:1"}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("duplicate: %v", err)
	}
}

// TestInFlightBound: requests over MaxInFlight are answered busy at once;
// malformed datagrams and replies sent to the server are dropped.
func TestInFlightBound(t *testing.T) {
	store := kv.New(kv.Options{})
	n := &fakeNode{id: 1, lead: 1, store: store, block: make(chan struct{})}
	s := serve(t, n, store, nil, func(c *ServerConfig) { c.MaxInFlight = 2 })
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reg := kv.Register()
	send := func(f *wire.ClientFrame) {
		b, err := wire.AppendClientFrame(nil, cid, f, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteToUDPAddrPort(b, s.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() wire.ClientFrame {
		buf := make([]byte, 1500)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		var f wire.ClientFrame
		if err := wire.DecodeClientFrame(buf[:n], cid, &f, 0); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for i := 1; i <= 3; i++ {
		send(&wire.ClientFrame{Type: wire.ClientPropose, RequestID: uint64(i), Data: reg.AppendBinary(nil)})
	}
	if f := recv(); f.Type != wire.ClientError || f.Code != wire.CodeBusy || f.RequestID != 3 {
		t.Fatalf("third request: %+v", f)
	}
	close(n.block)
	got := map[uint64]bool{}
	for range 2 {
		f := recv()
		if f.Type != wire.ClientResult {
			t.Fatalf("reply %+v", f)
		}
		got[f.RequestID] = true
	}
	if !got[1] || !got[2] {
		t.Fatalf("replies %v", got)
	}
	// Garbage, a reply type, another cluster: dropped and counted.
	_, _ = conn.WriteToUDPAddrPort([]byte("garbage"), s.Addr())
	send(&wire.ClientFrame{Type: wire.ClientResult, RequestID: 9, Node: 1})
	b, _ := wire.AppendClientFrame(nil, cid+1, &wire.ClientFrame{Type: wire.ClientStatusRequest, RequestID: 10}, 0)
	_, _ = conn.WriteToUDPAddrPort(b, s.Addr())
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Malformed != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.Busy != 1 || st.Requests != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWrongKey: a client with another key (or none) gets no answer, and
// the server counts its datagrams as forged.
func TestWrongKey(t *testing.T) {
	k1, k2 := seal.NewKey(), seal.NewKey()
	store := kv.New(kv.Options{})
	s := serve(t, &fakeNode{id: 1, lead: 1, store: store}, store, &k1, nil)
	for _, key := range []*seal.Key{&k2, nil} {
		c, err := Dial(Config{Servers: []string{s.Addr().String()}, ClusterID: cid, Key: key, AttemptTimeout: 20 * time.Millisecond, MaxAttempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Get(context.Background(), []byte("k")); !errors.Is(err, ErrNoOutcome) {
			t.Fatalf("got %v", err)
		}
		_ = c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Forged != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if MaxFrame(true) != MaxDatagram-seal.Overhead || MaxFrame(false) != MaxDatagram {
		t.Fatal("MaxFrame")
	}
}

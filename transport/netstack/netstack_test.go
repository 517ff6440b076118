package netstack

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/transport/internal/transporttest"
	"github.com/embraft/embraft/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const cid wire.ClusterID = 7

const wait = 5 * time.Second

func newSwitch(t testing.TB, opts SwitchOptions) *Switch {
	t.Helper()
	s, err := NewSwitch(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// start attaches one transport per id.
func start(t testing.TB, s *Switch, ids []raft.NodeID, mut func(*Options)) map[raft.NodeID]*Transport {
	t.Helper()
	trs := map[raft.NodeID]*Transport{}
	for _, id := range ids {
		o := Options{ID: id, ClusterID: cid, Peers: ids}
		if mut != nil {
			mut(&o)
		}
		tr, err := s.Attach(o)
		if err != nil {
			t.Fatal(err)
		}
		trs[id] = tr
		t.Cleanup(func() { _ = tr.Close() })
	}
	return trs
}

// host is a bare stack on the switch with a UDP socket, for sending
// arbitrary datagrams.
type host struct {
	p    *port
	conn *gonet.UDPConn
	s    *Switch
}

func newHost(t testing.TB, s *Switch, id raft.NodeID) *host {
	t.Helper()
	p, err := s.attach(id)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := listen(p)
	if err != nil {
		s.detach(p)
		t.Fatal(err)
	}
	h := &host{p: p, conn: conn, s: s}
	t.Cleanup(h.close)
	return h
}

func (h *host) close() {
	if h.conn != nil {
		_ = h.conn.Close()
		h.s.detach(h.p)
		h.conn = nil
	}
}

func (h *host) send(t testing.TB, to raft.NodeID, b []byte) {
	t.Helper()
	cfg, _ := NetworkFor(to)
	ap := cfg.AddrPort()
	if _, err := h.conn.WriteTo(b, &net.UDPAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkConfig(t *testing.T) {
	cfg, err := NetworkFor(3)
	if err != nil {
		t.Fatal(err)
	}
	want := "StaticConfigV4 { address: 192.0.2.3/24, gateway: None, mac: 02:00:00:00:00:03, udp_port: 9003, mtu: 1500 }"
	if cfg.String() != want {
		t.Fatalf("config %q\nwant   %q", cfg.String(), want)
	}
	if cfg.AddrPort().String() != "192.0.2.3:9003" {
		t.Fatalf("AddrPort %v", cfg.AddrPort())
	}
	for _, id := range []raft.NodeID{0, 255, 1000} {
		if _, err := NetworkFor(id); !errors.Is(err, ErrNodeID) {
			t.Errorf("NetworkFor(%d): %v", id, err)
		}
	}
	s := newSwitch(t, SwitchOptions{})
	if _, err := s.Attach(Options{ID: 300, ClusterID: cid}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Attach(300): %v", err)
	}
	if _, err := s.Attach(Options{ID: 1, ClusterID: cid, Peers: []raft.NodeID{1, 0}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Attach with peer 0: %v", err)
	}
	trs := start(t, s, []raft.NodeID{1}, nil)
	if _, err := s.Attach(Options{ID: 1, ClusterID: cid}); err == nil {
		t.Fatal("attached node 1 twice")
	}
	if got := trs[1].Network().String(); got != "StaticConfigV4 { address: 192.0.2.1/24, gateway: None, mac: 02:00:00:00:00:01, udp_port: 9001, mtu: 1500 }" {
		t.Fatalf("Network() %q", got)
	}
	// A closed node can be attached again (a restart).
	_ = trs[1].Close()
	tr, err := s.Attach(Options{ID: 1, ClusterID: cid})
	if err != nil {
		t.Fatal(err)
	}
	_ = tr.Close()
	if err := s.SetFaults(Faults{Loss: 1.5}); err == nil {
		t.Fatal("loss 1.5 accepted")
	}
	if err := s.SetLinkFaults(1, 2, Faults{Jitter: -1}); err == nil {
		t.Fatal("negative jitter accepted")
	}
}

func TestExchange(t *testing.T) {
	s := newSwitch(t, SwitchOptions{})
	ids := []raft.NodeID{1, 2, 3}
	trs := start(t, s, ids, nil)
	for _, from := range ids {
		for _, to := range ids {
			if from != to {
				if err := trs[from].Send(to, transporttest.Heartbeat(t, cid, from, to, raft.Index(from))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, to := range ids {
		seen := map[raft.NodeID]bool{}
		for range 2 {
			m := transporttest.Decode(t, cid, transporttest.Recv(t, trs[to], wait))
			if m.To != to || m.Type != raft.MsgHeartbeat || raft.Index(m.From) != m.Commit || seen[m.From] {
				t.Fatalf("node %d received %+v", to, m)
			}
			seen[m.From] = true
		}
	}
	transporttest.Eventually(t, wait, "counters", func() bool {
		for _, id := range ids {
			if st := trs[id].Stats(); st.Sent != 2 || st.Received != 2 || st.DroppedBad+st.DroppedFull+st.DroppedFault != 0 {
				return false
			}
		}
		return true
	})
	if st := s.Stats(); st.Flooded == 0 || st.Forwarded < 6 {
		t.Fatalf("switch stats %+v: want ARP floods and forwarded frames", st)
	}
}

func stall() (hook func(raft.NodeID), release func()) {
	gate := make(chan struct{})
	var once sync.Once
	return func(raft.NodeID) { <-gate }, func() { once.Do(func() { close(gate) }) }
}

func TestSendQueueBound(t *testing.T) {
	s := newSwitch(t, SwitchOptions{})
	hook, release := stall()
	defer release()
	trs := start(t, s, []raft.NodeID{1, 2}, func(o *Options) {
		o.SendQueue = 5
		if o.ID == 1 {
			o.beforeTake = hook
		}
	})
	t.Cleanup(release) // before the transports' Close
	for i := range 5 {
		_ = trs[1].Send(2, transporttest.Heartbeat(t, cid, 1, 2, raft.Index(i)))
	}
	if st := trs[1].Stats(); st.DroppedFull != 0 {
		t.Fatalf("dropped before the queue was full: %+v", st)
	}
	_ = trs[1].Send(2, transporttest.Heartbeat(t, cid, 1, 2, 99))
	if st := trs[1].Stats(); st.DroppedFull != 1 || st.Sent != 0 {
		t.Fatalf("sixth frame with a stalled sender: %+v, want DroppedFull 1", st)
	}
	release()
	// All five queued frames arrive. UDP promises no order, and the first
	// datagram to a peer can be overtaken while ARP resolves its address.
	got := map[raft.Index]bool{}
	for range 5 {
		got[transporttest.Decode(t, cid, transporttest.Recv(t, trs[2], wait)).Commit] = true
	}
	for i := range 5 {
		if !got[raft.Index(i)] {
			t.Fatalf("queued frame %d never arrived (got %v)", i, got)
		}
	}
	transporttest.NoFrame(t, trs[2], 50*time.Millisecond)
}

func TestInboxBound(t *testing.T) {
	s := newSwitch(t, SwitchOptions{})
	trs := start(t, s, []raft.NodeID{1, 2}, func(o *Options) { o.InboxSize = 4 })
	for i := range 10 {
		_ = trs[1].Send(2, transporttest.Heartbeat(t, cid, 1, 2, raft.Index(i)))
		transporttest.Eventually(t, wait, "frame handled", func() bool {
			st := trs[2].Stats()
			return st.Received+st.DroppedFull == uint64(i+1)
		})
	}
	if st := trs[2].Stats(); st.Received != 4 || st.DroppedFull != 6 {
		t.Fatalf("receiver stats %+v, want 4 received and 6 dropped", st)
	}
	for i := range 4 {
		if m := transporttest.Decode(t, cid, <-trs[2].Inbox()); m.Commit != raft.Index(i) {
			t.Fatalf("frame %d: %+v", i, m)
		}
	}
}

// TestGarbage: node 2 is a bare host the test controls at node 2's
// address, node 99 an unknown host at 192.0.2.99; malformed and
// unauthorised datagrams are dropped and counted, good ones still arrive.
func TestGarbage(t *testing.T) {
	s := newSwitch(t, SwitchOptions{})
	trs := start(t, s, []raft.NodeID{1}, func(o *Options) { o.Peers = []raft.NodeID{1, 2} })
	tr := trs[1]
	peer := newHost(t, s, 2)
	stranger := newHost(t, s, 99)

	good := transporttest.Heartbeat(t, cid, 2, 1, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 40)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0] = wire.Version
	oversized := make([]byte, DefaultMaxDatagram+1)
	copy(oversized, good)
	wrongVersion := append([]byte(nil), good...)
	wrongVersion[0] = wire.Version + 1
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	frame := func(cluster wire.ClusterID, from, to raft.NodeID) []byte {
		return transporttest.Heartbeat(t, cluster, from, to, 3)
	}
	cases := []struct {
		name string
		from *host
		b    []byte
	}{
		{"empty", peer, nil},
		{"random", peer, random},
		{"truncated", peer, good[:len(good)-3]},
		{"one byte", peer, good[:1]},
		{"oversized", peer, oversized},
		{"fragmented", peer, make([]byte, 4000)}, // IP fragments, reassembled by the stack
		{"wrong version", peer, wrongVersion},
		{"bad checksum", peer, badCRC},
		{"wrong cluster", peer, frame(cid+1, 2, 1)},
		{"misrouted", peer, frame(cid, 2, 3)},
		{"from self", peer, frame(cid, 1, 1)},
		{"unknown ID", peer, frame(cid, 9, 1)},
		{"unknown sender", stranger, good},
		{"unknown sender, its own ID", stranger, frame(cid, 99, 1)},
	}
	for i, c := range cases {
		c.from.send(t, 1, c.b)
		transporttest.Eventually(t, wait, c.name+" counted", func() bool { return tr.Stats().DroppedBad == uint64(i+1) })
	}
	if st := tr.Stats(); st.Received != 0 || len(tr.Inbox()) != 0 {
		t.Fatalf("garbage was delivered: %+v", st)
	}
	for range 3 {
		peer.send(t, 1, good)
		if got := transporttest.Recv(t, tr, wait); string(got) != string(good) {
			t.Fatalf("received %x, want %x", got, good)
		}
	}
	if st := tr.Stats(); st.Received != 3 || st.DroppedBad != uint64(len(cases)) {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseAndSendErrors(t *testing.T) {
	s := newSwitch(t, SwitchOptions{})
	trs := start(t, s, []raft.NodeID{1, 2}, nil)
	if err := trs[1].Send(3, []byte{1}); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Send to an unknown peer: %v", err)
	}
	if err := trs[1].Send(2, make([]byte, DefaultMaxDatagram+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatal("Send of an oversized frame succeeded")
	}
	if got := trs[1].LocalAddr().String(); got != "192.0.2.1:9001" {
		t.Fatalf("LocalAddr %s", got)
	}
	_ = trs[1].Close()
	_ = trs[1].Close()
	if err := trs[1].Send(2, []byte{1}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	// Node 2 sending to the departed node loses frames quietly.
	_ = trs[2].Send(1, transporttest.Heartbeat(t, cid, 2, 1, 1))
	_ = s.Close()
	if _, err := s.Attach(Options{ID: 3, ClusterID: cid}); !errors.Is(err, ErrSwitchClosed) {
		t.Fatalf("Attach after Close: %v", err)
	}
}

// TestFaults checks loss, duplication, delay, cuts and partitions on a
// raw frame stream.
func TestFaults(t *testing.T) {
	s := newSwitch(t, SwitchOptions{Seed: 1})
	trs := start(t, s, []raft.NodeID{1, 2, 3}, func(o *Options) { o.InboxSize = 1024; o.SendQueue = 1024 })
	hb := func(from, to raft.NodeID) []byte { return transporttest.Heartbeat(t, cid, from, to, 1) }
	// Warm up ARP in every direction.
	for _, a := range []raft.NodeID{1, 2, 3} {
		for _, b := range []raft.NodeID{1, 2, 3} {
			if a != b {
				_ = trs[a].Send(b, hb(a, b))
				transporttest.Recv(t, trs[b], wait)
			}
		}
	}
	drain := func(id raft.NodeID, d time.Duration) int {
		n := 0
		for {
			select {
			case <-trs[id].Inbox():
				n++
			case <-time.After(d):
				return n
			}
		}
	}
	send := func(from, to raft.NodeID, n int) {
		for range n {
			_ = trs[from].Send(to, hb(from, to))
			time.Sleep(20 * time.Microsecond) // let the sender keep up
		}
	}

	// Loss on 1->2 only.
	if err := s.SetLinkFaults(1, 2, Faults{Loss: 0.5}); err != nil {
		t.Fatal(err)
	}
	send(1, 2, 400)
	got := drain(2, 100*time.Millisecond)
	if got < 120 || got > 280 {
		t.Fatalf("50%% loss delivered %d of 400", got)
	}
	if st := trs[1].Stats(); st.DroppedFault != uint64(400-got) {
		t.Fatalf("sender DroppedFault %d, want %d", st.DroppedFault, 400-got)
	}
	send(2, 1, 50) // the other direction is clean
	if got := drain(1, 100*time.Millisecond); got != 50 {
		t.Fatalf("2->1 delivered %d of 50", got)
	}

	// Duplication and delay with jitter.
	s.ResetFaults()
	if err := s.SetFaults(Faults{Duplicate: 1, Delay: 2 * time.Millisecond, Jitter: 3 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = trs[3].Send(1, hb(3, 1))
	transporttest.Recv(t, trs[1], wait)
	if took := time.Since(start); took < 2*time.Millisecond {
		t.Fatalf("delayed frame arrived after %v", took)
	}
	transporttest.Recv(t, trs[1], wait) // the duplicate
	if st := s.Stats(); st.Duplicated == 0 || st.Delayed < 2 {
		t.Fatalf("switch stats %+v", st)
	}
	s.ResetFaults()

	// One-way cut: 1->3 blocked, 3->1 still flows.
	s.Cut(1, 3)
	send(1, 3, 5)
	send(3, 1, 5)
	if got := drain(1, 50*time.Millisecond); got != 5 {
		t.Fatalf("3->1 delivered %d of 5 with 1->3 cut", got)
	}
	if got := drain(3, 10*time.Millisecond); got != 0 {
		t.Fatalf("cut link 1->3 delivered %d", got)
	}
	// Partition {1} / {2, 3}.
	s.Heal()
	s.Partition([]raft.NodeID{1}, []raft.NodeID{2, 3})
	send(1, 2, 3)
	send(2, 1, 3)
	send(2, 3, 3)
	if got := drain(3, 50*time.Millisecond); got != 3 {
		t.Fatalf("2->3 inside a group delivered %d of 3", got)
	}
	if n := drain(1, 10*time.Millisecond) + drain(2, 10*time.Millisecond); n != 0 {
		t.Fatalf("%d frames crossed the partition", n)
	}
	before := s.Stats().DroppedPartition
	if before < 11 {
		t.Fatalf("DroppedPartition %d, want at least 11", before)
	}
	s.Heal()
	send(1, 2, 3)
	if got := drain(2, 50*time.Millisecond); got != 3 {
		t.Fatalf("after Heal delivered %d of 3", got)
	}
}

// TestDelayLineBound: frames beyond the delay line's bound are dropped and
// counted.
func TestDelayLineBound(t *testing.T) {
	s := newSwitch(t, SwitchOptions{DelayQueue: 8, Faults: Faults{Delay: 200 * time.Millisecond}})
	trs := start(t, s, []raft.NodeID{1, 2}, func(o *Options) { o.InboxSize = 64; o.SendQueue = 64 })
	for range 20 {
		_ = trs[1].Send(2, transporttest.Heartbeat(t, cid, 1, 2, 1))
	}
	transporttest.Eventually(t, wait, "delay line full", func() bool { return s.Stats().DroppedQueueFull > 0 })
	// Whatever was admitted is delivered (the ARP exchange took slots too).
	transporttest.Recv(t, trs[2], wait)
}

func newRaftCluster(t *testing.T, s *Switch, n int) *transporttest.Cluster {
	var ids []raft.NodeID
	for i := 1; i <= n; i++ {
		ids = append(ids, raft.NodeID(i))
	}
	return transporttest.StartCluster(t, ids, cid, func(id raft.NodeID) transport.Transport {
		tr, err := s.Attach(Options{ID: id, ClusterID: cid, Peers: ids})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Node %d network configured: %v", id, tr.Network())
		return tr
	})
}

func TestRaftCluster(t *testing.T) {
	s := newSwitch(t, SwitchOptions{})
	c := newRaftCluster(t, s, 3)
	c.WaitLeader(t, 10*time.Second)
	for i := range 9 {
		c.ProposeRetry(t, c.IDs[i%3], "cmd-"+strconv.Itoa(i), 10*time.Second)
	}
	c.WaitConverged(t, 10*time.Second)
}

// TestRaftClusterLossyJittery: 20% loss and 1-5 ms of delay on every link.
func TestRaftClusterLossyJittery(t *testing.T) {
	s := newSwitch(t, SwitchOptions{Seed: 5, Faults: Faults{Loss: 0.2, Delay: time.Millisecond, Jitter: 4 * time.Millisecond}})
	c := newRaftCluster(t, s, 3)
	c.WaitLeader(t, 10*time.Second)
	for i := range 10 {
		c.ProposeRetry(t, c.IDs[i%3], "cmd-"+strconv.Itoa(i), 15*time.Second)
	}
	c.WaitConverged(t, 15*time.Second)
	st := s.Stats()
	if st.DroppedLoss == 0 || st.Delayed == 0 {
		t.Fatalf("faults did not run: %+v", st)
	}
	var faults uint64
	for _, id := range c.IDs {
		faults += c.Nodes[id].Status().Transport.DroppedFault
	}
	if faults == 0 {
		t.Fatal("no DroppedFault reported to the transports")
	}
	t.Logf("switch %+v", st)
}

// TestRaftPartition: five nodes, partition {leader, one follower} / {three
// others}. The minority cannot commit; the majority elects a leader and
// commits; after Heal the old leader steps down and catches up.
func TestRaftPartition(t *testing.T) {
	s := newSwitch(t, SwitchOptions{Seed: 9})
	c := newRaftCluster(t, s, 5)
	old := c.WaitLeader(t, 10*time.Second)
	c.ProposeRetry(t, old, "before", 10*time.Second)
	oldTerm := c.Nodes[old].Status().Term

	minority := []raft.NodeID{old}
	var majority []raft.NodeID
	for _, id := range c.IDs {
		if id == old {
			continue
		}
		if len(minority) < 2 {
			minority = append(minority, id)
		} else {
			majority = append(majority, id)
		}
	}
	s.Partition(minority, majority)

	// The minority cannot commit.
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		_, err := c.Nodes[old].Propose(ctx, []byte("lost"))
		res <- err
	}()

	// The majority elects a new leader and commits.
	newLead := c.WaitLeader(t, 10*time.Second, majority...)
	if newLead == old {
		t.Fatal("the old leader leads the majority")
	}
	c.ProposeRetry(t, majority[0], "during", 10*time.Second)
	if err := <-res; err == nil {
		t.Fatal("a proposal at the partitioned old leader succeeded")
	} else {
		t.Logf("minority proposal failed as expected: %v", err)
	}
	if st := c.Nodes[minority[1]].Status(); st.Commit >= c.Nodes[majority[0]].Status().Commit {
		t.Fatalf("the minority follower's commit %d caught up with the majority's inside the partition", st.Commit)
	}

	s.Heal()
	transporttest.Eventually(t, 10*time.Second, "old leader steps down", func() bool {
		st := c.Nodes[old].Status()
		return st.Role != raft.RoleLeader && st.Term > oldTerm && st.Lead != raft.None && st.Lead != old
	})
	c.ProposeRetry(t, old, "after", 10*time.Second)
	st := c.WaitConverged(t, 10*time.Second)
	t.Logf("converged at applied %d, term %d; switch %+v", st.Applied, st.Term, s.Stats())
}

// BenchmarkRoundTrip measures one frame A→B and its echo B→A over two
// gVisor stacks and the switch: ns/op is the round-trip time.
func BenchmarkRoundTrip(b *testing.B) {
	s := newSwitch(b, SwitchOptions{})
	trs := start(b, s, []raft.NodeID{1, 2}, nil)
	ping := transporttest.Heartbeat(b, cid, 1, 2, 1)
	pong := transporttest.Heartbeat(b, cid, 2, 1, 1)
	_ = trs[1].Send(2, ping) // resolve ARP before timing
	<-trs[2].Inbox()
	_ = trs[2].Send(1, pong)
	<-trs[1].Inbox()
	b.ResetTimer()
	for range b.N {
		_ = trs[1].Send(2, ping)
		<-trs[2].Inbox()
		_ = trs[2].Send(1, pong)
		<-trs[1].Inbox()
	}
	b.StopTimer()
	if st := trs[1].Stats(); st.DroppedFull+st.DroppedFault+st.DroppedBad != 0 {
		b.Fatalf("drops during the benchmark: %+v", st)
	}
}

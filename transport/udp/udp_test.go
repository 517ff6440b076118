package udp

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/transport/internal/transporttest"
	"github.com/embraft/embraft/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const cid wire.ClusterID = 7

const wait = 5 * time.Second

// start builds one transport per id on fresh loopback ports.
func start(t testing.TB, ids []raft.NodeID, mut func(*Options)) map[raft.NodeID]*Transport {
	t.Helper()
	conns, peers, err := ListenLoopback(ids)
	if err != nil {
		t.Fatal(err)
	}
	trs := map[raft.NodeID]*Transport{}
	for _, id := range ids {
		o := Options{ID: id, Conn: conns[id], Peers: peers, ClusterID: cid}
		if mut != nil {
			mut(&o)
		}
		tr, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		trs[id] = tr
		t.Cleanup(func() { _ = tr.Close() })
	}
	return trs
}

func TestExchange(t *testing.T) {
	ids := []raft.NodeID{1, 2, 3}
	trs := start(t, ids, nil)
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
}

func TestSendDoesNotRetainFrame(t *testing.T) {
	trs := start(t, []raft.NodeID{1, 2}, nil)
	f := transporttest.Heartbeat(t, cid, 1, 2, 5)
	for range 8 {
		_ = trs[1].Send(2, f)
		clear(f) // the transport must have copied it
		f = transporttest.Heartbeat(t, cid, 1, 2, 5)
	}
	for range 8 {
		if m := transporttest.Decode(t, cid, transporttest.Recv(t, trs[2], wait)); m.Commit != 5 {
			t.Fatalf("received %+v", m)
		}
	}
}

// stall returns a hook that blocks every sender goroutine until release
// is called.
func stall() (hook func(raft.NodeID), release func()) {
	gate := make(chan struct{})
	var once sync.Once
	return func(raft.NodeID) { <-gate }, func() { once.Do(func() { close(gate) }) }
}

func TestSendQueueBound(t *testing.T) {
	hook, release := stall()
	defer release()
	trs := start(t, []raft.NodeID{1, 2}, func(o *Options) {
		o.SendQueue = 5
		if o.ID == 1 {
			o.beforeTake = hook
		}
	})
	t.Cleanup(release) // runs before the transports' Close
	for i := range 5 {
		if err := trs[1].Send(2, transporttest.Heartbeat(t, cid, 1, 2, raft.Index(i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := trs[1].Stats(); st.DroppedFull != 0 {
		t.Fatalf("a frame was dropped before the queue was full: %+v", st)
	}
	_ = trs[1].Send(2, transporttest.Heartbeat(t, cid, 1, 2, 99))
	if st := trs[1].Stats(); st.DroppedFull != 1 || st.Sent != 0 {
		t.Fatalf("sixth frame with a stalled sender: stats %+v, want DroppedFull 1", st)
	}
	release()
	for i := range 5 {
		if m := transporttest.Decode(t, cid, transporttest.Recv(t, trs[2], wait)); m.Commit != raft.Index(i) {
			t.Fatalf("frame %d: %+v", i, m)
		}
	}
	transporttest.NoFrame(t, trs[2], 50*time.Millisecond)
}

func TestInboxBound(t *testing.T) {
	trs := start(t, []raft.NodeID{1, 2}, func(o *Options) { o.InboxSize = 4 })
	for i := range 10 {
		_ = trs[1].Send(2, transporttest.Heartbeat(t, cid, 1, 2, raft.Index(i)))
		// Pace the sender so that the kernel's socket buffer never drops.
		transporttest.Eventually(t, wait, "frame handled", func() bool {
			st := trs[2].Stats()
			return st.Received+st.DroppedFull == uint64(i+1)
		})
	}
	if st := trs[2].Stats(); st.Received != 4 || st.DroppedFull != 6 {
		t.Fatalf("receiver stats %+v, want 4 received and 6 dropped", st)
	}
	if n := len(trs[2].Inbox()); n != 4 {
		t.Fatalf("inbox holds %d frames, want 4", n)
	}
	for i := range 4 {
		if m := transporttest.Decode(t, cid, <-trs[2].Inbox()); m.Commit != raft.Index(i) {
			t.Fatalf("frame %d: %+v", i, m)
		}
	}
}

// TestGarbage sends malformed and unauthorised datagrams at a node: each
// is dropped and counted, and good frames still arrive afterwards.
func TestGarbage(t *testing.T) {
	// Node 2 is a raw socket the test controls; node 1 is the transport.
	conns, peers, err := ListenLoopback([]raft.NodeID{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	peer := conns[2]
	defer peer.Close()
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	tr, err := New(Options{ID: 1, Conn: conns[1], Peers: peers, ClusterID: cid})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	dst := net.UDPAddrFromAddrPort(tr.LocalAddr())

	good := transporttest.Heartbeat(t, cid, 2, 1, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 40)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0] = wire.Version // get past the version byte
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
		from *net.UDPConn
		b    []byte
	}{
		{"empty", peer, nil},
		{"random", peer, random},
		{"truncated", peer, good[:len(good)-3]},
		{"one byte", peer, good[:1]},
		{"oversized", peer, oversized},
		{"huge", peer, make([]byte, 9000)},
		{"wrong version", peer, wrongVersion},
		{"bad checksum", peer, badCRC},
		{"wrong cluster", peer, frame(cid+1, 2, 1)},
		{"misrouted", peer, frame(cid, 2, 3)},
		{"from self", peer, frame(cid, 1, 1)},
		{"unknown ID", peer, frame(cid, 9, 1)},
		{"unknown sender", stranger, good},
	}
	for i, c := range cases {
		if _, err := c.from.WriteToUDP(c.b, dst); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		transporttest.Eventually(t, wait, c.name+" counted", func() bool { return tr.Stats().DroppedBad == uint64(i+1) })
	}
	if st := tr.Stats(); st.Received != 0 || len(tr.Inbox()) != 0 {
		t.Fatalf("garbage was delivered: %+v", st)
	}
	for range 3 {
		if _, err := peer.WriteToUDP(good, dst); err != nil {
			t.Fatal(err)
		}
		if got := transporttest.Recv(t, tr, wait); string(got) != string(good) {
			t.Fatalf("received %x, want %x", got, good)
		}
	}
	// Received is counted just after the frame entered the inbox, so the
	// count may trail the frame the test already took.
	transporttest.Eventually(t, wait, "3 received", func() bool { return tr.Stats().Received == 3 })
	if st := tr.Stats(); st.Received != 3 || st.DroppedBad != uint64(len(cases)) {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseAndSendErrors(t *testing.T) {
	trs := start(t, []raft.NodeID{1, 2}, nil)
	if err := trs[1].Send(3, []byte{1}); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Send to an unknown peer: %v", err)
	}
	if err := trs[1].Send(1, []byte{1}); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Send to self: %v", err)
	}
	if err := trs[1].Send(2, make([]byte, DefaultMaxDatagram+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatal("Send of an oversized frame succeeded")
	}
	addr := trs[1].LocalAddr()
	if !addr.Addr().IsLoopback() || addr.Port() == 0 {
		t.Fatalf("LocalAddr %v", addr)
	}
	if err := trs[1].Close(); err != nil {
		t.Fatal(err)
	}
	if err := trs[1].Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := trs[1].Send(2, []byte{1}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	// The port is free again: a restarted node binds it.
	tr, err := New(Options{ID: 1, Listen: addr.String(), Peers: map[raft.NodeID]string{2: trs[2].LocalAddr().String()}, ClusterID: cid})
	if err != nil {
		t.Fatal(err)
	}
	_ = tr.Close()
}

func TestConfigErrors(t *testing.T) {
	free := func() string { // a loopback port nobody uses right now
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	self := free()
	cases := []struct {
		name string
		opts Options
		want error
	}{
		{"no ID", Options{Listen: self}, ErrConfig},
		{"no listen", Options{ID: 1, Peers: map[raft.NodeID]string{2: free()}}, ErrConfig},
		// These addresses are only parsed, never used: New refuses them.
		{"listen not loopback", Options{ID: 1, Listen: "192.0.2.1:9001"}, ErrNotLoopback},
		{"listen unspecified", Options{ID: 1, Listen: "0.0.0.0:0"}, ErrNotLoopback},
		{"listen IPv6", Options{ID: 1, Listen: "[::1]:0"}, ErrNotLoopback},
		{"peer not loopback", Options{ID: 1, Listen: self, Peers: map[raft.NodeID]string{2: "192.0.2.2:9002"}}, ErrNotLoopback},
		{"peer unparsable", Options{ID: 1, Listen: self, Peers: map[raft.NodeID]string{2: "nonsense"}}, ErrConfig},
		{"peer ID 0", Options{ID: 1, Listen: self, Peers: map[raft.NodeID]string{0: free()}}, ErrConfig},
		{"peers share an address", Options{ID: 1, Listen: self, Peers: map[raft.NodeID]string{2: "127.0.0.1:40000", 3: "127.0.0.1:40000"}}, ErrConfig},
		{"self mismatch", Options{ID: 1, Listen: self, Peers: map[raft.NodeID]string{1: "127.0.0.1:1"}}, ErrConfig},
	}
	for _, c := range cases {
		c.opts.ClusterID = cid
		tr, err := New(c.opts)
		if err == nil {
			_ = tr.Close()
			t.Errorf("%s: New succeeded", c.name)
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// "localhost" resolves to loopback; the listen address may come from Peers.
	peers := map[raft.NodeID]string{1: self, 2: free()}
	tr, err := New(Options{ID: 1, Peers: peers, ClusterID: cid})
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.LocalAddr().String(); got != self {
		t.Fatalf("listening on %s, want %s", got, self)
	}
	_ = tr.Close()
	if ap, err := Resolve("localhost:9", false); err != nil || ap != netip.MustParseAddrPort("127.0.0.1:9") {
		t.Fatalf("Resolve(localhost): %v %v", ap, err)
	}
}

func TestParsePeers(t *testing.T) {
	p, err := ParsePeers(" 1=127.0.0.1:9001, 2=localhost:9002,3=127.0.0.3:9003 ")
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3 || p[1] != "127.0.0.1:9001" || p[2] != "localhost:9002" || p[3] != "127.0.0.3:9003" {
		t.Fatalf("parsed %v", p)
	}
	if s := FormatPeers(p); s != "1=127.0.0.1:9001,2=localhost:9002,3=127.0.0.3:9003" {
		t.Fatalf("formatted %q", s)
	}
	for _, bad := range []string{"", "1", "x=127.0.0.1:1", "0=127.0.0.1:1", "1=127.0.0.1", "1=127.0.0.1:1,1=127.0.0.1:2", "-1=a:1"} {
		if _, err := ParsePeers(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("ParsePeers(%q): %v, want ErrConfig", bad, err)
		}
	}
}

// TestRaftCluster runs three nodes over loopback UDP: they elect a leader,
// commit proposals made at every node and converge.
func TestRaftCluster(t *testing.T) {
	ids := []raft.NodeID{1, 2, 3}
	conns, peers, err := ListenLoopback(ids)
	if err != nil {
		t.Fatal(err)
	}
	c := transporttest.StartCluster(t, ids, cid, func(id raft.NodeID) transport.Transport {
		tr, err := New(Options{ID: id, Conn: conns[id], Peers: peers, ClusterID: cid})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
	c.WaitLeader(t, 10*time.Second)
	for i := range 9 {
		id := ids[i%3]
		c.ProposeRetry(t, id, "cmd-"+strconv.Itoa(i), 10*time.Second)
	}
	st := c.WaitConverged(t, 10*time.Second)
	if st.Transport.Received == 0 || st.Transport.DroppedBad != 0 {
		t.Fatalf("transport stats %+v", st.Transport)
	}
}

// BenchmarkRoundTrip measures one frame A→B and its echo B→A over
// loopback UDP: ns/op is the round-trip time through both transports
// (queues, sender goroutines, sockets, validation, inboxes).
func BenchmarkRoundTrip(b *testing.B) {
	trs := start(b, []raft.NodeID{1, 2}, nil)
	ping := transporttest.Heartbeat(b, cid, 1, 2, 1)
	pong := transporttest.Heartbeat(b, cid, 2, 1, 1)
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

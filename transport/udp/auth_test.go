package udp

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/internal/transporttest"
	"github.com/embraft/embraft/transport/udp/seal"
)

func testKey() *seal.Key {
	k := seal.NewKey()
	return &k
}

// TestAuthExchange: transports sharing a key exchange frames, sealed.
func TestAuthExchange(t *testing.T) {
	key := testKey()
	trs := start(t, []raft.NodeID{1, 2, 3}, func(o *Options) { o.Key = key })
	for _, from := range []raft.NodeID{1, 2, 3} {
		to := from%3 + 1
		if err := trs[from].Send(to, transporttest.Heartbeat(t, cid, from, to, raft.Index(from))); err != nil {
			t.Fatal(err)
		}
		if m := transporttest.Decode(t, cid, transporttest.Recv(t, trs[to], wait)); m.From != from || m.Commit != raft.Index(from) {
			t.Fatalf("received %+v", m)
		}
	}
	if !trs[1].Authenticated() {
		t.Fatal("not authenticated")
	}
}

// TestAuthMismatch: a transport without the key, or with another key,
// cannot talk to keyed ones, and every refused datagram is counted.
func TestAuthMismatch(t *testing.T) {
	key := testKey()
	for name, other := range map[string]*seal.Key{"no key": nil, "other key": testKey()} {
		t.Run(name, func(t *testing.T) {
			trs := start(t, []raft.NodeID{1, 2}, func(o *Options) {
				o.Key = key
				if o.ID == 2 {
					o.Key = other
				}
			})
			for i := range 5 {
				_ = trs[2].Send(1, transporttest.Heartbeat(t, cid, 2, 1, raft.Index(i)))
			}
			transporttest.Eventually(t, wait, "refusals counted", func() bool {
				return trs[1].AuthStats().Forged == 5 && trs[1].Stats().DroppedBad == 5
			})
			transporttest.NoFrame(t, trs[1], 20*time.Millisecond)
		})
	}
}

// TestAuthAttacks puts the test between node 2 and node 1: node 2's
// datagrams for node 1 reach a tap socket, which forwards them from node
// 2's own socket (so their source address is right). From that position
// the test also sends forged, tampered and replayed datagrams; node 1
// must deliver exactly the genuine frames, once each, and count every
// other datagram.
func TestAuthAttacks(t *testing.T) {
	key := testKey()
	conns, peers, err := ListenLoopback([]raft.NodeID{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	tap, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	conn2 := conns[2] // node 2's socket: the test writes on it too
	tr1, err := New(Options{ID: 1, Conn: conns[1], Peers: peers, ClusterID: cid, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer tr1.Close()
	peers2 := map[raft.NodeID]string{1: tap.LocalAddr().String(), 2: peers[2]}
	tr2, err := New(Options{ID: 2, Conn: conn2, Peers: peers2, ClusterID: cid, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	dst := tr1.LocalAddr()

	// Capture genuine datagrams and forward them.
	var captured [][]byte
	buf := make([]byte, 2048)
	for i := range 20 {
		if err := tr2.Send(1, transporttest.Heartbeat(t, cid, 2, 1, raft.Index(i))); err != nil {
			t.Fatal(err)
		}
		_ = tap.SetReadDeadline(time.Now().Add(wait))
		n, _, err := tap.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		d := append([]byte(nil), buf[:n]...)
		captured = append(captured, d)
		if _, err := conn2.WriteToUDPAddrPort(d, dst); err != nil {
			t.Fatal(err)
		}
		if m := transporttest.Decode(t, cid, transporttest.Recv(t, tr1, wait)); m.Commit != raft.Index(i) {
			t.Fatalf("genuine frame %d: %+v", i, m)
		}
	}

	rng := rand.New(rand.NewPCG(5, 6))
	var forged, replayed [][]byte
	// Random bytes, with and without the magic byte.
	for range 10 {
		b := make([]byte, 20+rng.IntN(100))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		forged = append(forged, b)
		forged = append(forged, append([]byte{seal.Magic}, b...))
	}
	// A valid-looking frame without the key: a plain heartbeat (commit 1000).
	forged = append(forged, transporttest.Heartbeat(t, cid, 2, 1, 1000))
	// Sealed with another key; sealed for another cluster ID.
	hb := transporttest.Heartbeat(t, cid, 2, 1, 1000)
	d, _ := seal.NewSealer(testKey(), cid).Seal(nil, hb)
	forged = append(forged, d)
	d, _ = seal.NewSealer(key, cid+1).Seal(nil, transporttest.Heartbeat(t, cid+1, 2, 1, 1000))
	forged = append(forged, d)
	// Tampered: every bit of one datagram, and one random bit of each.
	e0, s0 := binary.BigEndian.Uint64(captured[0][1:]), binary.BigEndian.Uint64(captured[0][9:])
	tamper := func(c []byte, bit int) {
		d := append([]byte(nil), c...)
		d[bit/8] ^= 1 << (bit % 8)
		forged = append(forged, d)
	}
	for i := 0; i < len(captured[0])*8; i++ {
		tamper(captured[0], i)
	}
	for _, c := range captured {
		tamper(c, rng.IntN(len(c)*8))
	}
	// Replayed: each captured datagram again, twice; and the first one
	// once more, after everything else.
	replayed = append(replayed, captured...)
	replayed = append(replayed, captured...)

	// Forged datagrams that claim an older epoch are refused as stale
	// (before authentication) and counted with the replays.
	var forgedFresh [][]byte
	for _, d := range forged {
		if len(d) >= seal.Overhead && d[0] == seal.Magic {
			epoch, salt := binary.BigEndian.Uint64(d[1:]), binary.BigEndian.Uint64(d[9:])
			if epoch < e0 || epoch == e0 && salt != s0 {
				replayed = append(replayed, d)
				continue
			}
		}
		forgedFresh = append(forgedFresh, d)
	}
	forged = forgedFresh

	before := tr1.Stats()
	send := func(ds [][]byte) {
		for i, d := range ds {
			if _, err := conn2.WriteToUDPAddrPort(d, dst); err != nil {
				t.Fatal(err)
			}
			if i%32 == 31 { // pace: keep the socket buffer from dropping
				time.Sleep(time.Millisecond)
			}
		}
	}
	send(forged)
	send(replayed)
	eventually(t, "all refused", func() string {
		return fmt.Sprintf("%+v, want %d forged %d replayed; %+v", tr1.AuthStats(), len(forged), len(replayed), tr1.Stats())
	}, func() bool {
		a := tr1.AuthStats()
		return a.Forged == uint64(len(forged)) && a.Replayed == uint64(len(replayed))
	})
	t.Logf("%+v, want %d forged %d replayed; %+v", tr1.AuthStats(), len(forged), len(replayed), tr1.Stats())
	after := tr1.Stats()
	if got := after.DroppedBad - before.DroppedBad; got != uint64(len(forged)+len(replayed)) {
		t.Fatalf("DroppedBad grew by %d, want %d", got, len(forged)+len(replayed))
	}
	if after.Received != before.Received {
		t.Fatalf("an attack datagram was delivered: %+v", after)
	}
	transporttest.NoFrame(t, tr1, 20*time.Millisecond)

	// From an address that is no peer's, even genuine datagrams are refused.
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	_ = tr2.Send(1, transporttest.Heartbeat(t, cid, 2, 1, 77))
	_ = tap.SetReadDeadline(time.Now().Add(wait))
	n, _, err := tap.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	fresh := append([]byte(nil), buf[:n]...)
	if _, err := stranger.WriteToUDPAddrPort(fresh, dst); err != nil {
		t.Fatal(err)
	}
	transporttest.Eventually(t, wait, "stranger refused", func() bool {
		return tr1.AuthStats().Forged == uint64(len(forged)+1)
	})
	// The genuine datagram still works from the right address afterwards.
	if _, err := conn2.WriteToUDPAddrPort(fresh, dst); err != nil {
		t.Fatal(err)
	}
	if m := transporttest.Decode(t, cid, transporttest.Recv(t, tr1, wait)); m.Commit != 77 {
		t.Fatalf("after attacks: %+v", m)
	}
}

// TestAuthRestartEpoch: after a peer restarts (new epoch), datagrams of
// its previous epoch are refused.
func TestAuthRestartEpoch(t *testing.T) {
	key := testKey()
	conns, peers, err := ListenLoopback([]raft.NodeID{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	tr1, err := New(Options{ID: 1, Conn: conns[1], Peers: peers, ClusterID: cid, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer tr1.Close()
	conn2 := conns[2]
	dst := tr1.LocalAddr()
	// The test plays node 2 with two successive sealers (two starts).
	old := seal.NewSealer(key, cid)
	time.Sleep(time.Millisecond)
	cur := seal.NewSealer(key, cid)
	oldD, _ := old.Seal(nil, transporttest.Heartbeat(t, cid, 2, 1, 1))
	oldD2, _ := old.Seal(nil, transporttest.Heartbeat(t, cid, 2, 1, 2))
	curD, _ := cur.Seal(nil, transporttest.Heartbeat(t, cid, 2, 1, 3))
	for _, d := range [][]byte{oldD, curD, oldD2} {
		if _, err := conn2.WriteToUDPAddrPort(d, dst); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []raft.Index{1, 3} {
		if m := transporttest.Decode(t, cid, transporttest.Recv(t, tr1, wait)); m.Commit != want {
			t.Fatalf("got %+v, want commit %d", m, want)
		}
	}
	transporttest.Eventually(t, wait, "old epoch refused", func() bool { return tr1.AuthStats().Replayed == 1 })
	_ = conn2.Close()
}

func eventually(t *testing.T, what string, state func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, state())
		}
		time.Sleep(time.Millisecond)
	}
}

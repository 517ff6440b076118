package cluster_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embraft/embraft/client"
	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

const memberCluster wire.ClusterID = 0x5eed

// members is an in-process cluster of members started through
// StartMember, each with its own UDP sockets on 127.0.0.1.
type members struct {
	t       *testing.T
	key     *seal.Key
	cfgs    map[raft.NodeID]cluster.MemberConfig
	mu      sync.Mutex
	running map[raft.NodeID]*cluster.Member
}

// startMembers starts n members; peerMap, if set, rewrites the peer map a
// member is given (the test's man in the middle).
func startMembers(t *testing.T, n int, key *seal.Key, peerMap func(id raft.NodeID, peers map[raft.NodeID]string) map[raft.NodeID]string) (*members, map[raft.NodeID]*net.UDPConn) {
	t.Helper()
	ms, conns := newMembers(t, n, key, peerMap)
	for id := raft.NodeID(1); id <= raft.NodeID(n); id++ {
		ms.start(id)
	}
	return ms, conns
}

// newMembers configures n members (bound sockets, data directories) and
// starts none.
func newMembers(t *testing.T, n int, key *seal.Key, peerMap func(id raft.NodeID, peers map[raft.NodeID]string) map[raft.NodeID]string) (*members, map[raft.NodeID]*net.UDPConn) {
	t.Helper()
	var ids []raft.NodeID
	for i := 1; i <= n; i++ {
		ids = append(ids, raft.NodeID(i))
	}
	conns, peers, err := udp.ListenLoopback(ids)
	if err != nil {
		t.Fatal(err)
	}
	ms := &members{t: t, key: key, cfgs: map[raft.NodeID]cluster.MemberConfig{}, running: map[raft.NodeID]*cluster.Member{}}
	dir := t.TempDir()
	for _, id := range ids {
		cconn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := peers
		if peerMap != nil {
			p = peerMap(id, peers)
		}
		ms.cfgs[id] = cluster.MemberConfig{ID: id, Peers: p, PeerConn: conns[id], ClientConn: cconn,
			ClientAddr: cconn.LocalAddr().String(), DataDir: dir + "/n" + strconv.Itoa(int(id)),
			ClusterID: memberCluster, Key: key, TickInterval: 2 * time.Millisecond}
	}
	t.Cleanup(ms.stopAll)
	t.Cleanup(func() { // the sockets of members never started
		for id, c := range conns {
			if ms.cfgs[id].PeerConn != nil {
				_ = c.Close()
				_ = ms.cfgs[id].ClientConn.Close()
			}
		}
	})
	return ms, conns
}

func (ms *members) start(id raft.NodeID) *cluster.Member {
	ms.t.Helper()
	cfg := ms.cfgs[id]
	m, err := cluster.StartMember(context.Background(), cfg)
	if err != nil {
		ms.t.Fatal(err)
	}
	// A restart binds the same addresses again.
	cfg.PeerConn, cfg.ClientConn = nil, nil
	ms.cfgs[id] = cfg
	ms.mu.Lock()
	ms.running[id] = m
	ms.mu.Unlock()
	return m
}

func (ms *members) stop(id raft.NodeID) {
	ms.mu.Lock()
	m := ms.running[id]
	delete(ms.running, id)
	ms.mu.Unlock()
	if m != nil {
		if err := m.Stop(); err != nil {
			ms.t.Errorf("stop %d: %v", id, err)
		}
	}
}

func (ms *members) stopAll() {
	for id := range ms.cfgs {
		ms.stop(id)
	}
}

func (ms *members) get(id raft.NodeID) *cluster.Member {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.running[id]
}

func (ms *members) clientAddrs() []string {
	var out []string
	for i := 1; i <= len(ms.cfgs); i++ {
		out = append(out, ms.cfgs[raft.NodeID(i)].ClientAddr)
	}
	return out
}

func (ms *members) dial(t *testing.T, seed uint64) *client.Client {
	t.Helper()
	c, err := client.Dial(client.Config{Servers: ms.clientAddrs(), ClusterID: memberCluster, Key: ms.key,
		AttemptTimeout: 300 * time.Millisecond, MaxAttempts: 50, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitConverged waits until every running member applied the same index
// and holds the same kv state.
func (ms *members) waitConverged(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ms.mu.Lock()
		var applied []raft.Index
		var digests []uint64
		for _, m := range ms.running {
			applied = append(applied, m.Node.Status().Applied)
			digests = append(digests, m.Store.Digest())
		}
		ms.mu.Unlock()
		same := true
		for i := range applied {
			same = same && applied[i] == applied[0] && digests[i] == digests[0]
		}
		if same && len(applied) > 0 && applied[0] > 0 {
			return
		}
		if time.Now().After(deadline) {
			for id, m := range ms.running {
				t.Logf("member %d: %+v", id, m.Node.Status())
			}
			t.Fatalf("members did not converge: applied %v digests %x", applied, digests)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMemberRestart: members serve clients, recover their state from
// their data directory after a stop, and refuse a second process on one
// directory.
func TestMemberRestart(t *testing.T) {
	key := seal.NewKey()
	ms, _ := startMembers(t, 3, &key, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := ms.dial(t, 1)
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if res, err := c.Put(ctx, []byte("k"+strconv.Itoa(i%5)), []byte("v"+strconv.Itoa(i))); err != nil || res.Status != kv.StatusOK {
			t.Fatalf("put %d: %+v %v", i, res, err)
		}
	}
	// A second member on a running member's directory is refused.
	cfg := ms.cfgs[2]
	cfg.Peers = map[raft.NodeID]string{2: "127.0.0.1:0"}
	cfg.ClientAddr = "off"
	if _, err := cluster.StartMember(ctx, cfg); err == nil {
		t.Fatal("second member on a locked directory started")
	}
	// Stop every member, restart them: the state is recovered.
	ms.stopAll()
	for id := raft.NodeID(1); id <= 3; id++ {
		ms.start(id)
	}
	for i := 15; i < 20; i++ {
		v, found, err := c.Get(ctx, []byte("k"+strconv.Itoa(i%5)))
		if err != nil || !found || string(v) != "v"+strconv.Itoa(i) {
			t.Fatalf("after restart: get k%d = %q %v %v", i%5, v, found, err)
		}
	}
	// The old session survives (kv state is replayed from the log).
	if res, err := c.CAS(ctx, []byte("k0"), []byte("v15"), []byte("new")); err != nil || res.Status != kv.StatusOK {
		t.Fatalf("cas after restart: %+v %v", res, err)
	}
	ms.waitConverged(t, 10*time.Second)
	sts := c.StatusAll(ctx, 2)
	leaders := 0
	for _, s := range sts {
		if s.Err != nil {
			t.Fatalf("status of %v: %v", s.Addr, s.Err)
		}
		if s.Status.Role == raft.RoleLeader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders in %+v", leaders, sts)
	}
}

func TestDefaultClientAddr(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:9001": "127.0.0.1:10001", "localhost:1": "localhost:1001"} {
		if got, err := cluster.DefaultClientAddr(in); err != nil || got != want {
			t.Errorf("%s: %s %v", in, got, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:65000", "nonsense", "127.0.0.1:x"} {
		if _, err := cluster.DefaultClientAddr(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := cluster.StartMember(context.Background(), cluster.MemberConfig{}); !errors.Is(err, cluster.ErrConfig) {
		t.Errorf("empty config: %v", err)
	}
}

// TestMemberAttacks runs three members with a cluster key and attacks
// member 2 from a man-in-the-middle position: member 1's datagrams for
// member 2 pass through the test, which forwards them from member 1's
// own socket (so their source address is right), keeps copies, and from
// that address sends forged, tampered and replayed datagrams to member
// 2's peer port. It also attacks member 2's client port with forged,
// tampered and replayed client requests. Every attack datagram must be
// dropped and counted, and the cluster must keep committing and end with
// equal state on every member.
func TestMemberAttacks(t *testing.T) {
	key := seal.NewKey()
	tap, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// Members 1 and 2 both believe the other is at the tap's address; the
	// tap relays between them (so each sees the other's datagrams coming
	// from the address it expects) and keeps copies of member 1's.
	var addr1, addr2 netip.AddrPort
	ms, _ := startMembers(t, 3, &key, func(id raft.NodeID, peers map[raft.NodeID]string) map[raft.NodeID]string {
		addr1, addr2 = netip.MustParseAddrPort(peers[1]), netip.MustParseAddrPort(peers[2])
		p := map[raft.NodeID]string{}
		for k, v := range peers {
			p[k] = v
		}
		switch id {
		case 1:
			p[2] = tap.LocalAddr().String()
		case 2:
			p[1] = tap.LocalAddr().String()
		}
		return p
	})
	dst2 := addr2
	var capMu sync.Mutex
	var captured [][]byte
	tapDone := make(chan struct{})
	go func() {
		defer close(tapDone)
		buf := make([]byte, 2048)
		for {
			n, src, err := tap.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			switch src {
			case addr1:
				d := append([]byte(nil), buf[:n]...)
				capMu.Lock()
				if len(captured) < 400 {
					captured = append(captured, d)
				}
				capMu.Unlock()
				_, _ = tap.WriteToUDPAddrPort(d, addr2)
			case addr2:
				_, _ = tap.WriteToUDPAddrPort(buf[:n], addr1)
			}
		}
	}()
	defer func() { _ = tap.Close(); <-tapDone }()
	conn1 := tap // the attacker sends from member 1's address, as member 2 knows it

	// Member 1 sends member 2 a steady stream only when 1 or 2 leads. If
	// member 3 won the election, stop it until one of them takes over,
	// and bring it back before the final convergence check.
	leader := func() raft.NodeID {
		for id := raft.NodeID(1); id <= 3; id++ {
			if m := ms.get(id); m != nil && m.Node.Status().Role == raft.RoleLeader {
				return id
			}
		}
		return raft.None
	}
	waitFor(t, 20*time.Second, "a leader", func() bool { return leader() != raft.None })
	stopped3 := false
	if leader() == 3 {
		ms.stop(3)
		stopped3 = true
		waitFor(t, 20*time.Second, "member 1 or 2 to lead", func() bool { l := leader(); return l == 1 || l == 2 })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A workload that keeps writing during the attack.
	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ms.dial(t, uint64(10+w))
			if err := c.Register(ctx); err != nil {
				t.Error(err)
				return
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := c.Put(ctx, []byte("w"+strconv.Itoa(w)), []byte(strconv.Itoa(i)))
				if err == nil && res.Status == kv.StatusOK {
					committed.Add(1)
				}
			}
		}()
	}
	waitFor(t, 20*time.Second, "captured datagrams", func() bool {
		capMu.Lock()
		defer capMu.Unlock()
		return len(captured) >= 100 && committed.Load() >= 20
	})
	capMu.Lock()
	snap := append([][]byte(nil), captured[:100]...)
	capMu.Unlock()

	victim := ms.get(2)
	rng := rand.New(rand.NewPCG(7, 8))
	var forged, replayed [][]byte
	// Random bytes, with and without the seal's magic byte.
	for range 20 {
		b := make([]byte, 10+rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		forged = append(forged, b, append([]byte{seal.Magic}, b...))
	}
	// Valid-looking frames without the key: a vote request for a huge
	// term and a heartbeat, as plain wire frames.
	vote, _ := wire.AppendMessage(nil, memberCluster, &raft.Message{Type: raft.MsgVote, From: 1, To: 2, Term: 1 << 40, Index: 1 << 40, LogTerm: 1 << 40})
	hb, _ := wire.AppendMessage(nil, memberCluster, &raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1 << 40, Commit: 1 << 40})
	forged = append(forged, vote, hb)
	// The same frames sealed with another key, and with the right key for
	// another cluster ID.
	other := seal.NewKey()
	d, _ := seal.NewSealer(&other, memberCluster).Seal(nil, vote)
	forged = append(forged, d)
	voteX, _ := wire.AppendMessage(nil, memberCluster+1, &raft.Message{Type: raft.MsgVote, From: 1, To: 2, Term: 1 << 40})
	d, _ = seal.NewSealer(&key, memberCluster+1).Seal(nil, voteX)
	forged = append(forged, d)
	// Tampered: a random bit flip in each captured datagram.
	for _, c := range snap {
		b := append([]byte(nil), c...)
		i := rng.IntN(len(b) * 8)
		b[i/8] ^= 1 << (i % 8)
		forged = append(forged, b)
	}
	// Replayed: every captured datagram, twice.
	replayed = append(replayed, snap...)
	replayed = append(replayed, snap...)
	// A forgery claiming an older epoch than member 1's is refused as
	// stale before authentication, and counted with the replays.
	e1 := binary.BigEndian.Uint64(snap[0][1:])
	s1 := binary.BigEndian.Uint64(snap[0][9:])
	var fresh [][]byte
	for _, b := range forged {
		if len(b) >= seal.Overhead && b[0] == seal.Magic {
			e, s := binary.BigEndian.Uint64(b[1:]), binary.BigEndian.Uint64(b[9:])
			if e < e1 || e == e1 && s != s1 {
				replayed = append(replayed, b)
				continue
			}
		}
		fresh = append(fresh, b)
	}
	forged = fresh

	beforeAuth := victim.Transport.AuthStats()
	beforeTr := victim.Transport.Stats()
	send := func(from *net.UDPConn, to netip.AddrPort, ds [][]byte) {
		for i, b := range ds {
			if _, err := from.WriteToUDPAddrPort(b, to); err != nil {
				t.Fatal(err)
			}
			if i%16 == 15 {
				time.Sleep(time.Millisecond) // keep the socket buffer from overflowing
			}
		}
	}
	send(conn1, dst2, forged)
	send(conn1, dst2, replayed)
	waitFor(t, 10*time.Second, "peer attack counted", func() bool {
		a := victim.Transport.AuthStats()
		return a.Forged-beforeAuth.Forged >= uint64(len(forged)) && a.Replayed-beforeAuth.Replayed >= uint64(len(replayed))
	})
	time.Sleep(50 * time.Millisecond)
	a := victim.Transport.AuthStats()
	if got := a.Forged - beforeAuth.Forged; got != uint64(len(forged)) {
		t.Errorf("peer port: %d forged counted, sent %d", got, len(forged))
	}
	if got := a.Replayed - beforeAuth.Replayed; got != uint64(len(replayed)) {
		t.Errorf("peer port: %d replays counted, sent %d", got, len(replayed))
	}
	if got := victim.Transport.Stats().DroppedBad - beforeTr.DroppedBad; got != uint64(len(forged)+len(replayed)) {
		t.Errorf("peer port: DroppedBad grew by %d, want %d", got, len(forged)+len(replayed))
	}
	t.Logf("peer port: %d forged/tampered and %d replayed datagrams refused", len(forged), len(replayed))

	// The client port.
	attacker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	caddr := victim.ClientAddr()
	// A genuine request, sealed by the test as a client would: a put in
	// a registered session. Its reply proves it was served.
	sess := ms.dial(t, 99)
	if err := sess.Register(ctx); err != nil {
		t.Fatal(err)
	}
	s := kv.Session{ClientID: sess.SessionID()}
	put := s.Put([]byte("replayed"), []byte("once"))
	frame, _ := wire.AppendClientFrame(nil, memberCluster, &wire.ClientFrame{Type: wire.ClientPropose, RequestID: 1, Data: put.AppendBinary(nil)}, 0)
	sealer := seal.NewSealer(&key, memberCluster)
	genuine, _ := sealer.Seal(nil, frame)
	if _, err := attacker.WriteToUDPAddrPort(genuine, caddr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = attacker.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := attacker.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("no reply to the genuine request: %v", err)
	}
	var cforged, creplayed [][]byte
	for range 20 {
		b := make([]byte, 10+rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		cforged = append(cforged, b)
	}
	cforged = append(cforged, frame) // the request without the seal
	d, _ = seal.NewSealer(&other, memberCluster).Seal(nil, frame)
	cforged = append(cforged, d)
	frameX, _ := wire.AppendClientFrame(nil, memberCluster+1, &wire.ClientFrame{Type: wire.ClientPropose, RequestID: 1, Data: put.AppendBinary(nil)}, 0)
	d, _ = seal.NewSealer(&key, memberCluster+1).Seal(nil, frameX)
	cforged = append(cforged, d)
	for i := seal.HeaderSize * 8; i < len(genuine)*8; i++ { // flips in the ciphertext and tag
		b := append([]byte(nil), genuine...)
		b[i/8] ^= 1 << (i % 8)
		cforged = append(cforged, b)
	}
	for range 10 {
		creplayed = append(creplayed, genuine)
	}
	before := victim.Server.Stats()
	send(attacker, caddr, cforged)
	send(attacker, caddr, creplayed)
	waitFor(t, 10*time.Second, "client attack counted", func() bool {
		st := victim.Server.Stats()
		return st.Forged-before.Forged >= uint64(len(cforged)) && st.Replayed-before.Replayed >= uint64(len(creplayed))
	})
	time.Sleep(50 * time.Millisecond)
	after := victim.Server.Stats()
	// (Requests grows: the workload's clients use member 2 too. That no
	// attack datagram was served shows below: the attacker gets no reply.)
	if after.Forged-before.Forged != uint64(len(cforged)) || after.Replayed-before.Replayed != uint64(len(creplayed)) ||
		after.Malformed != before.Malformed {
		t.Errorf("client port: before %+v after %+v; sent %d forged, %d replayed", before, after, len(cforged), len(creplayed))
	}
	_ = attacker.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _, err := attacker.ReadFromUDPAddrPort(buf); err == nil {
		t.Errorf("an attack datagram got a %d-byte reply", n)
	}
	t.Logf("client port: %d forged/tampered and %d replayed datagrams refused", len(cforged), len(creplayed))

	// The cluster is unaffected: it keeps committing, one leader, the
	// same state everywhere, and the replayed put applied once.
	n0 := committed.Load()
	waitFor(t, 20*time.Second, "commits after the attack", func() bool { return committed.Load() >= n0+20 })
	close(stop)
	wg.Wait()
	if stopped3 {
		ms.start(3)
	}
	ms.waitConverged(t, 20*time.Second)
	v, found, err := sess.Get(ctx, []byte("replayed"))
	if err != nil || !found || !bytes.Equal(v, []byte("once")) {
		t.Fatalf("replayed key: %q %v %v", v, found, err)
	}
	for id := raft.NodeID(1); id <= 3; id++ {
		st := ms.get(id).Node.Status()
		if st.Term >= 1<<40 {
			t.Fatalf("member %d adopted the forged term: %+v", id, st.Status)
		}
	}
	t.Logf("%d puts committed; member 2 transport %+v auth %+v", committed.Load(), victim.Transport.Stats(), victim.Transport.AuthStats())
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

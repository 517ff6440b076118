package cluster_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/embraft/embraft/client"
	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp/seal"
)

// TestMemberJoin: three members bootstrap with voters {1, 2, 3} while
// their address book also names member 4, which starts with Join. Over
// the client protocol (sealed), 4 is added as a learner, catches up, is
// promoted, an original voter is removed and stopped, and leadership goes
// to 4; writes from before and after stay readable. A restart of 4
// without Join keeps its membership (the data directory recorded the
// join; the configuration comes from its log). Last, the leader removes
// itself.
func TestMemberJoin(t *testing.T) {
	key := seal.NewKey()
	ms, _ := newMembers(t, 4, &key, nil)
	for id := raft.NodeID(1); id <= 4; id++ {
		cfg := ms.cfgs[id]
		if id == 4 {
			cfg.Join = true
		} else {
			cfg.Voters = []raft.NodeID{1, 2, 3}
		}
		ms.cfgs[id] = cfg
		ms.start(id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := ms.dial(t, 1)
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	put := func(k, v string) {
		t.Helper()
		if res, err := c.Put(ctx, []byte(k), []byte(v)); err != nil || res.Status != kv.StatusOK {
			t.Fatalf("put %s: %+v %v", k, res, err)
		}
	}
	get := func(c *client.Client, k, want string) {
		t.Helper()
		if v, found, err := c.Get(ctx, []byte(k)); err != nil || !found || string(v) != want {
			t.Fatalf("get %s = %q %v %v, want %q", k, v, found, err, want)
		}
	}
	put("before", "1")
	m, err := c.Membership(ctx)
	if err != nil || !m.Conf.Equal(raft.ConfState{Voters: []raft.NodeID{1, 2, 3}}) || m.Leader == raft.None || m.Leader == 4 {
		t.Fatalf("initial membership: %+v %v", m, err)
	}
	if cs := ms.get(4).Node.Status().Conf; !cs.IsEmpty() {
		t.Fatalf("the joining member has a configuration: %+v", cs)
	}
	change := func(typ raft.ConfChangeType, id raft.NodeID, want raft.ConfState) {
		t.Helper()
		m, err := c.ChangeMembership(ctx, raft.ConfChange{Type: typ, Node: id})
		if err != nil || !m.Conf.Equal(want) {
			t.Fatalf("%v: %+v %v, want %+v", raft.ConfChange{Type: typ, Node: id}, m, err, want)
		}
	}
	change(raft.ConfAddLearner, 4, raft.ConfState{Voters: []raft.NodeID{1, 2, 3}, Learners: []raft.NodeID{4}})
	// The learner catches up: it holds the write from before it joined.
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, found := ms.get(4).Store.Get([]byte("before"))
		if found && string(v) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the learner did not catch up: %+v", ms.get(4).Node.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	change(raft.ConfAddVoter, 4, raft.ConfState{Voters: []raft.NodeID{1, 2, 3, 4}})
	// Remove an original voter that does not lead, and stop it.
	m, err = c.Membership(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gone := raft.NodeID(1)
	for gone == m.Leader || gone == 4 {
		gone++
	}
	rest := slices.DeleteFunc([]raft.NodeID{1, 2, 3, 4}, func(id raft.NodeID) bool { return id == gone })
	change(raft.ConfRemove, gone, raft.ConfState{Voters: rest})
	ms.stop(gone)
	if m, err := c.TransferLeadership(ctx, 4); err != nil || m.Leader != 4 {
		t.Fatalf("transfer to 4: %+v %v", m, err)
	}
	put("after", "2")
	get(c, "before", "1")
	get(c, "after", "2")
	if m, err := c.Membership(ctx); err != nil || m.Node != 4 || m.Leader != 4 || !m.Conf.Equal(raft.ConfState{Voters: rest}) {
		t.Fatalf("final membership: %+v %v", m, err)
	}

	// The data directories recorded how each member started.
	for id, want := range map[raft.NodeID]string{1: "voters 1 2 3", 4: "join"} {
		b, err := os.ReadFile(filepath.Join(ms.cfgs[id].DataDir, "bootstrap"))
		if err != nil || !strings.Contains(string(b), "\n"+want+"\n") {
			t.Fatalf("member %d bootstrap file %q %v, want %q", id, b, err, want)
		}
	}
	// Member 4 restarted without Join and with the default initial voters
	// (the whole address book) stays a voter of the same configuration.
	ms.stop(4)
	cfg := ms.cfgs[4]
	cfg.Join = false
	ms.cfgs[4] = cfg
	m4 := ms.start(4)
	if cs := m4.Node.Status().Conf; !cs.Equal(raft.ConfState{Voters: rest}) {
		t.Fatalf("member 4 restarted with configuration %+v", cs)
	}
	put("restart", "3")
	get(c, "restart", "3")
	ms.waitConverged(t, 20*time.Second)

	// Removing the leader itself: it answers once the change is applied
	// and steps down; the remaining voters elect a leader among them.
	m, err = c.Membership(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := m.Leader
	left := slices.DeleteFunc(slices.Clone(rest), func(id raft.NodeID) bool { return id == old })
	change(raft.ConfRemove, old, raft.ConfState{Voters: left})
	ms.stop(old)
	put("last", "4")
	get(c, "before", "1")
	get(c, "last", "4")
	if m, err := c.Membership(ctx); err != nil || m.Leader == old || !slices.Contains(left, m.Leader) {
		t.Fatalf("membership after removing leader %d: %+v %v", old, m, err)
	}
}

// TestMemberBootstrapConfig: Join and Voters are checked, and a damaged
// bootstrap record stops the member from starting.
func TestMemberBootstrapConfig(t *testing.T) {
	dir := t.TempDir()
	// withConn gives cfg a freshly bound peer socket (StartMember owns it).
	withConn := func(cfg cluster.MemberConfig) cluster.MemberConfig {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		cfg.PeerConn = conn
		cfg.Peers = map[raft.NodeID]string{1: "127.0.0.1:1", 2: conn.LocalAddr().String()}
		return cfg
	}
	base := cluster.MemberConfig{ID: 2, Peers: map[raft.NodeID]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"},
		ClientAddr: "off", DataDir: filepath.Join(dir, "n2"), ClusterID: 9}
	for name, mut := range map[string]func(*cluster.MemberConfig){
		"join with voters":     func(c *cluster.MemberConfig) { c.Join, c.Voters = true, []raft.NodeID{2} },
		"voters without self":  func(c *cluster.MemberConfig) { c.Voters = []raft.NodeID{1} },
		"voter without a peer": func(c *cluster.MemberConfig) { c.Voters = []raft.NodeID{2, 3} },
	} {
		cfg := base
		mut(&cfg)
		if _, err := cluster.StartMember(context.Background(), cfg); !errors.Is(err, cluster.ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := os.MkdirAll(base.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "voters\n", "voters 2 1\n", "voters 0\n", "join\njoin\n", "voters x\n", "hello\n"} {
		if err := os.WriteFile(filepath.Join(base.DataDir, "bootstrap"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if m, err := cluster.StartMember(context.Background(), withConn(base)); err == nil || !strings.Contains(err.Error(), "bootstrap") {
			if m != nil {
				_ = m.Stop()
			}
			t.Errorf("bootstrap %q: %v", bad, err)
		}
	}
	// A good record is used whatever the flags say.
	if err := os.WriteFile(filepath.Join(base.DataDir, "bootstrap"), []byte("# x\nvoters 1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := base
	cfg.Join = true
	m, err := cluster.StartMember(context.Background(), withConn(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if cs := m.Node.Status().Conf; !cs.Equal(raft.ConfState{Voters: []raft.NodeID{1, 2}}) {
		t.Fatalf("configuration %+v", cs)
	}
}

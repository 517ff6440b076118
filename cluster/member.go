package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/embraft/embraft/client"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
	"github.com/embraft/embraft/transport/udp"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

// ClientPortOffset is added to a member's peer port to get its default
// client port (peer 127.0.0.1:9001 -> clients 127.0.0.1:10001).
const ClientPortOffset = 1000

// MemberConfig describes ONE member of a cluster whose members run in
// separate processes (or on separate hosts): file storage, the OS UDP
// transport, the kv state machine, and the client protocol.
type MemberConfig struct {
	ID raft.NodeID
	// Peers maps every member, this one included, to its peer address
	// (host:port). The member listens on Peers[ID] unless PeerConn is set.
	// It is an address book: it may name nodes that are not (or no
	// longer, or not yet) members; Raft's configuration says who is.
	Peers map[raft.NodeID]string
	// Voters, on the first start in DataDir, are the initial voters (the
	// bootstrap configuration); they must include ID and have addresses in
	// Peers. Empty: every node in Peers. Ignored once DataDir is
	// initialized (see Join).
	Voters []raft.NodeID
	// Join, on the first start in DataDir, starts the member with no
	// configuration: it waits to be added by the leader
	// (node.ChangeMembership; a learner first, then a voter) and never
	// campaigns before it is a voter. Excludes Voters.
	//
	// The first start records the choice in DataDir/bootstrap, and every
	// later start takes it from there, whatever Join, Voters and Peers say
	// then (the configuration itself comes from the log and snapshots,
	// which start from this bootstrap): growing the address book or
	// restarting a joined member without Join cannot change the
	// configuration.
	Join bool
	// PeerConn, if set, is an already bound peer socket (tests); the
	// member owns it from StartMember on.
	PeerConn *net.UDPConn
	// ClientAddr is where the member serves clients. Empty: the peer
	// address's host with the peer port + ClientPortOffset. "off": no
	// client server.
	ClientAddr string
	// ClientConn, if set, is an already bound client socket (tests).
	ClientConn *net.UDPConn
	// DataDir holds the member's state: its log and hard state in
	// DataDir/raft (storage/file) and a lock file that keeps a second
	// process off the directory.
	DataDir   string
	ClusterID wire.ClusterID
	// Key, if set, authenticates and encrypts every peer and client
	// datagram (docs/SECURITY.md). Nil: unauthenticated, with a warning.
	Key *seal.Key
	// TickInterval is the core's tick (default node.DefaultTickInterval).
	TickInterval time.Duration
	// Raft is a template for the core (ticks, bounds, pre-vote); ID,
	// Peers and Storage are set here. Every member must use the same.
	Raft raft.Config
	// KV bounds the store; every member must use the same.
	KV kv.Options
	// ClientMaxInFlight and RequestTimeout bound the client server (zero:
	// client package defaults).
	ClientMaxInFlight int
	RequestTimeout    time.Duration
	// AllowNonLoopback permits addresses outside 127.0.0.0/8.
	AllowNonLoopback bool
	Logger           *slog.Logger
}

// Member is one running member.
type Member struct {
	Node      *node.Node
	Store     *kv.Store
	Transport *udp.Transport
	// Server serves the client protocol (nil if ClientAddr is "off").
	Server *client.Server
	lock   *os.File
}

// DefaultClientAddr returns the default client address for a member whose
// peer address is peer: the same host, port + ClientPortOffset.
func DefaultClientAddr(peer string) (string, error) {
	host, port, err := net.SplitHostPort(peer)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p+ClientPortOffset > 65535 {
		return "", errors.New("cluster: peer port " + port + " leaves no default client port (give the client address)")
	}
	return net.JoinHostPort(host, strconv.Itoa(p+ClientPortOffset)), nil
}

func (c *MemberConfig) validate() error {
	bad := func(why string) error { return errors.Join(ErrConfig, errors.New("cluster: "+why)) }
	switch {
	case c.ID == raft.None:
		return bad("member ID must not be 0")
	case c.Peers[c.ID] == "" && c.PeerConn == nil:
		return bad("peers give no address for member " + strconv.FormatUint(uint64(c.ID), 10))
	case c.DataDir == "":
		return bad("a member needs a data directory")
	case len(c.Peers) > MaxNodes:
		return bad("at most " + strconv.Itoa(MaxNodes) + " members")
	case c.Join && len(c.Voters) > 0:
		return bad("a joining member has no initial voters")
	case len(c.Voters) > 0 && !slices.Contains(c.Voters, c.ID):
		return bad("the initial voters do not include member " + strconv.FormatUint(uint64(c.ID), 10) + " (start it with Join)")
	}
	for _, v := range c.Voters {
		if _, ok := c.Peers[v]; !ok && v != c.ID {
			return bad("initial voter " + strconv.FormatUint(uint64(v), 10) + " has no peer address")
		}
	}
	return nil
}

// bootstrapFile, in a member's DataDir, records how the member started
// first: "join", or "voters" and the initial voters.
const bootstrapFile = "bootstrap"

// bootstrap returns the initial voters recorded in dir (nil: the member
// joined), recording them first from cfg if dir has none.
func bootstrap(cfg *MemberConfig, log *slog.Logger) ([]raft.NodeID, error) {
	path := filepath.Join(cfg.DataDir, bootstrapFile)
	b, err := os.ReadFile(path)
	if err == nil {
		voters, err := parseBootstrap(b)
		if err != nil {
			return nil, errors.New("cluster: " + path + ": " + err.Error())
		}
		if given := initialVoters(cfg); (cfg.Join || len(cfg.Voters) > 0) && !slices.Equal(given, voters) {
			log.Warn("the data directory was initialized with another initial configuration; using it (join or voters apply to a fresh data directory only)",
				"recorded_voters", voters, "given_voters", given)
		}
		return voters, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	voters := initialVoters(cfg)
	if err := writeFileSync(path, formatBootstrap(voters)); err != nil {
		return nil, err
	}
	if voters == nil {
		log.Info("fresh data directory: joining, waiting to be added by the leader")
	} else {
		log.Info("initial configuration recorded", "voters", voters)
	}
	return voters, nil
}

// initialVoters returns the bootstrap voters cfg asks for (nil: join).
func initialVoters(cfg *MemberConfig) []raft.NodeID {
	if cfg.Join {
		return nil
	}
	var ids []raft.NodeID
	if len(cfg.Voters) > 0 {
		ids = slices.Clone(cfg.Voters)
	} else {
		for id := range cfg.Peers {
			ids = append(ids, id)
		}
		if !slices.Contains(ids, cfg.ID) {
			ids = append(ids, cfg.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func formatBootstrap(voters []raft.NodeID) []byte {
	b := []byte("# embraft: how this member first started (do not edit)\n")
	if voters == nil {
		return append(b, "join\n"...)
	}
	b = append(b, "voters"...)
	for _, v := range voters {
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return append(b, '\n')
}

func parseBootstrap(b []byte) ([]raft.NodeID, error) {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		return nil, errors.New("want one line, \"join\" or \"voters ID...\"")
	}
	f := strings.Fields(lines[0])
	switch {
	case len(f) == 1 && f[0] == "join":
		return nil, nil
	case len(f) < 2 || f[0] != "voters" || len(f)-1 > raft.MaxMembers:
		return nil, errors.New("want \"join\" or \"voters ID...\", got " + strconv.Quote(lines[0]))
	}
	voters := make([]raft.NodeID, 0, len(f)-1)
	for _, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v == 0 || len(voters) > 0 && raft.NodeID(v) <= voters[len(voters)-1] {
			return nil, errors.New("bad voter list " + strconv.Quote(lines[0]))
		}
		voters = append(voters, raft.NodeID(v))
	}
	return voters, nil
}

// writeFileSync writes path atomically and durably: a temporary file,
// fsync, rename, fsync of the directory.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// StartMember starts one member: it locks DataDir, opens (and recovers)
// the file storage, binds the peer socket, replays the log into a fresh
// kv store, starts the node and the client server. Stop it with
// Member.Stop (or by cancelling ctx, then Member.Stop to release the rest).
func StartMember(ctx context.Context, cfg MemberConfig) (_ *Member, err error) {
	closeConns := func() {
		for _, c := range []*net.UDPConn{cfg.PeerConn, cfg.ClientConn} {
			if c != nil {
				_ = c.Close()
			}
		}
	}
	if err := cfg.validate(); err != nil {
		closeConns()
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger
	mlog := log.With("node", uint64(cfg.ID)) // the packages below name the node themselves
	if cfg.Key == nil {
		mlog.Warn("no cluster key: peer and client datagrams are NOT authenticated; anyone who can reach the ports can forge votes, appends and commands (see docs/SECURITY.md)")
	}
	m := &Member{}
	defer func() {
		if err != nil {
			m.release()
			closeConns()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	if m.lock, err = lockDir(filepath.Join(cfg.DataDir, "LOCK")); err != nil {
		return nil, err
	}
	voters, err := bootstrap(&cfg, mlog)
	if err != nil {
		return nil, err
	}
	st, err := file.Open(filepath.Join(cfg.DataDir, "raft"), file.Options{ClusterID: cfg.ClusterID, NodeID: cfg.ID, Logger: log})
	if err != nil {
		return nil, err
	}
	tr, err := udp.New(udp.Options{ID: cfg.ID, Conn: cfg.PeerConn, Peers: cfg.Peers, ClusterID: cfg.ClusterID,
		Key: cfg.Key, AllowNonLoopback: cfg.AllowNonLoopback, Logger: log})
	cfg.PeerConn = nil // owned (and closed on failure) by udp.New
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	var cconn *net.UDPConn
	if cfg.ClientAddr != "off" {
		if cconn, err = listenClient(&cfg); err != nil {
			_, _ = st.Close(), tr.Close()
			return nil, err
		}
		cfg.ClientConn = nil
	}
	store := kv.New(cfg.KV)
	rc := cfg.Raft
	rc.ID, rc.Peers = cfg.ID, voters // nil: join
	if rc.Seed == 0 {
		rc.Seed = uint64(time.Now().UnixNano())
	}
	n, err := node.Start(ctx, node.Config{Raft: rc, ClusterID: cfg.ClusterID, Storage: st, Transport: tr,
		StateMachine: store, TickInterval: cfg.TickInterval, Logger: log})
	if err != nil {
		_, _ = st.Close(), tr.Close()
		if cconn != nil {
			_ = cconn.Close()
		}
		return nil, err
	}
	m.Node, m.Store, m.Transport = n, store, tr
	if cconn != nil {
		m.Server, err = client.NewServer(client.ServerConfig{Conn: cconn, ClusterID: cfg.ClusterID, Key: cfg.Key,
			Node: n, Store: store, MaxInFlight: cfg.ClientMaxInFlight, RequestTimeout: cfg.RequestTimeout, Logger: log,
			Reachable: func(id raft.NodeID) bool { _, ok := cfg.Peers[id]; return ok || id == cfg.ID }})
		if err != nil {
			_ = n.Stop()
			m.Node = nil
			return nil, err
		}
	}
	attrs := []any{"peer_addr", tr.LocalAddr().String(), "peers", len(cfg.Peers), "data_dir", cfg.DataDir,
		"authenticated", cfg.Key != nil}
	if cs := n.Status().Conf; cs.IsEmpty() {
		attrs = append(attrs, "membership", "none yet (waiting to be added)")
	} else {
		attrs = append(attrs, "voters", cs.Voters, "learners", cs.Learners)
	}
	if m.Server != nil {
		attrs = append(attrs, "client_addr", m.Server.Addr().String())
	}
	mlog.Info("member started", attrs...)
	return m, nil
}

func listenClient(cfg *MemberConfig) (*net.UDPConn, error) {
	if cfg.ClientConn != nil {
		return cfg.ClientConn, nil
	}
	addr := cfg.ClientAddr
	if addr == "" {
		var err error
		if addr, err = DefaultClientAddr(cfg.Peers[cfg.ID]); err != nil {
			return nil, errors.Join(ErrConfig, err)
		}
	}
	ap, err := udp.Resolve(addr, cfg.AllowNonLoopback)
	if err != nil {
		return nil, errors.Join(ErrConfig, errors.New("cluster: client address "+addr+": "+err.Error()))
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, errors.New("cluster: client address " + addr + ": " + err.Error())
	}
	return conn, nil
}

// ClientAddr returns the address the member serves clients on (invalid if
// it serves none).
func (m *Member) ClientAddr() netip.AddrPort {
	if m.Server == nil {
		return netip.AddrPort{}
	}
	return m.Server.Addr()
}

// Stop shuts the member down gracefully: the node answers its pending
// requests (clients get CodeStopped), closes its storage and peer
// socket; then the client server and the directory lock are released. It
// returns the error that stopped the node earlier, if any.
func (m *Member) Stop() error {
	var err error
	if m.Node != nil {
		err = m.Node.Stop()
	}
	m.release()
	return err
}

func (m *Member) release() {
	if m.Server != nil {
		_ = m.Server.Close()
	}
	if m.lock != nil {
		unlockDir(m.lock)
		m.lock = nil
	}
}

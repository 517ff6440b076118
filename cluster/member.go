package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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
	Peers map[raft.NodeID]string
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
	}
	return nil
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
	st, err := file.Open(filepath.Join(cfg.DataDir, "raft"), file.Options{ClusterID: cfg.ClusterID, NodeID: cfg.ID, Logger: log})
	if err != nil {
		return nil, err
	}
	ids := make([]raft.NodeID, 0, len(cfg.Peers))
	for id := range cfg.Peers {
		ids = append(ids, id)
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
	rc.ID, rc.Peers = cfg.ID, sortedIDs(ids)
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
			Node: n, Store: store, MaxInFlight: cfg.ClientMaxInFlight, RequestTimeout: cfg.RequestTimeout, Logger: log})
		if err != nil {
			_ = n.Stop()
			m.Node = nil
			return nil, err
		}
	}
	attrs := []any{"peer_addr", tr.LocalAddr().String(), "peers", len(cfg.Peers), "data_dir", cfg.DataDir,
		"authenticated", cfg.Key != nil}
	if m.Server != nil {
		attrs = append(attrs, "client_addr", m.Server.Addr().String())
	}
	mlog.Info("member started", attrs...)
	return m, nil
}

func sortedIDs(ids []raft.NodeID) []raft.NodeID {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
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

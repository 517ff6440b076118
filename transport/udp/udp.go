package udp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/transport/internal/dgram"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

// Defaults for Options fields left at zero.
const (
	DefaultSendQueue   = dgram.DefaultSendQueue   // frames queued per peer
	DefaultInboxSize   = dgram.DefaultInboxSize   // received frames not yet taken
	DefaultMaxDatagram = dgram.DefaultMaxDatagram // bytes: wire.DefaultMaxFrameBytes
)

// Errors wrapped by New's configuration errors.
var (
	ErrConfig = errors.New("udp: invalid options")
	// ErrNotLoopback: an address is outside 127.0.0.0/8 and
	// AllowNonLoopback is not set.
	ErrNotLoopback = errors.New("udp: address outside 127.0.0.0/8")
	// ErrTooLarge: Send was given a frame longer than MaxDatagram.
	ErrTooLarge = dgram.ErrTooLarge
)

// Options configures a Transport.
type Options struct {
	// ID is this node.
	ID raft.NodeID
	// Listen is the local host:port to bind ("127.0.0.1:0" picks a free
	// port). Empty: Peers[ID]. Ignored when Conn is set.
	Listen string
	// Conn, if set, is an already bound socket to use instead of Listen;
	// the transport owns it from New on (and closes it, even if New
	// fails). Binding every node's socket first on port 0 and building
	// Peers from their addresses avoids port races (see ListenLoopback).
	Conn *net.UDPConn
	// Peers maps every member to its host:port. An entry for ID itself is
	// allowed (so every node can be given the same map) and is used as
	// the listen address when Listen and Conn are not set.
	Peers map[raft.NodeID]string
	// ClusterID is the cluster every accepted frame must belong to.
	ClusterID wire.ClusterID
	// SendQueue bounds the frames queued per peer (default 16).
	SendQueue int
	// InboxSize bounds the received frames not yet taken (default 32).
	InboxSize int
	// MaxDatagram bounds a frame, sent or received (default 1200 bytes).
	MaxDatagram int
	// MaxEntries bounds the entries of a received MsgApp or MsgProp
	// (default wire.DefaultMaxEntries); keep it equal to the node's
	// WireLimits.MaxEntries.
	MaxEntries int
	// AllowNonLoopback permits addresses outside 127.0.0.0/8 (a cluster
	// across hosts). Without it New refuses them: tests and single-host
	// clusters stay on loopback.
	AllowNonLoopback bool
	// Key, if set, authenticates and encrypts every datagram with the
	// pre-shared cluster key (package seal, docs/SECURITY.md): datagrams
	// that do not open — forged, tampered, sealed with another key or for
	// another cluster ID, unsealed — and replayed ones are dropped and
	// counted (Stats.DroppedBad, AuthStats). A sealed datagram is
	// seal.Overhead (41) bytes longer than its frame. Nil: datagrams
	// travel unauthenticated, as plain frames.
	Key *seal.Key
	// Logger receives events; nil discards them.
	Logger *slog.Logger

	beforeTake func(raft.NodeID) // test hook: stall the senders
}

// Transport is one node's UDP endpoint; it implements transport.Transport.
type Transport struct {
	core      *dgram.Core
	conn      *net.UDPConn
	local     netip.AddrPort
	log       *slog.Logger
	readDone  chan struct{}
	closeOnce sync.Once

	// Authentication (Options.Key), nil without a key.
	sealer   *seal.Sealer
	opener   *seal.Ordered[raft.NodeID]
	byAddr   map[netip.AddrPort]raft.NodeID
	sealPool sync.Pool // *[]byte
	auth     struct{ forged, replayed atomic.Uint64 }
	warned   time.Time // last warning about refused datagrams (read loop only)
}

// AuthStats counts datagrams refused by authentication (Options.Key). Each
// is also counted in Stats.DroppedBad.
type AuthStats struct {
	// Forged counts datagrams that did not authenticate: not sealed,
	// forged, tampered, sealed with another key or for another cluster ID,
	// or from an address that is no peer's.
	Forged uint64
	// Replayed counts datagrams refused as replays: an authentic datagram
	// whose counter was already accepted or is older than the replay
	// window, or a datagram claiming an epoch older than the newest seen
	// from that peer (checked before authentication, so a forged header
	// naming an old epoch counts here too).
	Replayed uint64
}

var _ transport.Transport = (*Transport)(nil)

// New binds the node's socket and starts its receive loop and one sender
// goroutine per peer.
func New(opts Options) (t *Transport, err error) {
	conn := opts.Conn
	defer func() {
		if err != nil && conn != nil {
			_ = conn.Close()
		}
	}()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ID == raft.None {
		return nil, configError("ID must not be 0")
	}
	peers := make(map[raft.NodeID]netip.AddrPort, len(opts.Peers))
	for id, s := range opts.Peers {
		ap, err := Resolve(s, opts.AllowNonLoopback)
		if err != nil {
			return nil, fmt.Errorf("%w: peer %d: %w", ErrConfig, id, err)
		}
		peers[id] = ap
	}
	if conn == nil {
		listen := opts.Listen
		if listen == "" {
			listen = opts.Peers[opts.ID]
		}
		if listen == "" {
			return nil, configError("Listen is empty and Peers has no address for ID")
		}
		la, err := Resolve(listen, opts.AllowNonLoopback)
		if err != nil {
			return nil, fmt.Errorf("%w: listen: %w", ErrConfig, err)
		}
		if conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(la)); err != nil {
			return nil, err
		}
	}
	local := dgram.Unmap(conn.LocalAddr().(*net.UDPAddr).AddrPort())
	if err := checkAddr(local.Addr(), opts.AllowNonLoopback); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if self, ok := peers[opts.ID]; ok && self != local {
		return nil, configError("socket bound to " + local.String() + " but Peers gives this node " + self.String())
	}
	t = &Transport{conn: conn, local: local, readDone: make(chan struct{}),
		log: opts.Logger.With("transport", "udp", "node", uint64(opts.ID))}
	write := func(to netip.AddrPort, frame []byte) error {
		_, err := conn.WriteToUDPAddrPort(frame, to)
		return err
	}
	if opts.Key != nil {
		t.sealer = seal.NewSealer(opts.Key, opts.ClusterID)
		t.opener = seal.NewOrdered[raft.NodeID](opts.Key, opts.ClusterID)
		t.byAddr = map[netip.AddrPort]raft.NodeID{}
		for id, ap := range peers {
			if id != opts.ID {
				t.byAddr[ap] = id
			}
		}
		t.sealPool.New = func() any { b := make([]byte, 0, dgram.DefaultMaxDatagram+seal.Overhead); return &b }
		write = func(to netip.AddrPort, frame []byte) error {
			buf := t.sealPool.Get().(*[]byte)
			defer t.sealPool.Put(buf)
			d, err := t.sealer.Seal((*buf)[:0], frame)
			if err != nil {
				return err
			}
			*buf = d
			_, err = conn.WriteToUDPAddrPort(d, to)
			return err
		}
	}
	t.core, err = dgram.New(dgram.Config{
		ID: opts.ID, Cluster: opts.ClusterID, Peers: peers,
		SendQueue: opts.SendQueue, InboxSize: opts.InboxSize, MaxDatagram: opts.MaxDatagram,
		MaxEntries: opts.MaxEntries, BeforeTake: opts.beforeTake, Write: write,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	go t.readLoop()
	t.log.Debug("udp transport listening", "addr", local.String(), "peers", len(peers), "authenticated", opts.Key != nil)
	return t, nil
}

func configError(why string) error { return fmt.Errorf("%w: %s", ErrConfig, why) }

// Resolve parses host:port into an address, resolving a host name, and
// refuses addresses outside 127.0.0.0/8 unless allowNonLoopback is set.
// Port 0 is allowed (for binding).
func Resolve(hostport string, allowNonLoopback bool) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		network := "udp4" // a loopback-only configuration needs an IPv4 address
		if allowNonLoopback {
			network = "udp"
		}
		ua, rerr := net.ResolveUDPAddr(network, hostport)
		if rerr != nil {
			return netip.AddrPort{}, rerr
		}
		ap = ua.AddrPort()
	}
	ap = dgram.Unmap(ap)
	if err := checkAddr(ap.Addr(), allowNonLoopback); err != nil {
		return netip.AddrPort{}, err
	}
	return ap, nil
}

func checkAddr(a netip.Addr, allowNonLoopback bool) error {
	a = a.Unmap()
	if allowNonLoopback || (a.Is4() && a.IsLoopback()) {
		return nil
	}
	return &addrError{addr: a}
}

type addrError struct{ addr netip.Addr }

func (e *addrError) Error() string {
	return e.addr.String() + " is not in 127.0.0.0/8 (set AllowNonLoopback to use other hosts)"
}
func (e *addrError) Unwrap() error { return ErrNotLoopback }

func (t *Transport) readLoop() {
	defer close(t.readDone)
	limit := t.core.MaxDatagram()
	if t.opener != nil {
		limit += seal.Overhead
	}
	buf := make([]byte, limit+1) // one more byte detects oversized datagrams
	var plain []byte
	if t.opener != nil {
		plain = make([]byte, 0, t.core.MaxDatagram()+1)
	}
	for {
		n, src, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if t.core.Closed() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("udp read failed", "err", err)
			time.Sleep(time.Millisecond) // never spin on a persistent error
			continue
		}
		frame := buf[:n]
		if t.opener != nil {
			if frame, err = t.open(plain[:0], frame, src); err != nil {
				continue
			}
		}
		if v := t.core.Receive(frame, src); v != dgram.Delivered {
			t.log.Debug("datagram dropped", "why", v.String(), "from", src.String(), "bytes", n)
		}
	}
}

// open authenticates the sealed datagram d from src and returns its frame,
// or counts and drops it.
func (t *Transport) open(dst, d []byte, src netip.AddrPort) ([]byte, error) {
	src = dgram.Unmap(src)
	id, known := t.byAddr[src]
	var err error
	switch {
	case len(d) > t.core.MaxDatagram()+seal.Overhead:
		err = seal.ErrFormat // oversized (and cut)
	case !known:
		err = seal.ErrAuth // no peer's address: no sender to check the replay window of
	default:
		dst, err = t.opener.Open(dst, id, d)
	}
	if err == nil {
		return dst, nil
	}
	t.core.Counters.DroppedBad.Add(1)
	if errors.Is(err, seal.ErrReplay) || errors.Is(err, seal.ErrStaleEpoch) {
		t.auth.replayed.Add(1)
	} else {
		t.auth.forged.Add(1)
	}
	t.log.Debug("datagram refused", "err", err, "from", src.String(), "bytes", len(d))
	if now := time.Now(); now.Sub(t.warned) >= 10*time.Second {
		t.warned = now
		a := t.AuthStats()
		t.log.Warn("refusing datagrams that fail authentication (wrong or missing cluster key, forgery, replay)",
			"from", src.String(), "err", err, "forged_total", a.Forged, "replayed_total", a.Replayed)
	}
	return nil, err
}

// AuthStats returns the counts of datagrams refused by authentication
// (zero without Options.Key).
func (t *Transport) AuthStats() AuthStats {
	return AuthStats{Forged: t.auth.forged.Load(), Replayed: t.auth.replayed.Load()}
}

// Authenticated reports whether the transport seals its datagrams.
func (t *Transport) Authenticated() bool { return t.sealer != nil }

// Send implements transport.Transport: it queues a copy of frame for peer
// to, or drops it (DroppedFull) when that peer's queue is full. It fails
// with transport.ErrUnknownPeer for a node that is not a peer and
// ErrTooLarge for a frame longer than MaxDatagram.
func (t *Transport) Send(to raft.NodeID, frame []byte) error { return t.core.Send(to, frame) }

// Inbox implements transport.Transport.
func (t *Transport) Inbox() <-chan []byte { return t.core.Inbox() }

// Stats implements transport.Transport.
func (t *Transport) Stats() transport.Stats { return t.core.Stats() }

// LocalAddr returns the address the socket is bound to.
func (t *Transport) LocalAddr() netip.AddrPort { return t.local }

// Close implements transport.Transport: it closes the socket and waits for
// the transport's goroutines. It is idempotent.
func (t *Transport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.core.Close()
		err = t.conn.Close()
		<-t.readDone
		t.core.Wait()
	})
	return err
}

// ParsePeers parses "1=127.0.0.1:9001,2=127.0.0.1:9002" into a peer map.
// Entries are separated by commas (spaces around them are ignored); IDs
// are positive decimal integers and must not repeat; each address must be
// host:port. Addresses are checked (and names resolved) by New.
func ParsePeers(s string) (map[raft.NodeID]string, error) {
	peers := map[raft.NodeID]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(item, "=")
		if !ok {
			return nil, configError("peer " + strconv.Quote(item) + " is not ID=host:port")
		}
		id, err := strconv.ParseUint(strings.TrimSpace(idStr), 10, 64)
		if err != nil || id == 0 {
			return nil, configError("peer " + strconv.Quote(item) + ": ID must be a positive integer")
		}
		addr = strings.TrimSpace(addr)
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, configError("peer " + strconv.Quote(item) + ": " + err.Error())
		}
		if _, dup := peers[raft.NodeID(id)]; dup {
			return nil, configError("peer ID " + strconv.FormatUint(id, 10) + " given twice")
		}
		peers[raft.NodeID(id)] = addr
	}
	if len(peers) == 0 {
		return nil, configError("no peers")
	}
	return peers, nil
}

// FormatPeers is the inverse of ParsePeers (entries in ID order).
func FormatPeers(peers map[raft.NodeID]string) string {
	ids := make([]raft.NodeID, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10) + "=" + peers[id])
	}
	return b.String()
}

// ListenLoopback binds one socket on 127.0.0.1 with a free port for each
// of ids and returns them with the matching peer map: hand conns[id] to
// New as Options.Conn and peers as Options.Peers. On error every socket
// already bound is closed.
func ListenLoopback(ids []raft.NodeID) (conns map[raft.NodeID]*net.UDPConn, peers map[raft.NodeID]string, err error) {
	conns = map[raft.NodeID]*net.UDPConn{}
	peers = map[raft.NodeID]string{}
	for _, id := range ids {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, nil, err
		}
		conns[id] = c
		peers[id] = c.LocalAddr().(*net.UDPAddr).AddrPort().String()
	}
	return conns, peers, nil
}

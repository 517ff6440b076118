// Package client is embraft's client protocol over UDP (docs/CLIENT.md):
// Server answers requests at one member, Client sends them to a cluster.
//
// A request — propose an encoded kv.Command, read a key linearizably or
// stale, ask for the status — goes to any member's client address and is
// served there: writes through node.Propose (a follower forwards to the
// leader inside Raft), linearizable reads through node.LinearizableRead
// and then the member's kv.Store, stale reads from the store alone. The
// reply comes once the command is applied (or the read done), or is an
// error with a code and, when known, the leader's ID. Frames are
// wire.ClientFrame; with a cluster key every datagram is sealed (package
// transport/udp/seal).
//
// Client runs one exactly-once kv session: it registers the session
// through any member, numbers its commands, and retries the same encoded
// command on other members (the named leader first) when an attempt times
// out or fails in a retryable way, so a command is applied at most once
// however many copies reach the log.
//
// The admin requests — ChangeMembership, TransferLeadership, Membership —
// are served by the leader only: any other member answers with the
// leader's ID, and the client retries there (or on the next member while
// no leader is known). The leader answers a change the configuration
// already has at once, so retrying one is harmless.
package client

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

// Defaults for Config fields left at zero.
const (
	DefaultAttemptTimeout = time.Second
	DefaultMaxAttempts    = 30
	DefaultBackoff        = 20 * time.Millisecond
)

var (
	// ErrNoOutcome: every attempt ended without an outcome (timeouts,
	// leader changes) or the context ended first. A write may or may not
	// have been applied; a read had no effect.
	ErrNoOutcome = errors.New("client: no outcome (a write may or may not have been applied)")
	// ErrNoSession: a command was sent before Register.
	ErrNoSession = errors.New("client: no session (call Register first)")
	// ErrConfig: the configuration is not valid.
	ErrConfig = errors.New("client: invalid config")
)

// Error is a member's refusal that retrying cannot fix (CodeTooLarge,
// CodeBadRequest), or the last refusal when the attempts ran out.
type Error struct {
	Code   wire.ErrorCode
	Node   raft.NodeID // the member that answered
	Leader raft.NodeID // the leader it named, if any
}

func (e *Error) Error() string {
	s := "client: node " + strconv.FormatUint(uint64(e.Node), 10) + ": " + e.Code.String()
	if e.Leader != raft.None {
		s += " (leader " + strconv.FormatUint(uint64(e.Leader), 10) + ")"
	}
	return s
}

// Config configures a Client.
type Config struct {
	// Servers are the members' client addresses (host:port).
	Servers   []string
	ClusterID wire.ClusterID
	// Key, if set, seals every datagram (the cluster key). Nil:
	// unauthenticated.
	Key *seal.Key
	// AttemptTimeout bounds one attempt (default 1 s); MaxAttempts bounds
	// the attempts of one request (default 30); Backoff is the pause
	// before retrying after a refusal (default 20 ms).
	AttemptTimeout time.Duration
	MaxAttempts    int
	Backoff        time.Duration
	// Seed picks the first member to try (0: random).
	Seed uint64
}

// Client sends requests to a cluster and runs one kv session. Its methods
// are safe for concurrent use but run one request at a time (a session
// has one command outstanding).
type Client struct {
	cfg      Config
	conn     *net.UDPConn
	servers  []netip.AddrPort
	index    map[netip.AddrPort]int
	maxFrame int
	key      *seal.Key
	opener   *seal.Ordered[netip.AddrPort]

	// mu serializes requests (one at a time) and guards everything below.
	mu      sync.Mutex
	sealer  *seal.Sealer
	rng     *rand.Rand
	next    int                 // round-robin position
	byID    map[raft.NodeID]int // member ID -> index in servers, learned from replies
	leader  raft.NodeID         // the leader last named
	session kv.Session          // Seq of the last command built
	reqBase uint64              // random high bits of request IDs
	reqSeq  uint64              // request counter
	buf     []byte              // datagram buffer
	stats   struct{ attempts, retries uint64 }
}

// Dial resolves the servers and binds the client's socket (on 127.0.0.1
// when every server is on loopback). It sends nothing.
func Dial(cfg Config) (*Client, error) {
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if len(cfg.Servers) == 0 {
		return nil, errors.Join(ErrConfig, errors.New("client: no servers"))
	}
	c := &Client{cfg: cfg, index: map[netip.AddrPort]int{}, byID: map[raft.NodeID]int{},
		maxFrame: MaxFrame(cfg.Key != nil), key: cfg.Key}
	loopback := true
	for _, s := range cfg.Servers {
		ap, err := resolve(s)
		if err != nil {
			return nil, errors.Join(ErrConfig, err)
		}
		if _, dup := c.index[ap]; dup {
			return nil, errors.Join(ErrConfig, errors.New("client: server "+s+" given twice"))
		}
		c.index[ap] = len(c.servers)
		c.servers = append(c.servers, ap)
		loopback = loopback && ap.Addr().Is4() && ap.Addr().IsLoopback()
	}
	laddr := &net.UDPAddr{}
	if loopback {
		laddr.IP = net.IPv4(127, 0, 0, 1)
	}
	network := "udp"
	if loopback {
		network = "udp4"
	}
	conn, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	seed := cfg.Seed
	var r [16]byte
	_, _ = crand.Read(r[:])
	if seed == 0 {
		seed = binary.LittleEndian.Uint64(r[8:])
	}
	c.rng = mrand(seed)
	c.next = c.rng.IntN(len(c.servers))
	c.reqBase = binary.LittleEndian.Uint64(r[:8]) &^ 0xFFFFFFFF
	if cfg.Key != nil {
		c.sealer = seal.NewSealer(cfg.Key, cfg.ClusterID)
		c.opener = seal.NewOrdered[netip.AddrPort](cfg.Key, cfg.ClusterID)
	}
	return c, nil
}

func mrand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x656d6272)) }

func resolve(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	ua, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Close closes the socket.
func (c *Client) Close() error { return c.conn.Close() }

// Servers returns the resolved server addresses, in Config order.
func (c *Client) Servers() []netip.AddrPort { return append([]netip.AddrPort(nil), c.servers...) }

// Retries returns how many attempts were retries (not first attempts).
func (c *Client) Retries() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats.retries
}

// Leader returns the leader last named by a member (0: none yet).
func (c *Client) Leader() raft.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// SessionID returns the kv session's ClientID (0 before Register).
func (c *Client) SessionID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session.ClientID
}

// Register opens the client's kv session through any member. A register
// whose outcome is unknown is simply retried: at worst it opens a second
// session that is never used (see kv.Register).
func (c *Client) Register(ctx context.Context) error {
	reg := kv.Register()
	res, err := c.Propose(ctx, reg.AppendBinary(nil))
	if err != nil {
		return err
	}
	if res.Status != kv.StatusOK || res.ClientID == 0 {
		return errors.New("client: register answered " + res.Status.String())
	}
	c.mu.Lock()
	c.session = kv.Session{ClientID: res.ClientID}
	c.mu.Unlock()
	return nil
}

// Put sets key to value (exactly once).
func (c *Client) Put(ctx context.Context, key, value []byte) (kv.Result, error) {
	return c.Do(ctx, kv.OpPut, key, value, nil)
}

// Delete removes key (exactly once).
func (c *Client) Delete(ctx context.Context, key []byte) (kv.Result, error) {
	return c.Do(ctx, kv.OpDelete, key, nil, nil)
}

// CAS sets key to value if it holds expected (exactly once). The result
// is StatusOK, StatusNotFound, or StatusCASMismatch with the current value.
func (c *Client) CAS(ctx context.Context, key, expected, value []byte) (kv.Result, error) {
	return c.Do(ctx, kv.OpCAS, key, value, expected)
}

// Do builds the session's next command and proposes it: the same encoded
// bytes are retried until an outcome is known, so the command is applied
// at most once. On ErrNoOutcome it may or may not have been applied; the
// session stays usable (the next command gets the next Seq).
func (c *Client) Do(ctx context.Context, op kv.Op, key, value, expected []byte) (kv.Result, error) {
	c.mu.Lock()
	if c.session.ClientID == 0 {
		c.mu.Unlock()
		return kv.Result{}, ErrNoSession
	}
	cmd := c.session.Next(op, key, value, expected)
	c.mu.Unlock()
	return c.Propose(ctx, cmd.AppendBinary(nil))
}

// Propose sends the encoded command cmd, retrying the same bytes, and
// returns its decoded result.
func (c *Client) Propose(ctx context.Context, cmd []byte) (kv.Result, error) {
	f, err := c.request(ctx, wire.ClientPropose, cmd)
	if err != nil {
		return kv.Result{}, err
	}
	var res kv.Result
	if err := kv.DecodeResult(f.Data, &res); err != nil {
		return kv.Result{}, err
	}
	res.Value = append([]byte(nil), res.Value...)
	return res, nil
}

// Get reads key linearizably (ReadIndex at the member, then its replica).
func (c *Client) Get(ctx context.Context, key []byte) (value []byte, found bool, err error) {
	return c.read(ctx, wire.ClientRead, key)
}

// StaleGet reads key from one member's replica without a ReadIndex round:
// the value may be stale (the member may lag or be partitioned away).
func (c *Client) StaleGet(ctx context.Context, key []byte) (value []byte, found bool, err error) {
	return c.read(ctx, wire.ClientStaleRead, key)
}

func (c *Client) read(ctx context.Context, typ wire.ClientType, key []byte) ([]byte, bool, error) {
	f, err := c.request(ctx, typ, key)
	if err != nil {
		return nil, false, err
	}
	return append([]byte(nil), f.Data...), f.Found, nil
}

// Membership is the leader's answer to an admin request.
type Membership struct {
	// Node is the member that answered: the leader (for a transfer, the
	// leader it was).
	Node raft.NodeID
	// Term and Leader are that member's term and the leader it knows
	// once the request was served (for a transfer: the new leader).
	Term   raft.Term
	Leader raft.NodeID
	// Conf is the configuration in effect there.
	Conf raft.ConfState
}

// ChangeMembership asks the leader for one membership change and returns
// the configuration once the change is committed (at once if the
// configuration already has it). Add a node as a learner
// (raft.ConfAddLearner), let it catch up, then promote it
// (raft.ConfAddVoter). A change that cannot apply (demoting a voter,
// removing the last voter) fails with an *Error of CodeBadRequest.
func (c *Client) ChangeMembership(ctx context.Context, cc raft.ConfChange) (Membership, error) {
	return c.admin(ctx, &wire.ClientFrame{Type: wire.ClientConfChange, Change: cc.Type, Target: cc.Node})
}

// TransferLeadership asks the leader to hand leadership to the voter to,
// and returns once to leads (CodeBadRequest if to is not a voter).
func (c *Client) TransferLeadership(ctx context.Context, to raft.NodeID) (Membership, error) {
	return c.admin(ctx, &wire.ClientFrame{Type: wire.ClientTransferLeader, Target: to})
}

// Membership asks the leader, after it confirmed its leadership, for the
// configuration in effect.
func (c *Client) Membership(ctx context.Context) (Membership, error) {
	return c.admin(ctx, &wire.ClientFrame{Type: wire.ClientMembershipRequest})
}

func (c *Client) admin(ctx context.Context, tmpl *wire.ClientFrame) (Membership, error) {
	if tmpl.Type != wire.ClientMembershipRequest && tmpl.Target == raft.None {
		return Membership{}, errors.Join(ErrConfig, errors.New("client: node ID 0"))
	}
	f, err := c.requestFrame(ctx, tmpl)
	if err != nil {
		return Membership{}, err
	}
	cs, err := f.ConfState() // wire checked it
	if err != nil {
		return Membership{}, err
	}
	return Membership{Node: f.Node, Term: f.Term, Leader: f.Leader, Conf: cs}, nil
}

// request sends one request until a member answers it, and returns the
// answer (a ClientResult, ClientValue or ClientStatusReply).
func (c *Client) request(ctx context.Context, typ wire.ClientType, data []byte) (wire.ClientFrame, error) {
	return c.requestFrame(ctx, &wire.ClientFrame{Type: typ, Data: data})
}

// requestFrame sends the request tmpl (its RequestID is set here) until a
// member answers it, and returns the answer.
func (c *Client) requestFrame(ctx context.Context, tmpl *wire.ClientFrame) (wire.ClientFrame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqSeq++
	req := c.reqBase | c.reqSeq&0xFFFFFFFF
	tmpl.RequestID = req
	frame, err := wire.AppendClientFrame(nil, c.cfg.ClusterID, tmpl, c.maxFrame)
	if err != nil {
		if errors.Is(err, wire.ErrLimit) {
			return wire.ClientFrame{}, &Error{Code: wire.CodeTooLarge}
		}
		return wire.ClientFrame{}, &Error{Code: wire.CodeBadRequest}
	}
	var last error = ErrNoOutcome
	target := c.pick()
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return wire.ClientFrame{}, errors.Join(ErrNoOutcome, err)
		}
		c.stats.attempts++
		if attempt > 0 {
			c.stats.retries++
		}
		if err := c.send(frame, c.servers[target]); err != nil {
			last = err
			target = c.advance()
			continue
		}
		reply, from, err := c.await(ctx, req, c.servers[target])
		switch {
		case err != nil: // timeout: try the next member
			if i, ok := c.byID[c.leader]; ok && i == target {
				c.leader = raft.None // it did not answer: do not prefer it again
			}
			target = c.advance()
			continue
		case reply.Type != wire.ClientError:
			return reply, nil
		}
		e := &Error{Code: reply.Code, Node: reply.Node, Leader: reply.Leader}
		last = e
		switch reply.Code {
		case wire.CodeTooLarge, wire.CodeBadRequest:
			return wire.ClientFrame{}, e
		}
		// Retryable: go to the named leader if known, else the next member.
		if i, ok := c.byID[reply.Leader]; ok && reply.Leader != raft.None && c.servers[i] != from {
			target = i
		} else {
			target = c.advance()
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.cfg.Backoff):
		}
	}
	if errors.Is(last, ErrNoOutcome) {
		return wire.ClientFrame{}, last
	}
	return wire.ClientFrame{}, errors.Join(ErrNoOutcome, last)
}

// pick returns the member to try first: the last named leader if its
// address is known, else the next in round-robin order.
func (c *Client) pick() int {
	if i, ok := c.byID[c.leader]; ok && c.leader != raft.None {
		return i
	}
	return c.advance()
}

func (c *Client) advance() int {
	c.next = (c.next + 1) % len(c.servers)
	return c.next
}

// send seals (with a key) and sends frame to dst.
func (c *Client) send(frame []byte, dst netip.AddrPort) error {
	b := frame
	if c.sealer != nil {
		if c.sealer.Age() > seal.SessionRotate {
			c.sealer = seal.NewSealer(c.key, c.cfg.ClusterID) // keep within the servers' MaxSessionAge
		}
		var err error
		if c.buf, err = c.sealer.Seal(c.buf[:0], frame); err != nil {
			return err
		}
		b = c.buf
	}
	_, err := c.conn.WriteToUDPAddrPort(b, dst)
	return err
}

var errTimeout = errors.New("client: attempt timed out")

// await reads replies until one for request req arrives from target (or,
// for a success, from any member: an earlier attempt's answer is as good)
// or the attempt times out.
func (c *Client) await(ctx context.Context, req uint64, target netip.AddrPort) (wire.ClientFrame, netip.AddrPort, error) {
	deadline := time.Now().Add(c.cfg.AttemptTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	buf := make([]byte, MaxDatagram+1)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		n, src, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return wire.ClientFrame{}, src, errTimeout
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		i, known := c.index[src]
		if !known || n > MaxDatagram {
			continue
		}
		frame := buf[:n]
		if c.opener != nil {
			if frame, err = c.opener.Open(nil, src, frame); err != nil {
				continue
			}
		}
		var f wire.ClientFrame
		if wire.DecodeClientFrame(frame, c.cfg.ClusterID, &f, c.maxFrame) != nil || f.Type.IsRequest() {
			continue
		}
		if f.Node != raft.None {
			c.byID[f.Node] = i
		}
		if (f.Type == wire.ClientError || f.Type == wire.ClientMembership) && f.Leader != raft.None {
			c.leader = f.Leader
		}
		if f.Type == wire.ClientStatusReply && f.Status.Lead != raft.None {
			c.leader = f.Status.Lead
		}
		if f.RequestID != req {
			continue // a late answer to an earlier request
		}
		if f.Type == wire.ClientError && src != target {
			continue // an earlier attempt's refusal: the current attempt decides
		}
		f.Data = append([]byte(nil), f.Data...) // buf is reused
		return f, src, nil
	}
}

// NodeStatus is one member's answer to a status request.
type NodeStatus struct {
	Addr   netip.AddrPort
	Node   raft.NodeID // 0 if unreachable
	Status wire.ClientStatus
	Err    error // non-nil if the member did not answer
}

// StatusAll asks every server for its status, each with up to attempts
// tries of AttemptTimeout, and returns the answers in Config order.
func (c *Client) StatusAll(ctx context.Context, attempts int) []NodeStatus {
	if attempts <= 0 {
		attempts = 2
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]NodeStatus, len(c.servers))
	reqs := make(map[uint64]int, len(c.servers))
	for i, ap := range c.servers {
		out[i] = NodeStatus{Addr: ap, Err: ErrNoOutcome}
	}
	buf := make([]byte, MaxDatagram+1)
	var leadTerm raft.Term
	for a := 0; a < attempts; a++ {
		pending := 0
		for i, ap := range c.servers {
			if out[i].Err == nil {
				continue
			}
			c.reqSeq++
			req := c.reqBase | c.reqSeq&0xFFFFFFFF
			reqs[req] = i
			frame, _ := wire.AppendClientFrame(nil, c.cfg.ClusterID, &wire.ClientFrame{Type: wire.ClientStatusRequest, RequestID: req}, c.maxFrame)
			if c.send(frame, ap) == nil {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		deadline := time.Now().Add(c.cfg.AttemptTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		for pending > 0 {
			_ = c.conn.SetReadDeadline(deadline)
			n, src, err := c.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			if _, known := c.index[src]; !known || n > MaxDatagram {
				continue
			}
			frame := buf[:n]
			if c.opener != nil {
				if frame, err = c.opener.Open(nil, src, frame); err != nil {
					continue
				}
			}
			var f wire.ClientFrame
			if wire.DecodeClientFrame(frame, c.cfg.ClusterID, &f, c.maxFrame) != nil || f.Type != wire.ClientStatusReply {
				continue
			}
			i, ok := reqs[f.RequestID]
			if !ok || c.servers[i] != src || out[i].Err == nil {
				continue
			}
			out[i] = NodeStatus{Addr: src, Node: f.Node, Status: f.Status}
			c.byID[f.Node] = i
			if f.Status.Lead != raft.None && f.Status.Term >= leadTerm {
				c.leader, leadTerm = f.Status.Lead, f.Status.Term
			}
			pending--
		}
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

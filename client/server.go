package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

// Defaults for ServerConfig fields left at zero.
const (
	DefaultMaxInFlight    = 256
	DefaultRequestTimeout = 5 * time.Second
	// MaxDatagram bounds every client-protocol datagram, sealed or not.
	MaxDatagram = wire.MaxClientFrameBytes
)

// MaxFrame returns the largest client frame that fits one datagram:
// MaxDatagram, less the seal's overhead when the protocol is
// authenticated.
func MaxFrame(authenticated bool) int {
	if authenticated {
		return MaxDatagram - seal.Overhead
	}
	return MaxDatagram
}

// Node is what a Server needs of a member; *node.Node is one.
type Node interface {
	ID() raft.NodeID
	Propose(ctx context.Context, cmd []byte) ([]byte, error)
	LinearizableRead(ctx context.Context) error
	Status() node.Status
	// ChangeMembership and TransferLeadership serve the admin requests
	// (see node.Node): both only at the leader, else raft.ErrNotLeader.
	ChangeMembership(ctx context.Context, changes ...raft.ConfChange) (raft.ConfState, error)
	TransferLeadership(ctx context.Context, to raft.NodeID) error
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Conn is the bound client socket; the server owns it from NewServer
	// on (and closes it, even if NewServer fails).
	Conn      *net.UDPConn
	ClusterID wire.ClusterID
	// Key, if set, authenticates (and encrypts) every datagram both ways;
	// others are dropped and counted. Nil: unauthenticated.
	Key   *seal.Key
	Node  Node
	Store *kv.Store
	// Reachable, if set, reports whether the member has an address for a
	// node (its peer address book); the leader then refuses to add a node
	// it could not replicate to (CodeBadRequest). Nil: any node.
	Reachable func(raft.NodeID) bool
	// MaxInFlight bounds requests being served; one more is answered
	// CodeBusy at once (default 256).
	MaxInFlight int
	// RequestTimeout bounds serving one request; it is then answered
	// CodeTimeout (default 5 s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// ServerStats counts a server's datagrams.
type ServerStats struct {
	// Requests counts requests accepted for serving; Replies counts the
	// replies sent (errors included).
	Requests, Replies uint64
	// Busy counts requests refused because MaxInFlight were being served.
	Busy uint64
	// Malformed counts datagrams that are not valid client requests (after
	// opening, with a key): garbage, another cluster ID, a reply type.
	Malformed uint64
	// Forged counts datagrams that failed authentication; Replayed those
	// refused as replays (see transport/udp.AuthStats).
	Forged, Replayed uint64
}

// Dropped is the number of datagrams the server dropped without serving
// them (all but Busy, which are answered).
func (s ServerStats) Dropped() uint64 { return s.Malformed + s.Forged + s.Replayed }

// Server serves the client protocol for one member: it reads requests
// from its socket and answers each from the member's node and store.
type Server struct {
	cfg      ServerConfig
	conn     *net.UDPConn
	local    netip.AddrPort
	log      *slog.Logger
	maxFrame int
	sealer   *seal.Sealer
	opener   *seal.Sessions
	slots    chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	readDone chan struct{}
	once     sync.Once

	requests, replies, busy, malformed, forged, replayed atomic.Uint64
}

// NewServer starts serving on cfg.Conn.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Conn == nil || cfg.Node == nil || cfg.Store == nil {
		if cfg.Conn != nil {
			_ = cfg.Conn.Close()
		}
		return nil, errors.New("client: ServerConfig needs Conn, Node and Store")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, conn: cfg.Conn, local: cfg.Conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		log: cfg.Logger.With("client_server", cfg.Node.ID()), maxFrame: MaxFrame(cfg.Key != nil),
		slots: make(chan struct{}, cfg.MaxInFlight), readDone: make(chan struct{})}
	if cfg.Key != nil {
		s.sealer = seal.NewSealer(cfg.Key, cfg.ClusterID)
		s.opener = seal.NewSessions(cfg.Key, cfg.ClusterID, 0, 0)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.readLoop()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.local }

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Requests: s.requests.Load(), Replies: s.replies.Load(), Busy: s.busy.Load(),
		Malformed: s.malformed.Load(), Forged: s.forged.Load(), Replayed: s.replayed.Load()}
}

// Close stops reading requests, cancels the requests being served (their
// clients get no reply) and waits for them. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		err = s.conn.Close()
		<-s.readDone
		s.wg.Wait()
	})
	return err
}

func (s *Server) readLoop() {
	defer close(s.readDone)
	buf := make([]byte, MaxDatagram+1)
	for {
		n, src, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("client socket read failed", "err", err)
			time.Sleep(time.Millisecond)
			continue
		}
		if n > MaxDatagram {
			s.malformed.Add(1)
			continue
		}
		frame := buf[:n]
		if s.opener != nil {
			plain, err := s.opener.Open(make([]byte, 0, n), frame)
			if err != nil {
				if errors.Is(err, seal.ErrReplay) || errors.Is(err, seal.ErrStaleEpoch) {
					s.replayed.Add(1)
				} else {
					s.forged.Add(1)
				}
				s.log.Debug("client datagram refused", "err", err, "from", src.String())
				continue
			}
			frame = plain
		} else {
			frame = append([]byte(nil), frame...) // the handler owns its copy
		}
		var f wire.ClientFrame
		if err := wire.DecodeClientFrame(frame, s.cfg.ClusterID, &f, s.maxFrame); err != nil || !f.Type.IsRequest() {
			s.malformed.Add(1)
			s.log.Debug("client datagram dropped", "err", err, "type", f.Type.String(), "from", src.String())
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.busy.Add(1)
			s.reply(src, &wire.ClientFrame{Type: wire.ClientError, RequestID: f.RequestID, Code: wire.CodeBusy})
			continue
		}
		s.requests.Add(1)
		s.wg.Add(1)
		go s.serve(src, f)
	}
}

// serve answers one request (f.Data aliases a buffer the handler owns).
func (s *Server) serve(src netip.AddrPort, f wire.ClientFrame) {
	defer s.wg.Done()
	defer func() { <-s.slots }()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	out := wire.ClientFrame{RequestID: f.RequestID}
	switch f.Type {
	case wire.ClientPropose:
		var cmd kv.Command
		if kv.DecodeCommand(f.Data, &cmd) != nil {
			s.fail(&out, wire.CodeBadRequest, false)
			break
		}
		res, err := s.cfg.Node.Propose(ctx, f.Data)
		if err != nil {
			s.failWith(&out, err)
			break
		}
		out.Type, out.Data = wire.ClientResult, res
	case wire.ClientRead, wire.ClientStaleRead:
		if f.Type == wire.ClientRead {
			if err := s.cfg.Node.LinearizableRead(ctx); err != nil {
				s.failWith(&out, err)
				break
			}
		}
		applied := s.cfg.Store.Stats().Applied // read before the value: the value is at least this fresh
		v, ok := s.cfg.Store.Get(f.Data)
		out.Type, out.Found, out.Data, out.Index = wire.ClientValue, ok, v, applied
	case wire.ClientStatusRequest:
		st := s.cfg.Node.Status()
		out.Type = wire.ClientStatusReply
		out.Status = wire.ClientStatus{Role: st.Role, Term: st.Term, Lead: st.Lead, Commit: st.Commit,
			Applied: st.Applied, LastIndex: st.LastIndex, DroppedFull: st.Transport.DroppedFull,
			DroppedFault: st.Transport.DroppedFault, DroppedBad: st.Transport.DroppedBad + st.FramesBad,
			ClientDropped: s.Stats().Dropped(), UptimeMillis: uint64(st.Uptime.Milliseconds())}
	case wire.ClientConfChange, wire.ClientTransferLeader, wire.ClientMembershipRequest:
		s.serveAdmin(ctx, &f, &out)
	}
	if ctx.Err() != nil && s.ctx.Err() != nil {
		return // the server is closing: no reply
	}
	s.reply(src, &out)
}

// serveAdmin serves a membership change, a leadership transfer or a
// configuration request. Only the leader serves them: another member
// answers CodeNoLeader naming the leader it knows, where the client
// retries. A change the configuration already has is answered at once
// with the configuration (a retry after a lost reply, or after an outcome
// the client could not learn, is harmless); so is a transfer to the node
// that leads.
func (s *Server) serveAdmin(ctx context.Context, f, out *wire.ClientFrame) {
	n := s.cfg.Node
	st := n.Status()
	if st.Role != raft.RoleLeader {
		s.fail(out, wire.CodeNoLeader, true)
		return
	}
	conf := st.Conf
	var err error
	switch f.Type {
	case wire.ClientConfChange:
		cc := raft.ConfChange{Type: f.Change, Node: f.Target}
		if confHas(conf, cc) {
			break
		}
		if cc.Type != raft.ConfRemove && s.cfg.Reachable != nil && !s.cfg.Reachable(cc.Node) {
			s.log.Warn("membership change refused: no address for the node", "change", cc.String())
			s.fail(out, wire.CodeBadRequest, false)
			return
		}
		s.log.Info("membership change requested", "change", cc.String())
		if conf, err = n.ChangeMembership(ctx, cc); err == nil {
			s.log.Info("membership changed", "change", cc.String(), "voters", conf.Voters,
				"outgoing", conf.VotersOutgoing, "learners", conf.Learners)
		}
	case wire.ClientTransferLeader:
		s.log.Info("leadership transfer requested", "to", uint64(f.Target))
		err = n.TransferLeadership(ctx, f.Target)
	case wire.ClientMembershipRequest:
		// Confirm leadership (a deposed leader may not know yet), so that
		// the configuration read next is the one in effect.
		err = n.LinearizableRead(ctx)
	}
	if err != nil {
		s.failWith(out, err)
		return
	}
	st = n.Status()
	if f.Type != wire.ClientConfChange || conf.IsEmpty() {
		conf = st.Conf
	}
	out.Type, out.Term, out.Leader = wire.ClientMembership, st.Term, st.Lead
	out.Data = raft.AppendConfState(nil, conf)
}

// confHas reports whether the configuration cs, which is not joint,
// already has the change cc.
func confHas(cs raft.ConfState, cc raft.ConfChange) bool {
	if cs.Joint() {
		return false
	}
	switch cc.Type {
	case raft.ConfAddVoter:
		return slices.Contains(cs.Voters, cc.Node)
	case raft.ConfAddLearner:
		return slices.Contains(cs.Learners, cc.Node)
	case raft.ConfRemove:
		return !cs.IsMember(cc.Node)
	}
	return false
}

// failWith turns a node error into an error reply.
func (s *Server) failWith(out *wire.ClientFrame, err error) {
	code := wire.CodeInternal
	switch {
	case errors.Is(err, node.ErrNoLeader), errors.Is(err, node.ErrNotLeader):
		code = wire.CodeNoLeader
	case errors.Is(err, node.ErrBusy), errors.Is(err, raft.ErrConfChangePending):
		code = wire.CodeBusy
	case errors.Is(err, node.ErrLeaderChanged):
		code = wire.CodeLeaderChanged
	case errors.Is(err, node.ErrForwardTimeout), errors.Is(err, node.ErrTransferFailed),
		errors.Is(err, context.DeadlineExceeded):
		code = wire.CodeTimeout
	case errors.Is(err, node.ErrStopped), errors.Is(err, context.Canceled):
		code = wire.CodeStopped
	case errors.Is(err, node.ErrTooLarge):
		code = wire.CodeTooLarge
	case errors.Is(err, raft.ErrInvalidConfChange), errors.Is(err, raft.ErrNotVoter):
		code = wire.CodeBadRequest
	}
	if code == wire.CodeInternal {
		s.log.Warn("request failed", "err", err)
	}
	s.fail(out, code, code != wire.CodeTooLarge && code != wire.CodeBadRequest)
}

// fail fills an error reply; withLeader names the leader if known.
func (s *Server) fail(out *wire.ClientFrame, code wire.ErrorCode, withLeader bool) {
	out.Type, out.Code, out.Data = wire.ClientError, code, nil
	if withLeader {
		if st := s.cfg.Node.Status(); !st.Stopped {
			out.Leader = st.Lead
		}
	}
}

// reply encodes, seals and sends f to dst.
func (s *Server) reply(dst netip.AddrPort, f *wire.ClientFrame) {
	f.Node = s.cfg.Node.ID()
	b, err := wire.AppendClientFrame(make([]byte, 0, 128), s.cfg.ClusterID, f, s.maxFrame)
	if err != nil {
		// Only a value too large for one datagram can get here.
		s.log.Warn("reply does not fit a datagram", "err", err, "type", f.Type.String())
		*f = wire.ClientFrame{Type: wire.ClientError, RequestID: f.RequestID, Node: f.Node, Code: wire.CodeTooLarge}
		if b, err = wire.AppendClientFrame(b[:0], s.cfg.ClusterID, f, s.maxFrame); err != nil {
			return
		}
	}
	if s.sealer != nil {
		if b, err = s.sealer.Seal(make([]byte, 0, len(b)+seal.Overhead), b); err != nil {
			return
		}
	}
	if _, err := s.conn.WriteToUDPAddrPort(b, dst); err == nil {
		s.replies.Add(1)
	}
}

package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/wire"
)

// Defaults for Config fields left at zero.
const (
	DefaultTickInterval        = 10 * time.Millisecond
	DefaultMaxPendingProposals = 1024
	DefaultProposalQueue       = 256
	// maxBatch bounds how many queued inputs one loop turn takes before it
	// handles a Ready: large enough to amortise a sync over many proposals,
	// small enough to keep ticks on time.
	maxBatch = 64
	// sweepTicks is how often waiters whose context ended are dropped.
	sweepTicks = 10
	// dropReportTicks is how often dropped-frame counts are logged.
	dropReportTicks = 100
)

// Config configures a Node. Raft carries the core's settings (ID, Peers,
// Seed, ticks, bounds); its Storage field is filled from Storage.
type Config struct {
	Raft         raft.Config
	ClusterID    wire.ClusterID
	Storage      storage.Storage
	Transport    transport.Transport
	StateMachine StateMachine
	// TickInterval is the wall-clock length of one core tick. With the
	// core's default ticks: heartbeat 100 ms, election 300-600 ms.
	TickInterval time.Duration
	// MaxPendingProposals bounds proposals awaiting their outcome.
	MaxPendingProposals int
	// ProposalQueue bounds proposals handed to the node goroutine and not
	// yet taken; a full queue fails Propose with ErrBusy.
	ProposalQueue int
	// ForwardTimeout bounds how long a proposal forwarded to the leader
	// waits for its outcome when nothing else answers it (a lost MsgProp);
	// it then fails with ErrForwardTimeout. Default: 4 maximum election
	// timeouts.
	ForwardTimeout time.Duration
	// WireLimits bounds decoded frames (zero fields: wire defaults).
	WireLimits wire.Limits
	// Logger receives events; nil discards them.
	Logger *slog.Logger

	// SnapshotEntries: a snapshot of the state machine is taken once this
	// many entries were applied since the last one (default
	// DefaultSnapshotEntries; negative: never), and the log is compacted
	// below it. With it, the stored log stays within about SnapshotEntries
	// + SnapshotMargin entries, whatever the run length.
	SnapshotEntries int
	// SnapshotMargin entries below a new snapshot stay in the log (default
	// DefaultSnapshotMargin; negative: none).
	SnapshotMargin int
}

// Node runs one Raft core in its own goroutine.
type Node struct {
	cfg     Config
	id      raft.NodeID
	r       *raft.Raft
	log     *slog.Logger
	maxCmd  int
	started time.Time

	propc    chan *proposal
	readc    chan *readWaiter
	statusc  chan chan Status
	ctrlc    chan *ctrl
	stopc    chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	err      error  // why the loop ended, if not a requested stop
	final    Status // status at exit, served after done

	// Owned by the node goroutine.
	waiters      map[uint64]*proposal
	bySeq        map[uint64]uint64 // core forward sequence -> request ID
	reads        map[uint64]*readWaiter
	applied      raft.Index
	incarnation  uint64
	nextReq      atomic.Uint64 // request counter, used by callers of Propose
	forwardTicks uint64
	term         raft.Term
	soft         raft.SoftState
	commit       raft.Index
	sendBuf      []byte
	msg          raft.Message
	ticks        uint64
	framesBad    uint64
	stepErrors   uint64
	dropsLogged  uint64
	appliedHash  uint64
	appliedTerm  raft.Term
	snapIndex    raft.Index // index and size of the newest snapshot stored
	snapBytes    uint64
	snapshots    uint64 // snapshots this node took
	// conf is the configuration as of the applied index (what a snapshot
	// taken now records); confWaiters and transfers are pending controls.
	conf        raft.ConfState
	confWaiters []*ctrl
	transfers   []*ctrl
}

type proposal struct {
	ctx  context.Context
	data []byte // the envelope: this node, the request ID, the command
	req  uint64
	// expireTick, if set, is when a forwarded proposal gives up waiting.
	expireTick uint64
	term       raft.Term // term and leader the command was proposed under
	lead       raft.NodeID
	seq        uint64
	done       chan result // buffered: the node never blocks answering
}

type result struct {
	val []byte
	err error
}

func (p *proposal) reply(val []byte, err error) { p.done <- result{val, err} }

// Start restores the node from cfg.Storage and starts its goroutine. The
// node stops when ctx ends or Stop is called; it then closes its storage
// and transport.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	incarnation := randomIncarnation()
	cfg.Raft.Storage = cfg.Storage
	cfg.Raft.ForwardSeqBase = incarnation << 32
	snap, hash, err := restoreStored(cfg.Storage, cfg.StateMachine)
	if err != nil {
		return nil, err
	}
	cfg.Raft.Applied = snap.Index
	r, err := raft.New(cfg.Raft)
	if err != nil {
		return nil, err
	}
	hs, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, id: cfg.Raft.ID, r: r, log: cfg.Logger.With("node", uint64(cfg.Raft.ID)),
		started: time.Now(), propc: make(chan *proposal, cfg.ProposalQueue),
		readc: make(chan *readWaiter, cfg.ProposalQueue), reads: map[uint64]*readWaiter{},
		statusc: make(chan chan Status), ctrlc: make(chan *ctrl), stopc: make(chan struct{}), done: make(chan struct{}),
		waiters: map[uint64]*proposal{}, bySeq: map[uint64]uint64{},
		incarnation: incarnation, term: hs.Term, commit: hs.Commit,
		appliedHash: hash, applied: snap.Index, appliedTerm: snap.Term, snapIndex: snap.Index,
		snapBytes: snap.Size, conf: startConf(snap, cfg.Raft.Peers),
	}
	rc := cfg.Raft
	if rc.MaxMsgBytes == 0 {
		rc.MaxMsgBytes = raft.DefaultMaxMsgBytes
	}
	n.maxCmd = rc.MaxEntryBytes() - envelopeMaxBytes
	n.forwardTicks = uint64(cfg.ForwardTimeout / cfg.TickInterval)
	if n.forwardTicks == 0 {
		e := rc.ElectionTicks
		if e == 0 {
			e = raft.DefaultElectionTicks
		}
		n.forwardTicks = uint64(8 * e) // 4 maximum election timeouts (2E each)
	}
	n.log.Info("node started", "term", uint64(hs.Term), "commit", uint64(hs.Commit), "peers", len(cfg.Raft.Peers),
		"snapshot", uint64(snap.Index))
	go n.run(ctx)
	return n, nil
}

// startConf is the configuration as of the snapshot's index: the
// snapshot's own, or the bootstrap peers.
func startConf(snap raft.SnapshotMeta, peers []raft.NodeID) raft.ConfState {
	if !snap.Conf.IsEmpty() || len(peers) == 0 {
		return snap.Conf
	}
	return raft.ConfState{Voters: slices.Sorted(slices.Values(peers))}
}

func (c Config) withDefaults() Config {
	if c.TickInterval <= 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.MaxPendingProposals <= 0 {
		c.MaxPendingProposals = DefaultMaxPendingProposals
	}
	if c.ProposalQueue <= 0 {
		c.ProposalQueue = DefaultProposalQueue
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = DefaultSnapshotEntries
	}
	switch {
	case c.SnapshotMargin == 0:
		c.SnapshotMargin = DefaultSnapshotMargin
	case c.SnapshotMargin < 0:
		c.SnapshotMargin = 0
	}
	return c
}

func randomIncarnation() uint64 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return uint64(binary.LittleEndian.Uint32(b[:]))
}

// ID returns the node's ID.
func (n *Node) ID() raft.NodeID { return n.id }

// Done is closed once the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns why the node stopped by itself (a storage failure), or nil.
// It is valid once Done is closed.
func (n *Node) Err() error { return n.err }

// Stop shuts the node down gracefully and waits for its goroutine: every
// pending proposal is answered with ErrStopped, storage and transport are
// closed. It returns the error that stopped the node earlier, if any.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.done
	return n.err
}

package mcu

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
	"github.com/embraft/embraft/transport/channel"
	"github.com/embraft/embraft/wire"
)

// StorageKind selects the nodes' storage.
type StorageKind int

const (
	// Memory: MemStore, a window of log entries in RAM.
	Memory StorageKind = iota
	// Semihosting: FileStore, files on the host through semihosting.
	Semihosting
)

func (k StorageKind) String() string {
	if k == Semihosting {
		return "semihosting files"
	}
	return "in-memory"
}

// DefaultCluster is the cluster ID the firmware's frames and files carry.
const DefaultCluster wire.ClusterID = 0xE3BF

// Config describes one firmware run.
type Config struct {
	Nodes    int    // cluster size (5)
	Commands int    // client commands to commit before the run ends (200)
	Clients  int    // concurrent kv sessions (4)
	Seed     uint64 // drives elections and the clients' choice of node
	Cluster  wire.ClusterID
	// Window bounds the log entries each node keeps in RAM (256).
	Window  int
	Storage StorageKind
	// DataDir holds one directory per node, node-1 ... node-N, for
	// Semihosting. They must exist (semihosting cannot create directories).
	DataDir string
	// Tick is the node runtime's tick (10 ms; with the core's defaults an
	// election timeout of 300-600 ms). Under TinyGo's QEMU runtime time is
	// virtual: it jumps ahead whenever every goroutine sleeps.
	Tick time.Duration
	// FailoverAt and RestartAt are fractions of Commands: when that many
	// have committed the leader's node is stopped, and later restarted from
	// its storage. Negative disables the failover.
	FailoverAt, RestartAt float64
	// Deadline bounds the run (2 min); the run fails if it is reached.
	Deadline time.Duration
	// Out receives the progress lines.
	Out io.Writer
	// Clock returns the host's time in centiseconds (semihosting SYS_CLOCK),
	// for the commit rate; nil uses time.Now (virtual under TinyGo).
	Clock func() int64
	// MemStats samples the live heap (after a GC) at each progress line.
	MemStats bool
	// Verbose also prints pre-votes and followers' role changes.
	Verbose bool
	// Platform names the machine in the banner.
	Platform string
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Nodes, 5)
	def(&c.Commands, 200)
	def(&c.Clients, 4)
	def(&c.Window, DefaultWindowEntries)
	if c.Tick <= 0 {
		c.Tick = 10 * time.Millisecond
	}
	if c.Deadline <= 0 {
		c.Deadline = 2 * time.Minute
	}
	if c.FailoverAt == 0 && c.RestartAt == 0 {
		c.FailoverAt, c.RestartAt = 0.4, 0.7
	}
	if c.Cluster == 0 {
		c.Cluster = DefaultCluster
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Clock == nil {
		t0 := time.Now()
		c.Clock = func() int64 { return int64(time.Since(t0) / (10 * time.Millisecond)) }
	}
}

// Report is what a run established.
type Report struct {
	OK        bool
	Err       error
	Resumed   bool           // the nodes started from persisted state
	ResumedAt raft.HardState // the highest persisted term and commit found
	StartLast raft.Index     // highest last index found at start
	Leader    raft.NodeID    // leader at the end
	Term      raft.Term      // term at the end
	// FirstLeaderTerm is the term of the first leader of this run; minus
	// the term the nodes started in, the election terms it took.
	FirstLeaderTerm, StartTerm raft.Term
	Elections                  int // "became leader" events
	Committed                  int // client commands committed (each exactly once)
	Retries                    uint64
	Index                      raft.Index // applied index, equal on every node
	Keys                       int        // keys in the store (all runs)
	KeysBefore                 int        // keys found at start (replayed)
	CAS                        int        // compare-and-swaps counted (exactly once)
	Digest                     uint64     // kv digest, equal on every node
	FailedLeader, NewLeader    raft.NodeID
	Reelection                 time.Duration // failover to new leader (runtime clock)
	CommitCentis               int64         // host time from the first command to the last
	LiveHeapPeak, HeapSize     uint64        // sampled live heap after GC, heap size
	HeapSamples                int
	Mallocs, TotalAlloc        uint64
}

// member is one node slot of the cluster.
type member struct {
	id      raft.NodeID
	mem     *MemStore // Memory: survives restarts
	kv      *kv.Store
	n       *node.Node
	slot    *slot
	last    node.Status // latest status (the final one once stopped)
	running bool
}

// slot lets clients hold a Proposer while the node behind it is stopped
// and restarted.
type slot struct {
	mu sync.Mutex
	n  *node.Node
}

func (s *slot) set(n *node.Node) {
	s.mu.Lock()
	s.n = n
	s.mu.Unlock()
}

func (s *slot) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	s.mu.Lock()
	n := s.n
	s.mu.Unlock()
	if n == nil {
		return nil, node.ErrStopped
	}
	return n.Propose(ctx, cmd)
}

type runner struct {
	cfg     Config
	con     *Console
	ctx     context.Context
	cancel  context.CancelFunc
	net     *channel.Network
	prog    *Progress
	members []*member
	peers   []raft.NodeID
	kvOpts  kv.Options
	rep     Report

	claimed, done atomic.Int64
	// allowed caps claimed: the clients pause at the failover and restart
	// points until the runner has acted, whatever the speed of the machine.
	allowed   atomic.Int64
	failMu    sync.Mutex
	failErr   error
	clients   sync.WaitGroup
	retries   atomic.Uint64
	elections atomic.Int64
	mu        sync.Mutex
	counters  map[string]int // client counter key -> successful CAS count
	heapMu    sync.Mutex     // guards the heap fields of rep
	gcCentis  atomic.Int64   // host time spent sampling the heap
}

// Run starts the cluster, drives it through the scenario and stops it. It
// never panics on a failed run: Report.OK is false and Report.Err says why.
func Run(cfg Config) (rep Report) {
	cfg.defaults()
	r := &runner{cfg: cfg, con: NewConsole(cfg.Out), counters: map[string]int{}}
	r.con.Verbose = cfg.Verbose
	r.con.OnLeader = func(uint64, uint64) { r.elections.Add(1) }
	r.ctx, r.cancel = context.WithCancel(context.Background())
	defer r.cancel()
	r.kvOpts = kv.Options{MaxSessions: 64, MaxKeyBytes: 32, MaxValueBytes: 64, MaxKeys: 1 << 16}
	err := r.run()
	r.stopAll()
	r.rep.Elections = int(r.elections.Load())
	r.rep.Retries = r.retries.Load()
	if f := r.failure(); f != nil {
		err = f // the first failure (a client's), not its consequences
	}
	r.rep.Err = err
	r.rep.OK = err == nil
	return r.rep
}

func (r *runner) fail(err error) {
	r.failMu.Lock()
	if r.failErr == nil {
		r.failErr = err
	}
	r.failMu.Unlock()
	r.cancel()
}

func (r *runner) failure() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.failErr
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func itoa(v int) string   { return strconv.Itoa(v) }

func (r *runner) run() error {
	cfg := &r.cfg
	con := r.con
	con.Println("Starting ", itoa(cfg.Nodes), "-node Raft cluster", platform(cfg.Platform))
	switch cfg.Storage {
	case Semihosting:
		con.Println("Storage: semihosting files under ", cfg.DataDir, "/node-N (docs/STORAGE.md formats), ",
			itoa(cfg.Window), " log entries per node in RAM")
	default:
		con.Println("Storage: in-memory, ", itoa(cfg.Window), " log entries per node")
	}
	con.Println("Transport: bounded in-memory channels (", itoa(channel.DefaultInboxSize),
		" frames per node), every message a wire-encoded frame (CRC-32C)")
	r.net = channel.NewNetwork(channel.Options{Seed: cfg.Seed})
	r.prog = NewProgress(cfg.Nodes)
	for i := range cfg.Nodes {
		r.peers = append(r.peers, raft.NodeID(i+1))
	}
	for _, id := range r.peers {
		m := &member{id: id, slot: &slot{}}
		r.members = append(r.members, m)
		if err := r.start(m, true); err != nil {
			return err
		}
	}
	if r.rep.Resumed {
		con.Println("Resumed from persisted state: term ", u64(uint64(r.rep.ResumedAt.Term)),
			", last index ", u64(uint64(r.rep.StartLast)), ", commit ", u64(uint64(r.rep.ResumedAt.Commit)))
	}
	for _, m := range r.members {
		r.rep.KeysBefore = max(r.rep.KeysBefore, m.kv.Len())
	}
	con.Println("All ", itoa(cfg.Nodes), " nodes started")
	return r.drive()
}

func platform(p string) string {
	if p == "" {
		return ""
	}
	return " (" + p + ")"
}

// raftConfig holds the bounds the firmware runs with: small windows, so
// that every buffer stays a few KiB per node.
func (r *runner) raftConfig(id raft.NodeID, applied raft.Index) raft.Config {
	return raft.Config{
		ID: id, Peers: r.peers, Applied: applied, Seed: r.cfg.Seed,
		MaxInflightMsgs:           4,
		MaxMsgBytes:               512,
		MaxUncommittedBytes:       8 << 10,
		MaxEntriesInMemory:        64,
		MaxCommittedBytesPerReady: 4 << 10,
	}
}

// start opens m's storage (recovering it) and starts its node; boot says
// whether this is the run's first start of the node.
func (r *runner) start(m *member, boot bool) error {
	var st storage.Storage
	var applied raft.Index
	name := "Node " + u64(uint64(m.id))
	switch r.cfg.Storage {
	case Semihosting:
		m.kv = kv.New(r.kvOpts)
		store := m.kv
		fs, rec, err := OpenFile(FileOptions{
			Dir: r.cfg.DataDir + "/node-" + u64(uint64(m.id)), ClusterID: r.cfg.Cluster, NodeID: m.id,
			MaxEntries: r.cfg.Window, Progress: r.prog,
			Replay: func(e *raft.Entry) { replay(store, e) },
		})
		if err != nil {
			return errors.New(name + ": " + err.Error())
		}
		st, applied = fs, rec.HardState.Commit
		r.prog.Applied(m.id, applied)
		if !rec.Created && boot {
			if !r.rep.Resumed || rec.HardState.Term > r.rep.ResumedAt.Term {
				r.rep.ResumedAt.Term = rec.HardState.Term
			}
			r.rep.Resumed = true
			r.rep.ResumedAt.Commit = max(r.rep.ResumedAt.Commit, rec.HardState.Commit)
			r.rep.StartLast = max(r.rep.StartLast, rec.LastIndex)
		}
		if !rec.Created {
			line := name + " resumed from its files: term " + u64(uint64(rec.HardState.Term)) +
				", last index " + u64(uint64(rec.LastIndex)) + ", commit " + u64(uint64(rec.HardState.Commit)) +
				", " + itoa(rec.Records) + " records (" + strconv.FormatInt(rec.LogBytes, 10) + " bytes), " +
				itoa(rec.Replayed) + " entries replayed into the kv store"
			if rec.TornBytes > 0 {
				line += ", torn tail of " + strconv.FormatInt(rec.TornBytes, 10) + " bytes cut"
			}
			if rec.TermRaised {
				line += ", term raised to the log's"
			}
			r.con.Println(line)
		}
	default:
		if m.mem == nil {
			m.mem = NewMemStore(m.id, r.cfg.Window, r.prog)
			m.kv = kv.New(r.kvOpts)
			st = m.mem
		} else {
			// Battery-backed RAM: the log, hard state and state machine
			// are as the node left them.
			st, applied = m.mem.Reopen(), m.last.Applied
		}
	}
	n, err := node.Start(r.ctx, node.Config{
		Raft: r.raftConfig(m.id, applied), ClusterID: r.cfg.Cluster,
		Storage: st, Transport: r.net.Endpoint(m.id), StateMachine: tracked{m.kv, r.prog, m.id},
		TickInterval: r.cfg.Tick, Logger: r.con.Logger(),
		SnapshotEntries: r.snapshotEntries(), SnapshotMargin: max(r.cfg.Window/8, 1),
	})
	if err != nil {
		_ = st.Close()
		return errors.New(name + ": " + err.Error())
	}
	m.n, m.running = n, true
	m.last = n.Status()
	m.slot.set(n)
	return nil
}

// snapshotEntries is how many applied entries a node's snapshots are
// apart. MemStore never compacts past its snapshot, so its window must
// hold every entry after it, the margin below it and the uncommitted
// tail: a quarter of the window leaves room for the rest. FileStore keeps
// no snapshots (ErrSnapshotsUnsupported): never.
func (r *runner) snapshotEntries() int {
	if r.cfg.Storage == Semihosting {
		return -1
	}
	return max(r.cfg.Window/4, 1)
}

// tracked is the kv store as the node's state machine, reporting each
// applied index to the cluster's Progress.
type tracked struct {
	*kv.Store
	prog *Progress
	id   raft.NodeID
}

func (t tracked) Apply(i raft.Index, cmd []byte) []byte {
	res := t.Store.Apply(i, cmd)
	t.prog.Applied(t.id, i)
	return res
}

// replay applies a committed entry read back at Open to the kv store, as
// package node would have: no-ops skipped, the envelope (uvarint origin
// node, uvarint request ID; node/envelope.go) stripped, malformed entries
// skipped on every replica alike.
func replay(s *kv.Store, e *raft.Entry) {
	if e.Type != raft.EntryNormal {
		return
	}
	_, n := binary.Uvarint(e.Data)
	if n <= 0 {
		return
	}
	_, m := binary.Uvarint(e.Data[n:])
	if m <= 0 {
		return
	}
	s.Apply(e.Index, e.Data[n+m:])
}

func (r *runner) stop(m *member) {
	if !m.running {
		return
	}
	m.slot.set(nil)
	_ = m.n.Stop()
	m.last = m.n.Status()
	m.running = false
}

func (r *runner) stopAll() {
	r.cancel()
	r.clients.Wait()
	for _, m := range r.members {
		if m.running {
			r.stop(m)
		}
	}
}

// poll refreshes every running node's status. It returns the leader (0 if
// none) and its status.
func (r *runner) poll() (raft.NodeID, node.Status, error) {
	var lead raft.NodeID
	var ls node.Status
	for _, m := range r.members {
		if m.running {
			select {
			case <-m.n.Done():
				return 0, ls, errors.New("Node " + u64(uint64(m.id)) + " stopped by itself: " + errString(m.n.Err()))
			default:
			}
			m.last = m.n.Status()
			if m.last.Role == raft.RoleLeader && (lead == 0 || m.last.Term > ls.Term) {
				lead, ls = m.id, m.last
			}
		}
	}
	return lead, ls, nil
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

func (r *runner) drive() error {
	cfg := &r.cfg
	con := r.con
	deadline := time.Now().Add(cfg.Deadline)
	poll := cfg.Tick
	for _, m := range r.members {
		r.rep.StartTerm = max(r.rep.StartTerm, m.last.Term)
	}

	// 1. A leader.
	var lead raft.NodeID
	var ls node.Status
	for lead == 0 {
		time.Sleep(poll)
		var err error
		if lead, ls, err = r.poll(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("no leader elected before the deadline")
		}
	}
	r.rep.FirstLeaderTerm = ls.Term
	con.Println("Leader elected: Node ", u64(uint64(lead)), " in term ", u64(uint64(ls.Term)), " (",
		u64(uint64(ls.Term-r.rep.StartTerm)), " election term(s) after start)")

	// 2. Clients.
	r.sampleHeap()
	r.allowed.Store(int64(cfg.Commands))
	if cfg.FailoverAt >= 0 {
		r.allowed.Store(int64(cfg.FailoverAt * float64(cfg.Commands)))
	}
	t0 := cfg.Clock()
	for i := range cfg.Clients {
		r.clients.Add(1)
		go r.client(i)
	}

	// 3. Watch: progress, failover, restart, until every command committed.
	step := max(cfg.Commands/10, 1)
	nextReport := step
	var failed *member
	var failedAt time.Time
	restartAt := cfg.Commands
	restarted := cfg.FailoverAt < 0
	for {
		time.Sleep(poll)
		var err error
		if lead, ls, err = r.poll(); err != nil {
			return err
		}
		if err := r.failure(); err != nil {
			return err
		}
		done := int(r.done.Load())
		if done >= nextReport {
			for done >= nextReport {
				nextReport += step
			}
			line := "committed " + itoa(done) + "/" + itoa(cfg.Commands)
			if lead != 0 {
				line += " (leader Node " + u64(uint64(lead)) + ", term " + u64(uint64(ls.Term)) +
					", commit index " + u64(uint64(ls.Commit)) + ")"
			}
			con.Println(line)
			r.sampleHeap()
		}
		if done >= cfg.Commands && r.rep.CommitCentis == 0 {
			r.rep.CommitCentis = max(cfg.Clock()-t0-r.gcCentis.Load(), 1)
		}
		switch {
		case failed == nil && !restarted && lead != 0 && float64(done) >= cfg.FailoverAt*float64(cfg.Commands):
			failed = r.members[lead-1]
			con.Println("FAILOVER: stopping the leader, Node ", u64(uint64(lead)), " (term ", u64(uint64(ls.Term)), ")")
			r.rep.FailedLeader = lead
			failedAt = time.Now()
			r.stop(failed)
			// The others' RAM windows fill while the node is down (the floor
			// waits for it): restart it at RestartAt, or once half a window
			// of commands has committed without it, whichever comes first.
			restartAt = min(int(cfg.RestartAt*float64(cfg.Commands)), done+cfg.Window/2)
			r.allowed.Store(int64(restartAt))
		case failed != nil && r.rep.NewLeader == 0 && lead != 0:
			r.rep.NewLeader = lead
			r.rep.Reelection = time.Since(failedAt)
			con.Println("Node ", u64(uint64(lead)), " leads term ", u64(uint64(ls.Term)), ", ",
				strconv.FormatInt(r.rep.Reelection.Milliseconds(), 10), " ms after the failover")
		case failed != nil && r.rep.NewLeader != 0 && (done >= restartAt || done >= cfg.Commands):
			where := "battery-backed RAM"
			if cfg.Storage == Semihosting {
				where = "its files"
			}
			con.Println("RESTART: Node ", u64(uint64(failed.id)), " restarting from ", where)
			if err := r.start(failed, false); err != nil {
				return err
			}
			failed, restarted = nil, true
			r.allowed.Store(int64(cfg.Commands))
		}
		if done >= cfg.Commands && failed == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("deadline reached with " + itoa(done) + " of " + itoa(cfg.Commands) + " commands committed")
		}
	}
	r.rep.Committed = int(r.done.Load())
	r.clients.Wait()
	if err := r.failure(); err != nil {
		return err
	}

	// 4. Convergence: every node applied the same index with the same state.
	con.Println("all ", itoa(cfg.Commands), " commands committed; waiting for the ", itoa(cfg.Nodes), " nodes to converge")
	for {
		lead, ls, err := r.poll()
		if err != nil {
			return err
		}
		if ok, idx, digest, keys := r.converged(); ok && lead != 0 {
			r.rep.Leader, r.rep.Term, r.rep.Index, r.rep.Digest, r.rep.Keys = lead, ls.Term, idx, digest, keys
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the nodes did not converge before the deadline")
		}
		time.Sleep(poll)
	}
	if err := r.checkCounters(); err != nil {
		return err
	}
	r.sampleHeap()
	return nil
}

// converged reports whether every node runs and has applied its whole
// committed log, the same index everywhere, with equal kv digests.
func (r *runner) converged() (bool, raft.Index, uint64, int) {
	var idx raft.Index
	var digest uint64
	for i, m := range r.members {
		st := m.last
		if !m.running || st.Applied != st.Commit || (i > 0 && st.Applied != idx) {
			return false, 0, 0, 0
		}
		d := m.kv.Digest()
		if i > 0 && d != digest {
			return false, 0, 0, 0
		}
		idx, digest = st.Applied, d
	}
	return true, idx, digest, r.members[0].kv.Len()
}

// client runs one kv session, each command sent through a node picked at
// random (followers forward to the leader) and retried with the same bytes
// until its outcome is known. Its commands alternate puts over eight keys
// of its own with compare-and-swaps that count on a counter key: a CAS
// applied twice would fail (the counter moved on), so the counter's final
// value on every node proves each CAS was applied exactly once. The key
// space stays bounded however long the run.
func (r *runner) client(i int) {
	defer r.clients.Done()
	prop := make([]kv.Proposer, len(r.members))
	for j, m := range r.members {
		prop[j] = m.slot
	}
	opts := kv.ClientOptions{AttemptTimeout: time.Second, MaxAttempts: 200, Backoff: 2 * r.cfg.Tick,
		Seed: r.cfg.Seed*1000003 + uint64(i)}
	c, err := kv.NewClient(r.ctx, prop, opts)
	if err != nil {
		r.fail(errors.New("client " + itoa(i+1) + ": register: " + err.Error()))
		return
	}
	defer func() { r.retries.Add(c.Retries) }()
	r.con.Println("Client ", itoa(i+1), ": session ", u64(c.ClientID()), " registered")
	cid := u64(c.ClientID())
	counter := []byte("n" + cid)
	val := make([]byte, 16)
	cas := 0
	for seq := 1; ; seq++ {
		for {
			if r.ctx.Err() != nil {
				return
			}
			k := r.claimed.Load()
			if k >= int64(r.cfg.Commands) {
				return
			}
			// Hold new commands while a node is down and the others' RAM
			// windows fill: leave room for the commands in flight.
			full := r.prog.Backlog() > r.cfg.Window-4*r.cfg.Clients-16
			if !full && k < r.allowed.Load() && r.claimed.CompareAndSwap(k, k+1) {
				break
			}
			time.Sleep(r.cfg.Tick)
		}
		var res kv.Result
		what := ""
		switch {
		case seq == 1:
			what = "put " + string(counter)
			res, err = c.Do(r.ctx, kv.OpPut, counter, []byte("0"), nil)
		case seq%2 == 0:
			what = "cas " + string(counter)
			res, err = c.Do(r.ctx, kv.OpCAS, counter, []byte(itoa(cas+1)), []byte(itoa(cas)))
			if err == nil && res.Status == kv.StatusOK {
				cas++
			}
		default:
			key := "c" + cid + "-" + itoa(seq%8)
			what = "put " + key
			for j := range val {
				val[j] = byte('a' + (seq+j)%26)
			}
			res, err = c.Do(r.ctx, kv.OpPut, []byte(key), val, nil)
		}
		switch {
		case err != nil:
			r.fail(errors.New("client " + itoa(i+1) + ": " + what + ": " + err.Error()))
			return
		case res.Status != kv.StatusOK:
			r.fail(errors.New("client " + itoa(i+1) + ": " + what + ": status " + itoa(int(res.Status)) +
				" (a CAS applied twice would fail here)"))
			return
		}
		d := r.done.Add(1)
		r.mu.Lock()
		r.counters[string(counter)] = cas
		r.mu.Unlock()
		if d%int64(max(r.cfg.Commands/20, 1)) == 0 {
			r.sampleHeap()
		}
	}
}

// checkCounters verifies on every node that each client's counter holds
// the number of compare-and-swaps the client saw succeed.
func (r *runner) checkCounters() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, want := range r.counters {
		for _, m := range r.members {
			v, ok := m.kv.Get([]byte(key))
			if !ok || string(v) != itoa(want) {
				return errors.New("exactly-once violated: Node " + u64(uint64(m.id)) + " holds " + key + "=" +
					string(v) + ", the client counted " + itoa(want) + " compare-and-swaps")
			}
		}
		r.rep.CAS += want
	}
	return nil
}

// sampleHeap records the live heap after a collection (every twentieth of
// the commands, and at the progress lines). The time it takes is left out
// of the commit rate.
func (r *runner) sampleHeap() {
	if !r.cfg.MemStats {
		return
	}
	r.heapMu.Lock()
	defer r.heapMu.Unlock()
	c0 := r.cfg.Clock()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.rep.LiveHeapPeak = max(r.rep.LiveHeapPeak, ms.HeapInuse)
	r.rep.HeapSize = ms.HeapSys
	r.rep.Mallocs, r.rep.TotalAlloc = ms.Mallocs, ms.TotalAlloc
	r.rep.HeapSamples++
	r.gcCentis.Add(r.cfg.Clock() - c0)
}

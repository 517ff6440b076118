package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/embraft/embraft/raft"
)

// MaxNodes is the largest initial cluster the simulator runs.
const MaxNodes = 9

// MaxSpares bounds Config.Spares; MaxUniverse is the most nodes a run has
// (initial voters and spares).
const (
	MaxSpares   = 3
	MaxUniverse = MaxNodes + MaxSpares
)

// MaxValueBytes bounds Config.ValueBytes: a CAS carries two values and
// its envelope, and the whole entry must fit the core's MaxEntryBytes.
const MaxValueBytes = 400

// minEntryRoom is what a CAS entry needs beyond its two values: envelope,
// command fields, key, and the core's per-entry overhead.
const minEntryRoom = 80

// Defaults for Config fields left at zero.
const (
	DefaultNodes          = 5
	DefaultSteps          = 5000
	DefaultClients        = 5
	DefaultKeys           = 3
	DefaultElectionTicks  = 10
	DefaultHeartbeatTicks = 2
	DefaultLivenessSteps  = 3000
	DefaultClientTimeout  = 100
	DefaultThinkMax       = 15
	DefaultCheckEvery     = 50
	DefaultSpares         = 2
	// Snapshot settings drawn per seed when Config leaves them at zero:
	// SnapshotEntries in [MinSnapshotEntries, MaxSnapshotEntries],
	// SnapshotMargin in [0, MaxSnapshotMargin], SnapshotPadBytes one of
	// snapshotPads.
	MinSnapshotEntries = 20
	MaxSnapshotEntries = 60
	MaxSnapshotMargin  = 8
	// MaxSnapshotPadBytes bounds Config.SnapshotPadBytes.
	MaxSnapshotPadBytes = 1 << 20
	// DefaultLinearizabilityTimeout bounds the porcupine search; a search
	// that times out is reported as unknown (Report.LinearizabilityUnknown),
	// never as a violation.
	DefaultLinearizabilityTimeout = 60 * time.Second
)

// Config describes one simulated run. The zero value of every field selects
// its default; the zero Config is a valid run of seed 0 with every fault
// kind enabled.
type Config struct {
	// Seed drives everything random: the fault schedule, message delays,
	// the client workload and (derived per node and incarnation) the
	// cores' election timeouts. The same Config gives the same run.
	Seed uint64
	// Nodes is the initial cluster size, 1..MaxNodes (default 5): the
	// voters that bootstrap the cluster (raft.Config.Peers).
	Nodes int
	// Spares is the number of further nodes, 0..MaxSpares (default 2;
	// negative means none), that start empty (no Peers: they join when
	// a membership change adds them). Which IDs of the Nodes+Spares are
	// the initial voters is drawn per seed. Every node runs, and the
	// network connects all of them, members or not.
	Spares int
	// Steps is the length of the faulty phase in virtual time units
	// (default 5000). One step is one unit of virtual time.
	Steps int
	// Clients is the number of client sessions (default 5).
	Clients int
	// Keys is the number of distinct keys the clients use (default 3): few
	// keys, many conflicts.
	Keys int
	// ValueBytes pads the values clients write to this many bytes. Zero
	// picks one of 0, 32, 100 and 250 per run (from the seed); negative
	// means no padding (values of a few bytes). Larger entries fill a
	// MsgApp (1 KiB) sooner, so lagging logs are repaired over more round
	// trips.
	ValueBytes int
	// ElectionTicks and HeartbeatTicks configure the cores (defaults 10
	// and 2). A node ticks once every 1..Faults.SkewMax units.
	ElectionTicks  int
	HeartbeatTicks int
	// NoReadIndex sends every get through the log. By default half of the
	// gets use ReadIndex instead (raft.Raft.ReadIndex, served from the
	// local store once the read index is applied, as node.LinearizableRead
	// does).
	NoReadIndex bool
	// ReadLease turns on the cores' read leases (raft.Config.ReadLease):
	// a leader answers ReadIndex without a confirmation round while a
	// quorum heard it recently. The lease assumes bounded clock drift, so
	// with ReadLease a zero Faults.SkewMax means equal clock rates (set it
	// to run leases under skew).
	ReadLease bool
	// NoReadyBatching hands every delivered message's Ready to its node at
	// once. By default, a follower that steps a MsgApp without a change of
	// role or term leaves its Ready, with probability 1/2, until the end
	// of the time unit, so that several appends delivered in one unit are
	// persisted, answered and applied in one Ready, as node's group commit
	// does (and the core merges their acknowledgements).
	NoReadyBatching bool
	// DisablePreVote and DisableCheckQuorum pass through to the cores
	// (both features are on by default, as in production).
	DisablePreVote     bool
	DisableCheckQuorum bool
	// MaxMsgBytes is the cores' MaxMsgBytes (default: the core's, 1 KiB):
	// the entry bytes one MsgApp carries.
	MaxMsgBytes int
	// LivenessSteps bounds the healed phase (default 3000 units): every
	// client operation still pending when the faults heal must complete,
	// and all replicas must converge, within this many units.
	LivenessSteps int
	// ClientTimeout is how long a client waits for an answer before it
	// resubmits the same command (default 100 units).
	ClientTimeout int
	// ThinkMax bounds a client's pause between operations (default 15).
	ThinkMax int
	// CheckEvery is the period, in steps, of the full pairwise log
	// matching check (default 50). The cheap checkers run on every Ready.
	CheckEvery int
	// LinearizabilityTimeout bounds the porcupine check (default 60 s).
	LinearizabilityTimeout time.Duration

	// SnapshotEntries: a node snapshots its state machine once it has
	// applied this many entries since its last snapshot, then compacts its
	// log (as node does with node.Config.SnapshotEntries). Zero draws a
	// value in [MinSnapshotEntries, MaxSnapshotEntries] per seed; negative
	// turns snapshots off (the log then grows without bound).
	SnapshotEntries int
	// SnapshotMargin entries below a new snapshot stay in the log. Zero
	// draws a value in [0, MaxSnapshotMargin] per seed; negative means 0.
	SnapshotMargin int
	// SnapshotPadBytes is opaque state each snapshot carries besides the
	// kv store (a bigger state machine), so that a transfer takes several
	// chunks of MaxMsgBytes and more than one window. Zero draws one of
	// 0, 1000, 4000 and 20000 per seed; negative means none.
	SnapshotPadBytes int

	// NoFaults turns every fault off (the network still delays messages
	// by 1..Faults.MaxDelay units, which may reorder them).
	NoFaults bool
	// Faults sets the fault probabilities; zero fields take the defaults.
	Faults Faults

	// Script, if non-empty, replaces the random crash / partition / skew
	// schedule: byte i is one fault action taken at step i*ScriptEvery
	// (see Action). Message faults (loss, duplication, corruption, delay)
	// keep their probabilities. FuzzCluster drives the simulator this way.
	Script []byte
	// ScriptEvery is the number of steps between script actions (default:
	// Steps spread evenly over the script).
	ScriptEvery int

	// lyingDisk makes Sync a no-op, so crashes lose votes and entries the
	// cores were told are durable (checker tests only; the durability
	// check is off, to show what the Raft checkers make of it).
	lyingDisk bool
	// noCommitRule turns off the leader commit rule check, to see whether
	// the end-to-end checks catch an old-term commit (bug tests only).
	noCommitRule bool
	// staleReads answers Gets from the local replica of whichever node
	// receives them, without the log: not linearizable (checker tests).
	staleReads bool
	// readsIgnoreApplied serves a ReadIndex read as soon as its index is
	// confirmed, without waiting for the local state machine to apply it
	// (a runtime bug; checker tests).
	readsIgnoreApplied bool
	// corruptSnapChunks is the probability that a delivered MsgSnap has
	// one bit of its chunk flipped after the frame passed the codec's
	// checksum (memory or transport damage the frame check cannot see);
	// the snapshot's own CRC must catch it (checker tests).
	corruptSnapChunks float64
	// staleSnapshots: a node's new snapshot carries the data of its
	// previous one (a runtime that labels an old state with the new
	// index); the snapshot-state checkers must notice (checker tests).
	staleSnapshots bool
	// ignoreConfOnApply: the runtime does not track the configuration
	// entries it applies, so its snapshots record a stale configuration
	// (a runtime bug; checker tests).
	ignoreConfOnApply bool
	// fakeConf, if set, replaces the configuration the membership checkers
	// expect (the checker is fed a wrong configuration: it must report a
	// violation; checker tests). noConfEquality turns off the comparison
	// of each core's configuration with the expected one, so that the
	// other membership checks meet the fake configuration.
	fakeConf       func(raft.ConfState) raft.ConfState
	noConfEquality bool
}

// Faults are the fault probabilities and bounds. For every field, zero
// selects the default and a negative value disables the fault.
type Faults struct {
	// Loss is the probability that a message is lost (default 0.05).
	Loss float64
	// Duplicate is the probability that a message is delivered twice,
	// each copy with its own delay (default 0.03).
	Duplicate float64
	// Corrupt is the probability that one bit of a frame is flipped in
	// flight (default 0.005); the codec's checksum must reject it.
	Corrupt float64
	// MaxDelay: a message takes 1..MaxDelay units (default 6). Random
	// delays reorder messages.
	MaxDelay int
	// LongDelay is the probability that a message instead takes up to
	// LongDelayMax units (defaults 0.02 and 80).
	LongDelay    float64
	LongDelayMax int
	// Partition is the per-step probability that a new network partition
	// starts (default 0.003); it lasts PartitionMin..PartitionMax units
	// (defaults 20 and 300). Kinds: symmetric split, one-way cut, leader
	// isolation, bridge.
	Partition    float64
	PartitionMin int
	PartitionMax int
	// Crash is the per-step probability that a node crashes (default
	// 0.003; half the time the current leader); it restarts after
	// DownMin..DownMax units (defaults 5 and 300) from its synced state.
	Crash   float64
	DownMin int
	DownMax int
	// SkewMax: each node ticks once every 1..SkewMax units (default 3).
	// Skew is the per-step probability that one node's rate is redrawn
	// (default 0.002).
	SkewMax int
	Skew    float64
	// ResponseLoss is the probability that the answer to a client is lost,
	// so that the client times out and resubmits (default 0.03).
	ResponseLoss float64
	// LocalDrop is the probability that a message is dropped before it
	// leaves its node (a full send queue); the node reports it to its core
	// with ReportUnreachable, as node does (default 0.01).
	LocalDrop float64
	// CrashInTransfer is the per-step probability, while a follower holds
	// a partial incoming snapshot that it is receiving, of a deliberate
	// crash: of that follower (it loses the partial snapshot: chunks are
	// not durable) or, a third of the time, of the leader streaming it
	// (default 0.05). A transfer counts as under way for TransferWindow
	// units after the follower last wrote a chunk (and, for the leader,
	// last sent one).
	CrashInTransfer float64
	// CrashAtInstall is the probability that a node crashes right after
	// installing a snapshot, inside the Ready: the snapshot is durable,
	// the Ready's hard state and entries are not written and its answer
	// is not sent (default 0.1). CrashAfterInstall is the probability that
	// it crashes instead at the next step, once the Ready is handled
	// (default 0.1).
	CrashAtInstall    float64
	CrashAfterInstall float64
	// Churn is the per-step probability of a membership event at the
	// current leader (default 0.006): add a learner, promote one, add a
	// voter, remove a member (sometimes the leader), a joint change of
	// two or more voters, or a leadership transfer. Off in the liveness
	// phase.
	Churn float64
}

// TransferWindow: a follower that wrote a snapshot chunk, or a leader
// that sent one, this recently counts as transferring (CrashInTransfer).
const TransferWindow = 20

// DefaultFaults are the fault settings a zero Faults selects.
var DefaultFaults = Faults{
	Loss: 0.05, Duplicate: 0.03, Corrupt: 0.005,
	MaxDelay: 6, LongDelay: 0.02, LongDelayMax: 80,
	Partition: 0.003, PartitionMin: 20, PartitionMax: 300,
	Crash: 0.003, DownMin: 5, DownMax: 300,
	SkewMax: 3, Skew: 0.002,
	ResponseLoss: 0.03, LocalDrop: 0.01,
	CrashInTransfer: 0.05, CrashAtInstall: 0.1, CrashAfterInstall: 0.1,
	Churn: 0.006,
}

func defInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

// prob resolves a probability: zero takes d, negative disables.
func prob(v, d float64) float64 {
	switch {
	case v == 0:
		return d
	case v < 0:
		return 0
	}
	return v
}

// bound resolves an integer bound: zero takes d, negative gives lo.
func bound(v, d, lo int) int {
	switch {
	case v == 0:
		return d
	case v < lo:
		return lo
	}
	return v
}

// withDefaults returns c with defaults filled in and faults resolved.
func (c Config) withDefaults() Config {
	defInt(&c.Nodes, DefaultNodes)
	defInt(&c.Steps, DefaultSteps)
	defInt(&c.Clients, DefaultClients)
	defInt(&c.Keys, DefaultKeys)
	defInt(&c.ElectionTicks, DefaultElectionTicks)
	defInt(&c.HeartbeatTicks, DefaultHeartbeatTicks)
	defInt(&c.LivenessSteps, DefaultLivenessSteps)
	defInt(&c.ClientTimeout, DefaultClientTimeout)
	defInt(&c.ThinkMax, DefaultThinkMax)
	defInt(&c.CheckEvery, DefaultCheckEvery)
	switch {
	case c.Spares == 0:
		c.Spares = DefaultSpares
	case c.Spares < 0:
		c.Spares = 0
	}
	if c.LinearizabilityTimeout == 0 {
		c.LinearizabilityTimeout = DefaultLinearizabilityTimeout
	}
	f, d := c.Faults, DefaultFaults
	f.Loss = prob(f.Loss, d.Loss)
	f.Duplicate = prob(f.Duplicate, d.Duplicate)
	f.Corrupt = prob(f.Corrupt, d.Corrupt)
	f.MaxDelay = bound(f.MaxDelay, d.MaxDelay, 1)
	f.LongDelay = prob(f.LongDelay, d.LongDelay)
	f.LongDelayMax = bound(f.LongDelayMax, d.LongDelayMax, 1)
	f.Partition = prob(f.Partition, d.Partition)
	f.PartitionMin = bound(f.PartitionMin, d.PartitionMin, 1)
	f.PartitionMax = max(bound(f.PartitionMax, d.PartitionMax, 1), f.PartitionMin)
	f.Crash = prob(f.Crash, d.Crash)
	f.DownMin = bound(f.DownMin, d.DownMin, 1)
	f.DownMax = max(bound(f.DownMax, d.DownMax, 1), f.DownMin)
	if c.ReadLease && f.SkewMax == 0 {
		f.SkewMax = 1
	}
	f.SkewMax = bound(f.SkewMax, d.SkewMax, 1)
	f.Skew = prob(f.Skew, d.Skew)
	f.ResponseLoss = prob(f.ResponseLoss, d.ResponseLoss)
	f.LocalDrop = prob(f.LocalDrop, d.LocalDrop)
	f.CrashInTransfer = prob(f.CrashInTransfer, d.CrashInTransfer)
	f.CrashAtInstall = prob(f.CrashAtInstall, d.CrashAtInstall)
	f.CrashAfterInstall = prob(f.CrashAfterInstall, d.CrashAfterInstall)
	f.Churn = prob(f.Churn, d.Churn)
	if c.NoFaults {
		f = Faults{MaxDelay: f.MaxDelay, LongDelayMax: 1, PartitionMin: 1, PartitionMax: 1,
			DownMin: 1, DownMax: 1, SkewMax: 1}
		c.Script = nil
	}
	c.Faults = f
	if len(c.Script) > 0 && c.ScriptEvery == 0 {
		c.ScriptEvery = max(1, c.Steps/len(c.Script))
	}
	return c
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > MaxNodes:
		return fmt.Errorf("sim: Nodes must be 1..%d, not %d", MaxNodes, c.Nodes)
	case c.Spares > MaxSpares:
		return fmt.Errorf("sim: Spares must be at most %d, not %d", MaxSpares, c.Spares)
	case c.Steps < 0 || c.Clients < 0 || c.Keys < 1 || c.LivenessSteps < 1 || c.ClientTimeout < 1 ||
		c.ThinkMax < 0 || c.CheckEvery < 1 || c.ScriptEvery < 0 || c.ValueBytes > MaxValueBytes:
		return fmt.Errorf("sim: negative Steps, Clients, ClientTimeout, ThinkMax, CheckEvery or ScriptEvery, Keys or LivenessSteps < 1, or ValueBytes > %d", MaxValueBytes)
	case c.HeartbeatTicks < 1 || c.ElectionTicks <= c.HeartbeatTicks:
		return errors.New("sim: need 1 <= HeartbeatTicks < ElectionTicks")
	case c.ReadLease && c.DisableCheckQuorum:
		return errors.New("sim: ReadLease needs check-quorum")
	case c.MaxMsgBytes < 0 || c.MaxMsgBytes > raft.DefaultMaxMsgBytes:
		// Larger messages would not fit the wire codec's 1200-byte frames.
		return fmt.Errorf("sim: MaxMsgBytes must be 0..%d", raft.DefaultMaxMsgBytes)
	case c.MaxMsgBytes > 0 && 2*c.ValueBytes+minEntryRoom > c.MaxMsgBytes:
		return fmt.Errorf("sim: MaxMsgBytes %d cannot carry a CAS of two %d-byte values", c.MaxMsgBytes, c.ValueBytes)
	case c.SnapshotPadBytes > MaxSnapshotPadBytes:
		return fmt.Errorf("sim: SnapshotPadBytes must be <= %d", MaxSnapshotPadBytes)
	case c.corruptSnapChunks > 1:
		return errors.New("sim: fault probabilities must be <= 1")
	}
	for _, p := range []float64{c.Faults.Loss, c.Faults.Duplicate, c.Faults.Corrupt, c.Faults.LongDelay,
		c.Faults.Partition, c.Faults.Crash, c.Faults.Skew, c.Faults.ResponseLoss, c.Faults.LocalDrop,
		c.Faults.CrashInTransfer, c.Faults.CrashAtInstall, c.Faults.CrashAfterInstall, c.Faults.Churn} {
		if p > 1 {
			return errors.New("sim: fault probabilities must be <= 1")
		}
	}
	if c.Faults.Loss > 0.9 {
		return errors.New("sim: Faults.Loss must be <= 0.9")
	}
	return nil
}

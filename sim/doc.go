// Package sim is embraft's deterministic cluster simulator: N production
// Raft cores (raft.Raft, unmodified) with their storage, their kv state
// machines and a set of clients, all driven by one goroutine on a virtual
// clock, under faults chosen by a seeded PRNG, and checked after every
// step. A run is a pure function of its Config: the same seed replays the
// same run, event for event, on any machine.
//
//	rep, err := sim.Run(sim.Config{Seed: 42})   // 5 nodes, 5000 steps, every fault
//	var v *sim.Violation
//	if errors.As(err, &v) { fmt.Println(v) }     // property, step, seed, last events
//
// # Virtual time and determinism
//
// A step is one unit of virtual time. Each step the simulator, in this
// order: injects the step's faults; delivers every frame due (by delivery
// time, then send order); ticks the nodes due (in ID order); runs the
// clients' timers (in client order). Every random choice comes from one
// math/rand/v2 PCG seeded from Config.Seed, consumed in that fixed order;
// nodes and clients live in slices, no map is iterated, nothing reads the
// wall clock and nothing runs concurrently (only porcupine, at the end,
// uses goroutines, and its verdict does not depend on scheduling). The
// cores get their own seeds, derived from Config.Seed and the node's
// incarnation. Report.EventHash fingerprints every event of a run.
//
// # The node model
//
// Each node handles every Ready exactly as raft/doc.go prescribes and as
// node/loop.go does: stop on Ready.Err (the simulated storage never fails a
// read, so that is a violation); write the snapshot chunks, and install a
// completed snapshot and restore the state machine from it; persist the
// entries, then the hard state, and sync if MustSync; encode and send the
// messages; apply the committed entries to its kv.Store; maybe take a
// snapshot and compact; report rejected forwarded proposals; record the
// confirmed read indexes (ReadStates) and serve the reads they allow;
// observe role and term changes; Advance. Client commands travel in node's
// envelope (origin node, request ID) so that the proposing node answers its
// client when it applies the entry, whichever node led; a change of term or
// leader fails the waiting requests (outcome unknown) as node does with
// ErrLeaderChanged, and the unconfirmed reads with them. Each incarnation
// numbers its forwarded proposals from its own ForwardSeqBase.
//
// As node steps several queued inputs per Ready (group commit), a follower
// that steps a MsgApp without a change of role or term may leave its Ready
// until the deliveries of the time unit are done (probability 1/2, from a
// PRNG of its own; Config.NoReadyBatching turns this off), so appends
// delivered together share a Ready and the core merges their
// acknowledgements (Report.ReadiesBatched, Report.AcksMerged).
//
// # Snapshots and storage
//
// A node snapshots its state machine once it has applied
// Config.SnapshotEntries entries since its last snapshot and compacts its
// log, keeping SnapshotMargin entries below it (drawn per seed unless set:
// 20..60 and 0..8; SnapshotPadBytes, opaque state that makes transfers
// take many chunks, among 0, 1000, 4000 and 20000). The snapshot is
// node's format plus that padding: the applied-sequence hash and the
// kv.Store snapshot, sessions included. Leaders stream snapshots to
// followers that need compacted entries; followers install them and
// restore their store.
//
// Storage wraps raft.MemoryStorage and models storage/file's durability:
// entries and hard state are durable at a Sync (Ready.MustSync); saved and
// installed snapshots at once; Compact at once, after syncing pending
// writes; incoming snapshot chunks never. A crash loses the rest. A
// restart rebuilds the storage as storage/file's recovery does: the
// durable snapshot (the new compaction point), then the durable entries
// after it if the durable log holds the snapshot's last entry with its
// term, else none; the commit index is raised to the snapshot's, and a
// term behind the last entry's to that term, with no vote. The node
// restores its kv.Store from the snapshot (or starts empty), and builds a
// new core with Config.Applied = the snapshot's index.
//
// # The network
//
// Every message is encoded with wire.AppendMessage into its own frame and
// decoded with wire.DecodeMessage on delivery, so the codec is exercised on
// every message: a frame a core sent must decode and re-encode to the same
// bytes (canonical encoding), and a frame with a flipped bit must be
// refused. Frames are delivered in order of their (random) delivery time,
// which reorders them naturally.
//
// # Membership churn
//
// Besides the Nodes initial voters, Config.Spares further nodes run from
// the start knowing no configuration (they join when a change adds them);
// which IDs bootstrap is drawn per seed. At Faults.Churn per step of the
// faulty phase the current leader is asked (ProposeConfChange,
// TransferLeadership) to add a learner, promote one, add a voter, remove
// a member or itself, make a joint change of two or more voters, or
// transfer leadership. Removed nodes keep running and may come back with
// their old log. Report.Churn counts requests, outcomes and refusals.
// Only with both DisablePreVote and DisableCheckQuorum, where nothing keeps
// a removed node that never learned of its removal from deposing the
// members' leader forever, does the heal stop such nodes for good
// (ChurnStats.Retired), so that liveness can be checked.
//
// # Faults
//
// Every kind is on by default (see DefaultFaults; zero selects the default,
// negative disables) and counted in Report.Faults:
//
//   - delay: besides its 1..MaxDelay jitter, a message is delayed up to
//     LongDelayMax units (LongDelay = 2%);
//   - loss (5%), duplicate (3%, each copy with its own delay), corrupt
//     (0.5%, one bit flipped) per message; reorder counts frames delivered
//     after a later frame of the same link;
//   - partitions (0.3% per step when the network is whole, lasting 20-300
//     units), four kinds: split (two sides), one-way (A cannot reach B, B
//     reaches A), isolate-leader (the current leader alone), bridge (two
//     sides that cannot talk, and one node that talks to both);
//   - crash (0.3% per step, half of the time the leader; down 5-300 units,
//     then restart from the synced state); lost-write counts crashes that
//     lost unsynced writes;
//   - skew: each node ticks every 1..SkewMax (3) units, and a node's rate
//     is redrawn at 0.2% per step;
//   - response-loss (3%): the answer to a client is lost, so the client
//     times out and resubmits the same command;
//   - local-drop (1% of messages): the sender's queue is full, the frame
//     never leaves, and the node reports it to its core with
//     ReportUnreachable, as node does on transport.ErrQueueFull;
//   - deliberate crashes around snapshots: crash-in-transfer (5% per step
//     while a follower is receiving a snapshot: it loses its partial
//     snapshot) or crash-snap-sender (a third of those: the leader
//     streaming it); crash-in-install (inside InstallSnapshot: snapshot
//     durable, old log not yet removed), crash-at-install (right after
//     it, inside the Ready) and crash-after-install (at the next step),
//     5%, 5% and 10% of installs; lost-snapshot counts crashes of any
//     cause that lost a partial snapshot.
//
// Config.Script replaces the random crash, restart, partition and skew
// schedule by one action per script byte (see the Action constants);
// FuzzCluster fuzzes that way.
//
// # Clients
//
// Config.Clients clients each register a kv session, then run put, get,
// cas and delete operations on Config.Keys keys through random nodes (a
// follower's core forwards to the leader), one operation outstanding per
// client. Half of the gets go through the log; the other half use
// ReadIndex, as node.LinearizableRead does: the node asks the leader to
// confirm a read index (a follower forwards the request) and reads its
// local store once it applied that index (Config.NoReadIndex turns this
// off; Config.ReadLease turns on the cores' read leases). On a timeout, an error or a change of leader the client resubmits
// the same encoded command (same session and sequence number), so the
// store applies it exactly once. Every operation is recorded with the
// history clock's time of its first submission and of its answer.
//
// # Checkers
//
// After every Ready (so after every step):
//
//   - election safety: at most one leader per term, remembered across
//     crashes;
//   - term monotonicity and vote safety: a node's term never decreases, and
//     it never votes for two candidates in one term, over all its
//     incarnations; durability: a restarted node has at least the term and
//     vote it had synced;
//   - commit monotonicity: a node's commit index never decreases while it
//     is up, and never passes its log;
//   - leader commit rule (§5.4.2): a leader advances its commit index only
//     to an entry of its own term;
//   - leader append-only: a leader never rewrites its log within its term;
//   - log matching, incrementally (on the simulator's mirror of each log,
//     which keeps compacted entries: the checkers never read a node's
//     storage): every (index, term) any node ever wrote
//     must sit on the same log prefix (compared by prefix hashes) wherever
//     and whenever it appears; plus a pairwise comparison of all logs every
//     CheckEvery steps and at the end;
//   - log matching of committed prefixes: whenever a node's commit index
//     advances (or a node restarts), its newly committed entries must equal
//     the entries any node was seen committing at those indexes;
//   - leader completeness: a new leader, and every current leader whenever
//     an entry is first seen committed, holds every entry committed in an
//     earlier term;
//   - state machine safety: entries are applied in order, only up to the
//     commit index, and every node applies the same entry at the same
//     index; the kv store's result for an entry, and the applied-sequence
//     hash after it, are the same on every node and after every replay;
//   - snapshots: a snapshot installed or restored covers a committed index
//     with its committed term, and carries the applied-sequence hash and
//     the kv state (digest) every node had at that index; a node that
//     applies an index later has the state a snapshot recorded there;
//   - bounded log: a node's storage holds at most SnapshotEntries-1 +
//     SnapshotMargin applied entries, and at most SnapshotEntries +
//     SnapshotMargin + MaxEntriesInMemory entries in all, whatever the run
//     length;
//   - read index: a confirmed read index is never below the highest index
//     seen committed anywhere when the read was requested;
//   - sessions: no answer is StaleSequence, SessionExpired or BadCommand;
//   - codec: every frame decodes and re-encodes identically, corrupted
//     frames are refused; the cores never refuse a message a correct core
//     sent;
//   - configurations, derived from the committed log alone: every core is
//     in the configuration committed as of its commit index, and every
//     snapshot carries the one as of its index; each committed
//     configuration follows from the previous by a legal change; a leader
//     has at most one configuration entry pending; candidates and leaders
//     are voters; pre-votes, votes and commits are counted by a majority
//     of every voter set (both halves of a joint configuration); a leader
//     whose removal committed appends nothing while it hands off; a
//     non-member raises a member's term only as that term's leader or a
//     checked candidate.
//
// At the end of the run:
//
//   - liveness: every fault heals (whole network, no loss, all nodes up,
//     equal clock rates); within LivenessSteps units every pending client
//     operation must complete and every node must hold, commit and apply
//     the same log; the replicas' kv states must then be identical;
//   - linearizability: porcupine checks the whole history (the healed phase
//     included) against a sequential model of put, get, cas and delete,
//     partitioned by key. A retried operation is one operation from its
//     first submission to its answer (sessions make it exactly-once); an
//     operation that never got an answer has an unknown output and returns
//     at +infinity, so it may or may not have taken effect.
//
// A failure stops the run and returns a *Violation with the property, the
// step, the seed, the last 32 events and a command line that replays it.
//
// # Reproducing a seed
//
//	go run ./cmd/embraft sim --seed 17                  # one run, summary or violation
//	go run ./cmd/embraft sim --seeds 1000 --start-seed 5000
//	go test -run 'TestSimSeeds/seed=17' ./sim/
//
// A Violation's Repro line carries the flags that differ from the
// defaults; runs built from a Config with other non-default fields need
// that Config.
package sim

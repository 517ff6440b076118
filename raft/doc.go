// Package raft is embraft's consensus core: a deterministic Raft state
// machine that does no I/O.
//
// The core never reads a clock, starts a goroutine, touches a disk or a
// socket, or draws global randomness. Time is a count of Tick calls;
// randomness comes from a PRNG seeded by Config.Seed. The same Config and
// the same sequence of calls produce the same output, byte for byte, which
// is what lets one core run in the deterministic simulator, in a
// single-process cluster, across hosts, and on a microcontroller.
//
// # Inputs
//
//   - Tick advances logical time: followers time out into elections, leaders
//     send heartbeats and check that a quorum is alive.
//   - Step delivers a message from a peer. Malformed messages, and messages
//     from non-members, return an error and change nothing.
//   - Propose offers client data. A leader appends it; a follower forwards
//     it to the leader; with no leader, or with a bound reached, it fails at
//     once with ErrNoLeader, ErrBusy or ErrTooLarge.
//
// # Output: the Ready contract
//
// When HasReady reports true, call Ready and handle the batch in this
// order:
//
//  0. If Ready.Err is set, storage could not be read back (committed
//     entries, or the node's own last term): stop the node. It can neither
//     apply nor vote safely.
//  1. Snapshot. Write Ready.SnapshotChunks, in order, to the incoming
//     snapshot in storage (they acknowledge chunks in step 3 and need no
//     sync). If Ready.Snapshot is not empty, a snapshot from the leader
//     arrived complete and verified: install it in storage durably
//     (discarding the stored log, which restarts after its index) and
//     restore the state machine from it. Such a Ready carries no
//     Committed entries.
//  2. Persist. Append Ready.Entries to storage (replacing any stored entries
//     at the same or later indexes) and save Ready.HardState if it is not
//     empty. If Ready.MustSync, make both durable (fsync) before step 3:
//     a vote granted or an entry acknowledged must survive a crash, or two
//     leaders could be elected in one term or a committed entry lost.
//  3. Send Ready.Messages. Only after steps 1 and 2: they may grant votes
//     and acknowledge entries on the strength of what those steps wrote.
//  4. Apply Ready.Committed to the state machine, in order. These entries
//     are committed and already persisted. Entries of type EntryNoop carry
//     no data and are skipped by state machines.
//     Then, optionally, take a snapshot of the state machine at the last
//     applied index and compact the stored log below it (see Snapshots).
//  5. Report Ready.Rejected to the callers whose forwarded proposals the
//     leader refused.
//  6. Call Advance(rd). Only then does the node count its own copy of the
//     entries toward commitment (a leader acknowledges itself only once its
//     write is durable) and release the Ready's buffers.
//
// The slices in a Ready stay valid until Advance. Tick, Step and Propose
// may be called between Ready and Advance; their output joins the next
// Ready. Ready must not be called again before Advance (it returns an empty
// batch if it is).
//
// # Storage
//
// The core reads persisted state through the read-only Storage interface;
// the caller writes it in steps 1 and 2. MemoryStorage is the in-memory
// implementation.
//
// # Snapshots
//
// The caller decides when to snapshot: it stores the state machine's state
// at an applied index (with that entry's term) and drops log entries up to
// some index at or below it. The core notices compaction only when a
// follower needs entries that are gone (ErrCompacted): it then streams the
// stored snapshot (Storage.ReadSnapshot) to that follower as MsgSnap
// chunks of at most MaxMsgBytes, MaxInflightMsgs chunks in flight. The
// stream is the data followed by its CRC-32C. The follower takes chunks
// strictly in order and acknowledges what it holds; the leader goes back
// to the acknowledged offset on a refusal or after a heartbeat interval
// without progress, so lost, duplicated and reordered chunks only cost
// time. The follower checks the CRC before it hands the snapshot to the
// caller (Ready.Snapshot); a failed check restarts the transfer. A
// follower whose log already holds the snapshot's last entry takes no
// transfer. On restart, restore the state machine from the stored
// snapshot and pass its index as Config.Applied.
//
// # Membership
//
// The configuration (ConfState: voters, the outgoing voters of a joint
// configuration, learners) lives in the log: ProposeConfChange appends an
// EntryConfChange entry carrying the resulting configuration, and every
// node switches to it when the entry commits. Changes run one at a time.
// One voter added or removed is applied directly (dissertation §4.1); a
// larger change enters a joint configuration in which elections and
// commitment need a majority of both voter sets, and the leader appends the
// entry that leaves it as soon as the joint one commits (§4.3). Learners
// receive the log but neither vote nor count. A leader that is no longer a
// voter hands off: it leads on, without counting itself or taking
// proposals (ErrBusy), until a voter of the new configuration holds its
// whole log, then tells it to campaign (MsgTimeoutNow), retrying every
// election timeout; stepping down at once could leave voters that missed
// the commit needing its vote, which its longer log refuses. Nodes
// outside the configuration cannot campaign. A refused vote carries the
// responder's commit index and its term, and a candidate whose log holds
// that entry commits up to it: a voter that missed the commit of the
// configuration that removed the responder learns it there instead of
// waiting for that vote for ever. Vote requests are answered whoever
// sends them (a node may be a voter of a
// configuration the receiver has not learned yet): a removed node cannot
// disrupt the cluster because its log lacks its removal, pre-vote keeps it
// from raising terms, and the leader lease of check-quorum makes members
// ignore it while they hear a leader. Learners and non-members leave that
// lease when no leader is heard, so that they can vote once promoted.
// TransferLeadership brings a voter's log up to date and tells it to
// campaign at once (MsgTimeoutNow; §3.10). Config.Peers bootstraps a new
// cluster; a node started with no Peers joins: it takes a leader's traffic
// and learns the configuration from the log or a snapshot (SnapshotMeta
// carries the configuration). On restart the configuration is rebuilt from
// the snapshot and the configuration entries of the stored log.
//
// # Bounds
//
// Every buffer the core keeps is bounded by Config: MaxInflightMsgs (the
// per-follower pipelining window), MaxMsgBytes (entry bytes per MsgApp;
// the default keeps an encoded frame inside one 1200-byte datagram),
// MaxUncommittedBytes (a leader's unacknowledged proposals),
// MaxEntriesInMemory (entries not yet persisted) and
// MaxCommittedBytesPerReady. Reaching a bound refuses new work with an
// error; it never drops work that was accepted.
//
// # Safety of peer input
//
// Messages come from the network. The core validates them (Step's errors)
// and never panics on them; panics mark broken internal invariants only.
package raft

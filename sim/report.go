package sim

import (
	"fmt"
	"strings"

	"github.com/embraft/embraft/raft"
)

// FaultKind names one kind of injected fault.
type FaultKind uint8

const (
	FaultDelay             FaultKind = iota // a message delayed beyond one unit
	FaultLoss                               // a message lost
	FaultDuplicate                          // a message delivered twice
	FaultReorder                            // a message delivered before one sent earlier on its link
	FaultCorrupt                            // a bit flipped in a frame (the codec must reject it)
	FaultSplit                              // symmetric partition into two sides
	FaultOneWay                             // one-way cut: A cannot reach B, B reaches A
	FaultIsolateLeader                      // the current leader cut off from everyone
	FaultBridge                             // two sides that only one bridge node connects
	FaultCrash                              // a node crashed (and later restarted)
	FaultLostWrite                          // a crash lost writes that were not synced
	FaultSkew                               // a node's clock rate redrawn
	FaultResponseLoss                       // the answer to a client lost
	FaultLocalDrop                          // a message dropped in the sender's full queue, reported to its core
	FaultCrashInTransfer                    // a deliberate crash of a follower holding a partial incoming snapshot
	FaultCrashSnapSender                    // a deliberate crash of a leader streaming a snapshot
	FaultCrashInInstall                     // a crash inside InstallSnapshot: snapshot durable, old log not yet discarded
	FaultCrashAtInstall                     // a crash right after InstallSnapshot, inside the Ready
	FaultCrashAfterInstall                  // a crash at the step after a snapshot was installed
	FaultLostSnapshot                       // a crash (of any cause) lost a partial incoming snapshot
	NumFaultKinds
)

var faultNames = [NumFaultKinds]string{"delay", "loss", "duplicate", "reorder", "corrupt", "split",
	"one-way", "isolate-leader", "bridge", "crash", "lost-write", "skew", "response-loss", "local-drop",
	"crash-in-transfer", "crash-snap-sender", "crash-in-install", "crash-at-install", "crash-after-install", "lost-snapshot"}

func (k FaultKind) String() string {
	if k < NumFaultKinds {
		return faultNames[k]
	}
	return fmt.Sprintf("FaultKind(%d)", k)
}

// FaultCounts counts injected faults by kind.
type FaultCounts [NumFaultKinds]uint64

// Add adds o to c.
func (c *FaultCounts) Add(o FaultCounts) {
	for i := range c {
		c[i] += o[i]
	}
}

// Total is the number of faults of every kind.
func (c FaultCounts) Total() uint64 {
	var t uint64
	for _, v := range c {
		t += v
	}
	return t
}

// String lists the counts as kind=count pairs.
func (c FaultCounts) String() string {
	var b strings.Builder
	for k, v := range c {
		if k > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", FaultKind(k), v)
	}
	return b.String()
}

// Report summarizes a run that found no violation (or, returned together
// with a *Violation, the run up to it).
type Report struct {
	Seed uint64
	// Nodes is the initial cluster size; Spares the nodes that start
	// empty and join when churn adds them.
	Nodes, Spares int
	// ValueBytes is the size client values were padded to.
	ValueBytes int
	// Steps is the number of faulty-phase steps run; LivenessSteps the
	// number of healed-phase steps it took for every pending operation to
	// complete and the replicas to converge.
	Steps         int
	LivenessSteps int
	Faults        FaultCounts
	// Messages sent by the cores, delivered to a live recipient, and
	// dropped by a partition or a down recipient (faults not included).
	Messages, Delivered, Undeliverable uint64
	// Elections counts terms that had a leader; MaxTerm is the last term.
	Elections int
	MaxTerm   raft.Term
	// Commits is the highest committed index; Applied counts entries
	// applied over all nodes and incarnations (replays included).
	Commits raft.Index
	Applied uint64
	// Restarts counts node restarts.
	Restarts int
	// ClientOps is the number of client operations (put, get, cas,
	// delete) in the history checked for linearizability; Pending the
	// ones without an answer when it was checked (0 after a successful
	// liveness phase). Retries counts resubmissions; Registrations the
	// sessions opened.
	ClientOps, Pending, Retries, Registrations int
	// ReadIndexReads counts gets served through ReadIndex (the others go
	// through the log).
	ReadIndexReads int
	// ReadiesBatched counts appends whose Ready waited for the end of the
	// time unit (Config.NoReadyBatching); AcksMerged the acknowledgements
	// the cores folded into an earlier one of the same Ready.
	ReadiesBatched int
	AcksMerged     uint64
	// Snap describes snapshots, compaction and snapshot transfers.
	Snap SnapshotStats
	// Churn describes membership changes and leadership transfers.
	Churn ChurnStats
	// Linearizable reports that porcupine accepted the history;
	// LinearizabilityUnknown that its search timed out.
	Linearizable           bool
	LinearizabilityUnknown bool
	// Events is the number of events recorded; EventHash a fingerprint of
	// all of them (equal for equal runs).
	Events    uint64
	EventHash uint64
}

// SnapshotStats describes a run's snapshots, compactions and transfers.
type SnapshotStats struct {
	// Every, Margin and PadBytes are the run's settings (Config's
	// SnapshotEntries, SnapshotMargin and SnapshotPadBytes, drawn per seed
	// when zero; Every is 0 with snapshots off).
	Every, Margin, PadBytes int
	// Taken counts snapshots nodes took of their own state machine;
	// Compactions the compactions that dropped entries.
	Taken, Compactions uint64
	// Sent counts transfers leaders started (raft.Stats.SnapshotsSent,
	// summed over every incarnation); Installed the snapshots followers
	// received whole and installed; Bad those refused because their
	// checksum failed (raft.Stats.SnapshotsBad).
	Sent, Installed, Bad uint64
	// Chunks counts snapshot chunks written to incoming snapshots.
	Chunks uint64
	// Restored counts restarts that restored the state machine from the
	// durable snapshot; LogRestarted those whose durable log did not hold
	// the snapshot's last entry, so that the log restarted after it.
	Restored, LogRestarted uint64
	// TermRaised counts restarts whose durable hard state had a term
	// behind the log's last entry (a crash right after installing the
	// snapshot of a newer term), raised with no vote as storage/file does.
	TermRaised uint64
	// Corrupted counts chunks damaged past the codec (checker tests).
	Corrupted uint64
	// MaxLogLen is the longest stored log (LastIndex-FirstIndex+1) seen
	// on any node after a Ready; MaxAppliedSpan the most applied entries
	// still stored (at most Every-1+Margin with snapshots on).
	MaxLogLen, MaxAppliedSpan int
}

// Add adds o's counters to s and keeps the maxima (settings are kept
// from s).
func (s *SnapshotStats) Add(o SnapshotStats) {
	s.Taken += o.Taken
	s.Compactions += o.Compactions
	s.Sent += o.Sent
	s.Installed += o.Installed
	s.Bad += o.Bad
	s.Chunks += o.Chunks
	s.Restored += o.Restored
	s.LogRestarted += o.LogRestarted
	s.TermRaised += o.TermRaised
	s.Corrupted += o.Corrupted
	s.MaxLogLen = max(s.MaxLogLen, o.MaxLogLen)
	s.MaxAppliedSpan = max(s.MaxAppliedSpan, o.MaxAppliedSpan)
}

// String lists the snapshot counters (and the settings of one run).
func (s SnapshotStats) String() string {
	set := ""
	switch {
	case s.Every > 0:
		set = fmt.Sprintf("every %d entries (margin %d, %d B of padding): ", s.Every, s.Margin, s.PadBytes)
	case s.Taken == 0:
		set = "off: "
	}
	return fmt.Sprintf("%s%d taken, %d compactions, %d transfers started, %d installed, "+
		"%d bad, %d chunks written, %d restarts from a snapshot (%d log restarted, %d term raised), max stored log %d (applied span %d)",
		set, s.Taken, s.Compactions, s.Sent, s.Installed, s.Bad, s.Chunks, s.Restored,
		s.LogRestarted, s.TermRaised, s.MaxLogLen, s.MaxAppliedSpan)
}

// String is a one-paragraph summary.
func (r Report) String() string {
	lin := "linearizable"
	switch {
	case r.LinearizabilityUnknown:
		lin = "linearizability unknown (search timed out)"
	case !r.Linearizable:
		lin = "NOT checked linearizable"
	}
	return fmt.Sprintf("seed %d: %d nodes + %d spares, %d-byte values, %d steps + %d healed, %d elections (max term %d), commit index %d, "+
		"%d restarts, %d msgs (%d delivered), %d client ops (%d retries, %d pending, %d ReadIndex reads), %d Readys batched (%d acks merged), %s, events %d hash %016x\nsnapshots: %v\nmembership: %v\nfaults: %v",
		r.Seed, r.Nodes, r.Spares, r.ValueBytes, r.Steps, r.LivenessSteps, r.Elections, r.MaxTerm, r.Commits, r.Restarts,
		r.Messages, r.Delivered, r.ClientOps, r.Retries, r.Pending, r.ReadIndexReads, r.ReadiesBatched, r.AcksMerged, lin, r.Events, r.EventHash, r.Snap, r.Churn, r.Faults)
}

// Violation is the error Run returns when a checked property fails.
type Violation struct {
	Seed     uint64
	Property string
	// Step is the step at which the property failed (Steps plus the
	// healed-phase step for failures found after the faults healed).
	Step   int
	Detail string
	// Repro is a command line that replays the run.
	Repro string
	// Events are the last events before the failure, oldest first.
	Events []string
}

// Error formats the violation with its events, one per line.
func (v *Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sim: seed %d: %s violated at step %d: %s", v.Seed, v.Property, v.Step, v.Detail)
	if len(v.Events) > 0 {
		fmt.Fprintf(&b, "\nlast %d events:", len(v.Events))
		for _, e := range v.Events {
			b.WriteString("\n  ")
			b.WriteString(e)
		}
	}
	if v.Repro != "" {
		fmt.Fprintf(&b, "\nreproduce: %s", v.Repro)
	}
	return b.String()
}

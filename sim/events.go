package sim

import (
	"fmt"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// evKind is the kind of a recorded event.
type evKind uint8

const (
	evSend        evKind = iota // a=from b=to mt x=frame bytes y=delay
	evLoss                      // a=from b=to mt
	evDup                       // a=from b=to mt y=delay of the copy
	evCorrupt                   // a=from b=to mt x=bit
	evDeliver                   // a=from b=to mt x=term y=index z=commit
	evUndeliver                 // a=from b=to mt x=reason (1 partition, 2 down)
	evReject                    // a=from b=to mt: frame refused by the codec (corrupted)
	evRole                      // a=node x=role y=term z=lead
	evCommit                    // a=node x=commit y=term
	evCrash                     // a=node b=why x=durable entries y=durable commit z=lost writes
	evRestart                   // a=node x=incarnation y=last index z=commit
	evPartition                 // x=kind y=mask A z=mask B (bridge: a=bridge node)
	evHeal                      //
	evSkew                      // a=node x=period
	evInvoke                    // a=client x=op y=history id
	evSubmit                    // a=client b=node x=request y=attempt
	evPropErr                   // a=client b=node x=error code
	evReply                     // a=client b=node x=status y=index z=request
	evTimeout                   // a=client b=node x=request
	evRespLoss                  // a=client b=node x=request
	evStale                     // a=client b=node x=request: failed by a term/leader change
	evPhase                     // x=phase
	evLeader                    // a=node x=term
	evRead                      // a=client b=node x=request y=attempt: a get through ReadIndex
	evReadState                 // a=client b=node x=request y=read index
	evLocalDrop                 // a=from b=to mt: dropped in the sender's queue, reported unreachable
	evSnapTake                  // a=node x=index y=bytes z=compacted to
	evSnapChunks                // a=node x=offset of the first chunk y=chunks z=bytes
	evSnapInstall               // a=node x=index y=term z=bytes
	evSnapRestore               // a=node x=index y=how (1 log kept, 2 log restarted after it)
	evSnapCorrupt               // a=from b=to x=chunk offset y=bit: a chunk damaged past the codec
	evChurn                     // a=leader b=churn kind x=0 or 1+reject reason y=node mask z=entry index
	evConf                      // a=node x=index y=voters mask z=outgoing mask | learners mask<<32: a configuration committed
	evNonMember                 // a=from b=to mt x=term: refused, the sender is not a member
)

// event is one recorded event. Events are stored unformatted in a ring;
// they are formatted only when a violation needs them.
type event struct {
	t       int64
	kind    evKind
	mt      raft.MessageType
	a, b    uint8
	x, y, z uint64
}

// ringSize is how many recent events are kept; violations show the last
// violationEvents of them.
const (
	ringSize        = 64
	violationEvents = 32
)

// eventLog keeps the last ringSize events and a hash of all of them.
type eventLog struct {
	buf  [ringSize]event
	n    uint64
	hash uint64
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func newEventLog() eventLog { return eventLog{hash: fnvOffset} }

// traceEvent, if set, sees every event as it is recorded (debugging
// tests only; nil in every run).
var traceEvent func(event)

func (l *eventLog) add(e event) {
	if traceEvent != nil {
		traceEvent(e)
	}
	l.buf[l.n%ringSize] = e
	l.n++
	h := l.hash
	h = (h ^ uint64(e.t)) * fnvPrime
	h = (h ^ (uint64(e.kind) | uint64(e.mt)<<8 | uint64(e.a)<<16 | uint64(e.b)<<24)) * fnvPrime
	h = (h ^ e.x) * fnvPrime
	h = (h ^ e.y) * fnvPrime
	h = (h ^ e.z) * fnvPrime
	l.hash = h
}

// last returns the last k events, formatted, oldest first.
func (l *eventLog) last(k int) []string {
	k = min(k, int(min(l.n, ringSize)))
	out := make([]string, 0, k)
	for i := l.n - uint64(k); i < l.n; i++ {
		out = append(out, l.buf[i%ringSize].String())
	}
	return out
}

var partitionKindNames = map[uint64]string{
	uint64(FaultSplit): "split", uint64(FaultOneWay): "one-way", uint64(FaultIsolateLeader): "isolate-leader",
	uint64(FaultBridge): "bridge",
}

func maskString(m uint64) string {
	s := "{"
	for i := 0; i < 64; i++ {
		if m&(1<<i) != 0 {
			if len(s) > 1 {
				s += ","
			}
			s += fmt.Sprint(i + 1)
		}
	}
	return s + "}"
}

var crashWhy = []string{"", " in a snapshot transfer", " while sending a snapshot", " inside InstallSnapshot (old log not yet discarded)", " right after installing a snapshot",
	" the step after installing a snapshot", " for good: removed, with neither pre-vote nor check-quorum to keep it from disrupting", "?"}

var errNames = []string{"?", "node down", "no leader", "busy", "too large", "not leader", "leader changed", "other"}

func (e event) String() string {
	p := fmt.Sprintf("t=%-6d ", e.t)
	switch e.kind {
	case evSend:
		return p + fmt.Sprintf("send      %d->%d %v (%d B, delay %d)", e.a, e.b, e.mt, e.x, e.y)
	case evLoss:
		return p + fmt.Sprintf("LOSS      %d->%d %v", e.a, e.b, e.mt)
	case evDup:
		return p + fmt.Sprintf("DUPLICATE %d->%d %v (copy delay %d)", e.a, e.b, e.mt, e.y)
	case evCorrupt:
		return p + fmt.Sprintf("CORRUPT   %d->%d %v (bit %d flipped)", e.a, e.b, e.mt, e.x)
	case evDeliver:
		return p + fmt.Sprintf("deliver   %d->%d %v term=%d index=%d commit=%d", e.a, e.b, e.mt, e.x, e.y, e.z)
	case evUndeliver:
		why := "partition"
		if e.x == 2 {
			why = "recipient down"
		}
		return p + fmt.Sprintf("drop      %d->%d %v (%s)", e.a, e.b, e.mt, why)
	case evReject:
		return p + fmt.Sprintf("refused   %d->%d frame rejected by the codec", e.a, e.b)
	case evRole:
		return p + fmt.Sprintf("role      node %d is %v in term %d (leader %d)", e.a, raft.Role(e.x), e.y, e.z)
	case evCommit:
		return p + fmt.Sprintf("commit    node %d commit=%d (term %d)", e.a, e.x, e.y)
	case evCrash:
		return p + fmt.Sprintf("CRASH     node %d%s (durable: %d entries, commit %d; unsynced writes lost: %d)", e.a,
			crashWhy[min(int(e.b), len(crashWhy)-1)], e.x, e.y, e.z)
	case evSnapTake:
		return p + fmt.Sprintf("snapshot  node %d at index %d (%d B), log compacted to %d", e.a, e.x, e.y, e.z)
	case evSnapChunks:
		return p + fmt.Sprintf("chunks    node %d wrote %d snapshot chunks from offset %d (%d B)", e.a, e.y, e.x, e.z)
	case evSnapInstall:
		return p + fmt.Sprintf("INSTALL   node %d installed the snapshot at index %d term %d (%d B)", e.a, e.x, e.y, e.z)
	case evSnapRestore:
		how := "log kept"
		if e.y == rebuiltAfterSnap {
			how = "log restarted after it"
		}
		return p + fmt.Sprintf("restore   node %d restarts from its snapshot at index %d (%s)", e.a, e.x, how)
	case evSnapCorrupt:
		return p + fmt.Sprintf("DAMAGE    %d->%d MsgSnap chunk at offset %d: bit %d flipped past the codec", e.a, e.b, e.x, e.y)
	case evRestart:
		return p + fmt.Sprintf("RESTART   node %d incarnation %d (last index %d, commit %d)", e.a, e.x, e.y, e.z)
	case evPartition:
		name := partitionKindNames[e.x]
		if e.x == uint64(FaultBridge) {
			return p + fmt.Sprintf("PARTITION %s %s | %s bridged by %d", name, maskString(e.y), maskString(e.z), e.a)
		}
		if e.x == uint64(FaultOneWay) {
			return p + fmt.Sprintf("PARTITION %s %s cannot reach %s", name, maskString(e.y), maskString(e.z))
		}
		return p + fmt.Sprintf("PARTITION %s %s | %s", name, maskString(e.y), maskString(e.z))
	case evHeal:
		return p + "HEAL      network whole again"
	case evSkew:
		return p + fmt.Sprintf("SKEW      node %d ticks every %d units", e.a, e.x)
	case evInvoke:
		return p + fmt.Sprintf("invoke    client %d %v (op #%d)", e.a, kv.Op(e.x), e.y)
	case evSubmit:
		return p + fmt.Sprintf("submit    client %d -> node %d req=%d attempt %d", e.a, e.b, e.x, e.y)
	case evPropErr:
		return p + fmt.Sprintf("refused   client %d at node %d: %s", e.a, e.b, errNames[min(e.x, uint64(len(errNames)-1))])
	case evReply:
		return p + fmt.Sprintf("reply     client %d from node %d: %v at index %d (req %d)", e.a, e.b, kv.Status(e.x), e.y, e.z)
	case evTimeout:
		return p + fmt.Sprintf("timeout   client %d (node %d req %d)", e.a, e.b, e.x)
	case evRespLoss:
		return p + fmt.Sprintf("RESP-LOSS client %d (node %d req %d)", e.a, e.b, e.x)
	case evStale:
		return p + fmt.Sprintf("stale     client %d at node %d req %d: leader changed", e.a, e.b, e.x)
	case evPhase:
		return p + "PHASE     faults healed: liveness phase"
	case evLeader:
		return p + fmt.Sprintf("LEADER    node %d leads term %d", e.a, e.x)
	case evRead:
		return p + fmt.Sprintf("read      client %d -> node %d req=%d attempt %d (ReadIndex)", e.a, e.b, e.x, e.y)
	case evLocalDrop:
		return p + fmt.Sprintf("QUEUEFULL %d->%d %v dropped locally (reported unreachable)", e.a, e.b, e.mt)
	case evChurn:
		what := churnNames[min(int(e.b), numChurnKinds-1)]
		if e.x != 0 {
			return p + fmt.Sprintf("CHURN     leader %d: %s %s refused (%s)", e.a, what, maskString(e.y), rejectNames[min(int(e.x-1), numRejectReasons-1)])
		}
		if e.b == churnTransfer {
			return p + fmt.Sprintf("CHURN     leader %d: transfer to %s", e.a, maskString(e.y))
		}
		return p + fmt.Sprintf("CHURN     leader %d: %s %s proposed at index %d", e.a, what, maskString(e.y), e.z)
	case evConf:
		s := p + fmt.Sprintf("CONF      committed at index %d (seen by node %d): voters %s", e.x, e.a, maskString(e.y))
		if out := e.z & 0xFFFFFFFF; out != 0 {
			s += " & outgoing " + maskString(out)
		}
		if l := e.z >> 32; l != 0 {
			s += " learners " + maskString(l)
		}
		return s
	case evNonMember:
		return p + fmt.Sprintf("refused   %d->%d %v term=%d: sender not a member", e.a, e.b, e.mt, e.x)
	case evReadState:
		return p + fmt.Sprintf("readindex client %d at node %d req=%d: read index %d", e.a, e.b, e.x, e.y)
	}
	return p + fmt.Sprintf("event(%d) %d %d %d %d %d", e.kind, e.a, e.b, e.x, e.y, e.z)
}

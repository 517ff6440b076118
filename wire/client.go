package wire

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"

	"github.com/embraft/embraft/raft"
)

// Client frames carry the client protocol (docs/CLIENT.md): a client asks
// any member to propose a command, to read a key (linearizably, or stale
// from the local replica) or for its status, and the member answers; an
// administrator asks the leader to change the membership, to transfer
// leadership or for the configuration.
//
// They share the frame layout of §2 of docs/WIRE.md — version byte,
// cluster ID varint, type byte, fields, CRC-32C trailer — with type bytes
// 64..75, a range that no raft.MessageType can take (those are 1..15, with
// or without the Reject bit 0x80), so a client frame given to
// DecodeMessage fails with ErrType and a raft frame given to
// DecodeClientFrame fails with ErrType too.

// ClientType is a client frame's type byte. The values are part of the
// format and must never be renumbered.
type ClientType uint8

const (
	// ClientPropose asks the member to replicate Data (an encoded command
	// of the state machine, e.g. kv.Command) and to answer with its result
	// once applied there (ClientResult).
	ClientPropose ClientType = 64
	// ClientRead asks for a linearizable read of key Data (ReadIndex, then
	// the member's replica): ClientValue.
	ClientRead ClientType = 65
	// ClientStaleRead asks for the member's local value of key Data,
	// without a ReadIndex round (may be stale): ClientValue.
	ClientStaleRead ClientType = 66
	// ClientStatusRequest asks for the member's status: ClientStatusReply.
	ClientStatusRequest ClientType = 67
	// ClientResult answers ClientPropose: Data is the state machine's
	// result (e.g. an encoded kv.Result).
	ClientResult ClientType = 68
	// ClientValue answers a read: Found, Data (the value) and Index (the
	// member's applied index when it read).
	ClientValue ClientType = 69
	// ClientStatusReply answers ClientStatusRequest: Status.
	ClientStatusReply ClientType = 70
	// ClientError answers any request that failed: Code and, when known,
	// Leader.
	ClientError ClientType = 71

	// The admin requests below are served by the leader only; another
	// member answers ClientError with CodeNoLeader and, when it knows one,
	// the Leader to ask instead.

	// ClientConfChange asks the leader for one membership change: Change
	// (a raft.ConfChangeType: add voter or promote a learner, add learner,
	// remove) of node Target. Answered with ClientMembership once the
	// change is committed and applied at the leader, at once if the
	// configuration already has it (so a retry is harmless).
	ClientConfChange ClientType = 72
	// ClientTransferLeader asks the leader to hand leadership to the voter
	// Target: ClientMembership once Target leads.
	ClientTransferLeader ClientType = 73
	// ClientMembershipRequest asks the leader for the configuration in
	// effect: ClientMembership.
	ClientMembershipRequest ClientType = 74
	// ClientMembership answers the admin requests: the replying member's
	// Term, the Leader it knows, and the configuration in Data (encoded by
	// raft.AppendConfState, as EntryConfChange entries carry it).
	ClientMembership ClientType = 75
)

// minClientType and maxClientType bound the client type bytes.
const (
	minClientType = ClientPropose
	maxClientType = ClientMembership
)

// Valid reports whether t is a known client frame type.
func (t ClientType) Valid() bool { return t >= minClientType && t <= maxClientType }

// IsRequest reports whether t is sent by clients (as opposed to members).
func (t ClientType) IsRequest() bool {
	return t >= ClientPropose && t <= ClientStatusRequest || t >= ClientConfChange && t <= ClientMembershipRequest
}

// IsAdmin reports whether t is an admin request (served by the leader only).
func (t ClientType) IsAdmin() bool { return t >= ClientConfChange && t <= ClientMembershipRequest }

var clientTypeNames = [...]string{"ClientPropose", "ClientRead", "ClientStaleRead", "ClientStatusRequest",
	"ClientResult", "ClientValue", "ClientStatusReply", "ClientError",
	"ClientConfChange", "ClientTransferLeader", "ClientMembershipRequest", "ClientMembership"}

// String returns the type's name.
func (t ClientType) String() string {
	if t.Valid() {
		return clientTypeNames[t-minClientType]
	}
	return "ClientType(" + strconv.Itoa(int(t)) + ")"
}

// ErrorCode says why a request failed (ClientError). The values are part
// of the format and must never be renumbered.
type ErrorCode uint8

const (
	// CodeNoLeader: no leader is known (an election is under way). The
	// request was not started; retry (elsewhere or later).
	CodeNoLeader ErrorCode = 1
	// CodeBusy: a bound was reached (in-flight requests, proposal queue,
	// uncommitted bytes). Not started; retry later.
	CodeBusy ErrorCode = 2
	// CodeLeaderChanged: the leader changed before the command was
	// applied. Outcome unknown: retry the same bytes (sessions make that
	// safe).
	CodeLeaderChanged ErrorCode = 3
	// CodeTimeout: no outcome within the member's request timeout (or a
	// forwarded proposal got no answer). Outcome unknown.
	CodeTimeout ErrorCode = 4
	// CodeStopped: the member is shutting down. Outcome unknown.
	CodeStopped ErrorCode = 5
	// CodeTooLarge: the command can never fit one message. Not retryable.
	CodeTooLarge ErrorCode = 6
	// CodeBadRequest: the request is not valid (e.g. the command does not
	// decode). Not retryable.
	CodeBadRequest ErrorCode = 7
	// CodeInternal: the member failed otherwise (e.g. its storage).
	CodeInternal ErrorCode = 8
)

// Valid reports whether c is a known code.
func (c ErrorCode) Valid() bool { return c >= CodeNoLeader && c <= CodeInternal }

var codeNames = [...]string{"no leader", "busy", "leader changed (outcome unknown)",
	"timeout (outcome unknown)", "stopped", "too large", "bad request", "internal error"}

// String describes the code.
func (c ErrorCode) String() string {
	if c.Valid() {
		return codeNames[c-CodeNoLeader]
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}

// ClientStatus is a member's status as carried by ClientStatusReply.
type ClientStatus struct {
	Role      raft.Role
	Term      raft.Term
	Lead      raft.NodeID
	Commit    raft.Index
	Applied   raft.Index
	LastIndex raft.Index
	// Transport counters of the peer socket.
	DroppedFull, DroppedFault, DroppedBad uint64
	// ClientDropped counts datagrams dropped at the client socket
	// (malformed, unauthenticated, replayed, over the in-flight bound).
	ClientDropped uint64
	// UptimeMillis is the time since the member started, in milliseconds.
	UptimeMillis uint64
}

// ClientFrame is one decoded client frame. Only the fields of its type
// are encoded (see the layout table below); the others are ignored by
// AppendClientFrame and decode as zero.
//
//	type                 fields after the request ID
//	ClientPropose        len(Data) Data                 (the command)
//	ClientRead           len(Data) Data                 (the key)
//	ClientStaleRead      len(Data) Data                 (the key)
//	ClientStatusRequest  —
//	ClientResult         Node, len(Data) Data           (the result)
//	ClientValue          Node, Found (1 byte: 0 or 1), Index, len(Data) Data (empty unless Found)
//	ClientStatusReply    Node, Role (1 byte: 0..3), Term, Lead, Commit, Applied, LastIndex,
//	                     DroppedFull, DroppedFault, DroppedBad, ClientDropped, UptimeMillis
//	ClientError          Node, Code (1 byte: 1..8), Leader
//	ClientConfChange     Change (1 byte: 1..3), Target (not 0)
//	ClientTransferLeader Target (not 0)
//	ClientMembershipRequest —
//	ClientMembership     Node, Term, Leader, len(Data) Data (a valid configuration, see validConf)
type ClientFrame struct {
	Type ClientType
	// RequestID is chosen by the client; replies echo it.
	RequestID uint64
	// Node is the member that replies (replies only).
	Node raft.NodeID
	// Data is the command (ClientPropose), the key (reads), the result
	// (ClientResult), the value (ClientValue) or the encoded configuration
	// (ClientMembership; see ConfState).
	Data  []byte
	Found bool       // ClientValue
	Index raft.Index // ClientValue: the replica's applied index
	Code  ErrorCode  // ClientError
	// Leader is the leader if known, else 0 (ClientError, ClientMembership).
	Leader raft.NodeID
	Status ClientStatus // ClientStatusReply
	// Change is the kind of membership change (ClientConfChange).
	Change raft.ConfChangeType
	// Target is the node a change applies to (ClientConfChange) or the
	// new leader (ClientTransferLeader); never 0.
	Target raft.NodeID
	// Term is the replying member's term (ClientMembership).
	Term raft.Term
}

// ConfState decodes the configuration a ClientMembership frame carries
// (any other frame: raft.ErrInvalidConf).
func (f *ClientFrame) ConfState() (raft.ConfState, error) {
	if f.Type != ClientMembership {
		return raft.ConfState{}, raft.ErrInvalidConf
	}
	return raft.DecodeConfState(f.Data)
}

// validChange reports whether t is a membership change type.
func validChange(t raft.ConfChangeType) bool { return t >= raft.ConfAddVoter && t <= raft.ConfRemove }

// MaxClientFrameBytes is the default bound of a client frame: one
// 1200-byte datagram, like a raft frame.
const MaxClientFrameBytes = DefaultMaxFrameBytes

// AppendClientFrame appends the frame of f, addressed to cluster, to b and
// returns the extended buffer. It fails, returning b with its original
// length, if f.Type is unknown (ErrType), if a field is out of range
// (ErrMalformed: an unknown Code, a Role above 3, a value on a ClientValue
// that is not Found, an unknown Change, a zero Target, a ClientMembership
// whose Data is not a valid configuration) or if the frame would exceed maxBytes (ErrLimit; a
// non-positive maxBytes selects MaxClientFrameBytes).
func AppendClientFrame(b []byte, cluster ClusterID, f *ClientFrame, maxBytes int) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = MaxClientFrameBytes
	}
	if !f.Type.Valid() {
		return b, &EncodeError{Field: "Type", Err: ErrType}
	}
	start := len(b)
	b = append(b, Version)
	b = binary.AppendUvarint(b, uint64(cluster))
	b = append(b, byte(f.Type))
	b = binary.AppendUvarint(b, f.RequestID)
	switch f.Type {
	case ClientPropose, ClientRead, ClientStaleRead:
		b = appendClientBytes(b, f.Data)
	case ClientStatusRequest:
	case ClientResult:
		b = binary.AppendUvarint(b, uint64(f.Node))
		b = appendClientBytes(b, f.Data)
	case ClientValue:
		if !f.Found && len(f.Data) != 0 {
			return b[:start], &EncodeError{Field: "Data", Err: ErrMalformed}
		}
		b = binary.AppendUvarint(b, uint64(f.Node))
		b = append(b, boolByte(f.Found))
		b = binary.AppendUvarint(b, uint64(f.Index))
		b = appendClientBytes(b, f.Data)
	case ClientStatusReply:
		s := &f.Status
		if s.Role > raft.RoleLeader {
			return b[:start], &EncodeError{Field: "Status.Role", Err: ErrMalformed}
		}
		b = binary.AppendUvarint(b, uint64(f.Node))
		b = append(b, byte(s.Role))
		for _, v := range [...]uint64{uint64(s.Term), uint64(s.Lead), uint64(s.Commit), uint64(s.Applied),
			uint64(s.LastIndex), s.DroppedFull, s.DroppedFault, s.DroppedBad, s.ClientDropped, s.UptimeMillis} {
			b = binary.AppendUvarint(b, v)
		}
	case ClientError:
		if !f.Code.Valid() {
			return b[:start], &EncodeError{Field: "Code", Err: ErrMalformed}
		}
		b = binary.AppendUvarint(b, uint64(f.Node))
		b = append(b, byte(f.Code))
		b = binary.AppendUvarint(b, uint64(f.Leader))
	case ClientConfChange:
		if !validChange(f.Change) {
			return b[:start], &EncodeError{Field: "Change", Err: ErrMalformed}
		}
		if f.Target == raft.None {
			return b[:start], &EncodeError{Field: "Target", Err: ErrMalformed}
		}
		b = append(b, byte(f.Change))
		b = binary.AppendUvarint(b, uint64(f.Target))
	case ClientTransferLeader:
		if f.Target == raft.None {
			return b[:start], &EncodeError{Field: "Target", Err: ErrMalformed}
		}
		b = binary.AppendUvarint(b, uint64(f.Target))
	case ClientMembershipRequest:
	case ClientMembership:
		if !validConf(f.Data) {
			return b[:start], &EncodeError{Field: "Data", Err: ErrMalformed}
		}
		b = binary.AppendUvarint(b, uint64(f.Node))
		b = binary.AppendUvarint(b, uint64(f.Term))
		b = binary.AppendUvarint(b, uint64(f.Leader))
		b = appendClientBytes(b, f.Data)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	if len(b)-start > maxBytes {
		return b[:start], &EncodeError{Field: "frame", Err: ErrLimit}
	}
	return b, nil
}

func appendClientBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// ClientFrameOverhead is the largest number of bytes a ClientPropose or
// read frame adds to its Data: version, a 10-byte cluster ID, type, a
// 10-byte request ID, a 2-byte length (Data below 16 KiB) and the checksum.
const ClientFrameOverhead = 1 + 10 + 1 + 10 + 2 + crcBytes

// DecodeClientFrame decodes the client frame b, which must belong to
// cluster and hold exactly one frame, into *f. It accepts only the
// canonical encoding (minimal varints, booleans 0 or 1, no trailing
// bytes), so re-encoding a decoded frame gives back b. f.Data aliases b
// (capacity clipped to its length). A non-positive maxBytes selects
// MaxClientFrameBytes. Any input yields a frame or an error wrapping one
// of the package's sentinel errors; it never panics. On error *f is the
// zero frame.
//
// The checks run in the order of DecodeMessage: size (ErrLimit), version
// (ErrVersion), length and checksum (ErrTruncated, ErrChecksum), then the
// body (ErrCluster, ErrType, ErrTruncated, ErrMalformed).
func DecodeClientFrame(b []byte, cluster ClusterID, f *ClientFrame, maxBytes int) error {
	*f = ClientFrame{}
	if maxBytes <= 0 {
		maxBytes = MaxClientFrameBytes
	}
	switch {
	case len(b) > maxBytes:
		return &DecodeError{Field: "frame", Offset: 0, Err: ErrLimit}
	case len(b) == 0:
		return &DecodeError{Field: "Version", Offset: 0, Err: ErrTruncated}
	case b[0] != Version:
		return &DecodeError{Field: "Version", Offset: 0, Err: ErrVersion}
	case len(b) < minFrameBytes:
		return &DecodeError{Field: "frame", Offset: 0, Err: ErrTruncated}
	}
	body := b[:len(b)-crcBytes]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(body):]) {
		return &DecodeError{Field: "checksum", Offset: len(body), Err: ErrChecksum}
	}
	r := reader{b: body, off: 1}
	var x ClientFrame
	r.clientFrame(cluster, &x)
	if r.err != nil {
		return r.err
	}
	*f = x
	return nil
}

func (r *reader) clientFrame(cluster ClusterID, f *ClientFrame) {
	at := r.off
	if c := ClusterID(r.uvarint("Cluster")); r.err == nil && c != cluster {
		r.failAt(at, "Cluster", ErrCluster)
	}
	at = r.off
	f.Type = ClientType(r.byte("Type"))
	if r.err == nil && !f.Type.Valid() {
		r.failAt(at, "Type", ErrType)
	}
	f.RequestID = r.uvarint("RequestID")
	if r.err != nil {
		return
	}
	switch f.Type {
	case ClientPropose, ClientRead, ClientStaleRead:
		f.Data = r.bytes("Data", r.uvarint("Data length"))
	case ClientStatusRequest:
	case ClientResult:
		f.Node = raft.NodeID(r.uvarint("Node"))
		f.Data = r.bytes("Data", r.uvarint("Data length"))
	case ClientValue:
		f.Node = raft.NodeID(r.uvarint("Node"))
		f.Found = r.flag("Found")
		f.Index = raft.Index(r.uvarint("Index"))
		at = r.off
		f.Data = r.bytes("Data", r.uvarint("Data length"))
		if r.err == nil && !f.Found && len(f.Data) != 0 {
			r.failAt(at, "Data", ErrMalformed)
		}
	case ClientStatusReply:
		f.Node = raft.NodeID(r.uvarint("Node"))
		at = r.off
		s := &f.Status
		s.Role = raft.Role(r.byte("Status.Role"))
		if r.err == nil && s.Role > raft.RoleLeader {
			r.failAt(at, "Status.Role", ErrMalformed)
		}
		s.Term = raft.Term(r.uvarint("Status.Term"))
		s.Lead = raft.NodeID(r.uvarint("Status.Lead"))
		s.Commit = raft.Index(r.uvarint("Status.Commit"))
		s.Applied = raft.Index(r.uvarint("Status.Applied"))
		s.LastIndex = raft.Index(r.uvarint("Status.LastIndex"))
		s.DroppedFull = r.uvarint("Status.DroppedFull")
		s.DroppedFault = r.uvarint("Status.DroppedFault")
		s.DroppedBad = r.uvarint("Status.DroppedBad")
		s.ClientDropped = r.uvarint("Status.ClientDropped")
		s.UptimeMillis = r.uvarint("Status.UptimeMillis")
	case ClientError:
		f.Node = raft.NodeID(r.uvarint("Node"))
		at = r.off
		f.Code = ErrorCode(r.byte("Code"))
		if r.err == nil && !f.Code.Valid() {
			r.failAt(at, "Code", ErrMalformed)
		}
		f.Leader = raft.NodeID(r.uvarint("Leader"))
	case ClientConfChange:
		at = r.off
		f.Change = raft.ConfChangeType(r.byte("Change"))
		if r.err == nil && !validChange(f.Change) {
			r.failAt(at, "Change", ErrMalformed)
		}
		f.Target = r.target()
	case ClientTransferLeader:
		f.Target = r.target()
	case ClientMembershipRequest:
	case ClientMembership:
		f.Node = raft.NodeID(r.uvarint("Node"))
		f.Term = raft.Term(r.uvarint("Term"))
		f.Leader = raft.NodeID(r.uvarint("Leader"))
		n := r.uvarint("Data length")
		at = r.off
		f.Data = r.bytes("Data", n)
		if r.err == nil && !validConf(f.Data) {
			r.failAt(at, "Data (configuration)", ErrMalformed)
		}
	}
	r.end()
}

// target reads a Target: a node ID, never 0.
func (r *reader) target() raft.NodeID {
	at := r.off
	id := raft.NodeID(r.uvarint("Target"))
	if r.err == nil && id == raft.None {
		r.failAt(at, "Target", ErrMalformed)
	}
	return id
}

// validConf reports whether b is exactly one configuration in the encoding
// of raft.AppendConfState that raft.DecodeConfState accepts, canonically:
// for Voters, VotersOutgoing and Learners a minimal-varint count and that
// many minimal-varint IDs, each list strictly ascending without ID 0, at
// least one voter, no learner that is also a voter (in either list), at
// most raft.MaxMembers members in all, nothing after the three lists. It
// does not allocate.
func validConf(b []byte) bool {
	var lists [3][]byte // the encoded IDs of each list, checked
	r := reader{b: b}
	for i := range lists {
		n := r.uvarint("")
		if r.err != nil || n > raft.MaxMembers {
			return false
		}
		start := r.off
		var prev uint64
		for range n {
			id := r.uvarint("")
			if r.err != nil || id <= prev { // ascending, and never 0
				return false
			}
			prev = id
		}
		lists[i] = b[start:r.off]
	}
	if r.remaining() != 0 || len(lists[0]) == 0 {
		return false
	}
	voters, _ := mergeIDs(lists[0], lists[1])
	_, inVoters := mergeIDs(lists[2], lists[0])
	_, inOutgoing := mergeIDs(lists[2], lists[1])
	learners, _ := mergeIDs(lists[2], nil)
	return inVoters == 0 && inOutgoing == 0 && voters+learners <= raft.MaxMembers
}

// mergeIDs walks two checked ascending ID lists (encoded varints) and
// returns the sizes of their union and intersection.
func mergeIDs(a, b []byte) (union, common int) {
	next := func(l []byte) (uint64, []byte) {
		v, k := binary.Uvarint(l)
		return v, l[k:]
	}
	var x, y uint64
	okx, oky := len(a) > 0, len(b) > 0
	if okx {
		x, a = next(a)
	}
	if oky {
		y, b = next(b)
	}
	for okx || oky {
		union++
		takeX, takeY := okx && (!oky || x <= y), oky && (!okx || y <= x)
		if takeX && takeY {
			common++
		}
		if takeX {
			if okx = len(a) > 0; okx {
				x, a = next(a)
			}
		}
		if takeY {
			if oky = len(b) > 0; oky {
				y, b = next(b)
			}
		}
	}
	return union, common
}

// flag reads a boolean byte: 0 or 1, anything else is ErrMalformed.
func (r *reader) flag(field string) bool {
	at := r.off
	c := r.byte(field)
	if r.err == nil && c > 1 {
		r.failAt(at, field, ErrMalformed)
	}
	return c == 1
}

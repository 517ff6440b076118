package wire

import "github.com/embraft/embraft/raft"

// field names one uvarint-coded field of raft.Message.
type field uint8

const (
	fieldFrom field = iota
	fieldTo
	fieldTerm
	fieldIndex
	fieldLogTerm
	fieldCommit
	fieldHint
)

var fieldNames = [...]string{"From", "To", "Term", "Index", "LogTerm", "Commit", "Hint"}

// String returns the raft.Message field name, for errors.
func (f field) String() string { return fieldNames[f] }

// get returns the value of field f of m.
func (f field) get(m *raft.Message) uint64 {
	switch f {
	case fieldFrom:
		return uint64(m.From)
	case fieldTo:
		return uint64(m.To)
	case fieldTerm:
		return uint64(m.Term)
	case fieldIndex:
		return uint64(m.Index)
	case fieldLogTerm:
		return uint64(m.LogTerm)
	case fieldCommit:
		return uint64(m.Commit)
	}
	return uint64(m.Hint)
}

// set stores v into field f of m.
func (f field) set(m *raft.Message, v uint64) {
	switch f {
	case fieldFrom:
		m.From = raft.NodeID(v)
	case fieldTo:
		m.To = raft.NodeID(v)
	case fieldTerm:
		m.Term = raft.Term(v)
	case fieldIndex:
		m.Index = raft.Index(v)
	case fieldLogTerm:
		m.LogTerm = raft.Term(v)
	case fieldCommit:
		m.Commit = raft.Index(v)
	default:
		m.Hint = raft.Index(v)
	}
}

// entryForm says whether and how a message type carries entries.
type entryForm uint8

const (
	// noEntries: the type carries no entries.
	noEntries entryForm = iota
	// logEntries (MsgApp): consecutive log entries following Index. Their
	// indexes are implied and their terms are coded as increases, which
	// the log matching property guarantees are never negative.
	logEntries
	// recordEntries (MsgProp): proposals, not yet placed in the log, so
	// nothing can be implied; each is an entry record (see AppendEntry).
	recordEntries
	// chunkBytes (MsgSnap): one snapshot chunk, carried as Entries[0].Data
	// (the entry's other fields are zero): its length, then its bytes.
	chunkBytes
)

// layout is the wire shape of one message type.
type layout struct {
	fields  []field   // the uvarint fields, in wire order
	reject  bool      // whether Reject is meaningful (bit 7 of the type byte)
	entries entryForm // whether and how entries follow the fields
}

// layouts is the format's per-type table, indexed by raft.MessageType. It
// follows the comments on the MessageType constants: a type carries only
// the fields meaningful for it.
var layouts = [...]layout{
	raft.MsgApp:           {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex, fieldLogTerm, fieldCommit}, entries: logEntries},
	raft.MsgAppResp:       {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex, fieldHint, fieldLogTerm}, reject: true},
	raft.MsgVote:          {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex, fieldLogTerm}, reject: true},
	raft.MsgVoteResp:      {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldCommit, fieldLogTerm}, reject: true},
	raft.MsgPreVote:       {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex, fieldLogTerm}},
	raft.MsgPreVoteResp:   {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldCommit, fieldLogTerm}, reject: true},
	raft.MsgHeartbeat:     {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldCommit, fieldIndex}},
	raft.MsgHeartbeatResp: {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex}},
	raft.MsgProp:          {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex}, entries: recordEntries},
	raft.MsgPropResp:      {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex, fieldHint}, reject: true},
	raft.MsgReadIndex:     {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex}},
	raft.MsgReadIndexResp: {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex, fieldCommit, fieldHint}, reject: true},
	raft.MsgSnap:          {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex, fieldLogTerm, fieldCommit, fieldHint}, entries: chunkBytes},
	raft.MsgSnapResp:      {fields: []field{fieldFrom, fieldTo, fieldTerm, fieldIndex, fieldLogTerm, fieldCommit}, reject: true},
	raft.MsgTimeoutNow:    {fields: []field{fieldFrom, fieldTo, fieldTerm}},
}

// rejectFlag is the bit of the type byte that carries Message.Reject. It
// is folded into the type byte because a separate flags byte would cost a
// byte on every response.
const rejectFlag = 0x80

// typeByte returns the type byte for m, whose type has layout l.
func typeByte(m *raft.Message, l *layout) byte {
	if l.reject && m.Reject {
		return byte(m.Type) | rejectFlag
	}
	return byte(m.Type)
}

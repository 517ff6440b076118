package wire

import (
	"encoding/binary"

	"github.com/embraft/embraft/raft"
)

// An entry body is the part of an entry encoding shared by every form:
//
//	term - base  uvarint (base: the previous entry's term in a MsgApp, 0 in a record)
//	type         1 byte (a known raft.EntryType)
//	len(Data)    uvarint
//	Data         len(Data) bytes
//
// An entry record, used by storage and inside MsgProp, is the index
// followed by a body with base 0:
//
//	Index        uvarint
//	body(0)

// minBodyBytes is the smallest entry body: term delta, type and data
// length of one byte each. Decoders bound untrusted entry counts with it.
const minBodyBytes = 3

// minRecordBytes is the smallest entry record: an index byte and a body.
const minRecordBytes = 1 + minBodyBytes

// validEntryType reports whether t is an entry type this version knows.
func validEntryType(t raft.EntryType) bool {
	return t == raft.EntryNormal || t == raft.EntryNoop || t == raft.EntryConfChange
}

// appendBody appends the body of e, its term coded against base. The
// caller guarantees e.Term >= base.
func appendBody(b []byte, base raft.Term, e *raft.Entry) []byte {
	b = binary.AppendUvarint(b, uint64(e.Term-base))
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	return append(b, e.Data...)
}

// body reads an entry body into e (all but e.Index). e.Data aliases the
// input.
func (r *reader) body(base raft.Term, e *raft.Entry) {
	at := r.off
	term := base + raft.Term(r.uvarint("Entry.Term"))
	if term < base {
		r.failAt(at, "Entry.Term", ErrMalformed) // the term would wrap around
	}
	at = r.off
	typ := raft.EntryType(r.byte("Entry.Type"))
	if !validEntryType(typ) {
		r.failAt(at, "Entry.Type", ErrMalformed)
	}
	n := r.uvarint("Entry.Data length")
	e.Term, e.Type, e.Data = term, typ, r.bytes("Entry.Data", n)
}

// AppendEntry appends the entry record of e to b and returns the extended
// buffer. The record holds no checksum or version: storage frames records
// with its own length and CRC. e.Type must be a known raft.EntryType, or
// DecodeEntry will refuse the record.
func AppendEntry(b []byte, e *raft.Entry) []byte {
	b = binary.AppendUvarint(b, uint64(e.Index))
	return appendBody(b, 0, e)
}

// record reads an entry record into e.
func (r *reader) record(e *raft.Entry) {
	e.Index = raft.Index(r.uvarint("Entry.Index"))
	r.body(0, e)
}

// DecodeEntry decodes the entry record at the front of b into e and
// returns the number of bytes it occupies; bytes after it are left for the
// caller (records can be concatenated). e.Data aliases b: the caller must
// not reuse b while e is in use. On error e is unchanged.
func DecodeEntry(b []byte, e *raft.Entry) (n int, err error) {
	r := reader{b: b}
	var out raft.Entry
	r.record(&out)
	if r.err != nil {
		return 0, r.err
	}
	*e = out
	return r.off, nil
}

// A hard-state record is three uvarints:
//
//	Term, Vote, Commit

// AppendHardState appends the record of hs to b and returns the extended
// buffer. Like an entry record it carries no checksum or version.
func AppendHardState(b []byte, hs raft.HardState) []byte {
	b = binary.AppendUvarint(b, uint64(hs.Term))
	b = binary.AppendUvarint(b, uint64(hs.Vote))
	return binary.AppendUvarint(b, uint64(hs.Commit))
}

// DecodeHardState decodes a hard-state record that must fill b exactly.
// On error hs is unchanged.
func DecodeHardState(b []byte, hs *raft.HardState) error {
	r := reader{b: b}
	out := raft.HardState{
		Term:   raft.Term(r.uvarint("HardState.Term")),
		Vote:   raft.NodeID(r.uvarint("HardState.Vote")),
		Commit: raft.Index(r.uvarint("HardState.Commit")),
	}
	r.end()
	if r.err != nil {
		return r.err
	}
	*hs = out
	return nil
}

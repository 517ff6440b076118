package wire_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// testCluster is the cluster ID of most test frames.
const testCluster wire.ClusterID = 7

// shape is the test's own statement of the format's per-type layout,
// written from docs/WIRE.md rather than taken from the package, so that
// normalize and annotate cross-check the implementation.
type shape struct {
	fields  []string // uvarint fields in wire order (raft.Message field names)
	reject  bool     // Reject travels (bit 7 of the type byte)
	entries string   // "", "log" (MsgApp), "records" (MsgProp) or "chunk" (MsgSnap)
}

var shapes = map[raft.MessageType]shape{
	raft.MsgApp:           {fields: []string{"From", "To", "Term", "Index", "LogTerm", "Commit"}, entries: "log"},
	raft.MsgAppResp:       {fields: []string{"From", "To", "Term", "Index", "Hint", "LogTerm"}, reject: true},
	raft.MsgVote:          {fields: []string{"From", "To", "Term", "Index", "LogTerm"}, reject: true},
	raft.MsgVoteResp:      {fields: []string{"From", "To", "Term", "Commit", "LogTerm"}, reject: true},
	raft.MsgPreVote:       {fields: []string{"From", "To", "Term", "Index", "LogTerm"}},
	raft.MsgPreVoteResp:   {fields: []string{"From", "To", "Term", "Commit", "LogTerm"}, reject: true},
	raft.MsgHeartbeat:     {fields: []string{"From", "To", "Term", "Commit", "Index"}},
	raft.MsgHeartbeatResp: {fields: []string{"From", "To", "Term", "Index"}},
	raft.MsgProp:          {fields: []string{"From", "To", "Term", "Index"}, entries: "records"},
	raft.MsgPropResp:      {fields: []string{"From", "To", "Term", "Index", "Hint"}, reject: true},
	raft.MsgReadIndex:     {fields: []string{"From", "To", "Term", "Index"}},
	raft.MsgReadIndexResp: {fields: []string{"From", "To", "Term", "Index", "Commit", "Hint"}, reject: true},
	raft.MsgSnap:          {fields: []string{"From", "To", "Term", "Index", "LogTerm", "Commit", "Hint"}, entries: "chunk"},
	raft.MsgSnapResp:      {fields: []string{"From", "To", "Term", "Index", "LogTerm", "Commit"}, reject: true},
	raft.MsgTimeoutNow:    {fields: []string{"From", "To", "Term"}},
}

// allTypes lists every valid message type.
func allTypes() []raft.MessageType {
	var ts []raft.MessageType
	for t := raft.MessageType(0); t < 255; t++ {
		if t.Valid() {
			ts = append(ts, t)
		}
	}
	return ts
}

// unknownType returns the smallest message type above every valid one.
// It is derived from raft.MessageType.Valid, so it stays unknown when new
// types are added; it must fit the type byte's low 7 bits.
func unknownType() raft.MessageType {
	ts := allTypes()
	t := ts[len(ts)-1] + 1
	if t >= 0x80 || t.Valid() {
		panic("no unknown message type below the Reject bit")
	}
	return t
}

// unknownEntryType returns the entry type just above the largest one the
// codec accepts, found by probing DecodeEntry with a record of each type,
// so that it stays unknown when new entry types are added.
func unknownEntryType() raft.EntryType {
	last := -1
	for t := range 256 {
		var e raft.Entry
		if _, err := wire.DecodeEntry([]byte{1, 1, byte(t), 0}, &e); err == nil {
			last = t
		}
	}
	if last < int(raft.EntryConfChange) || last == 255 {
		panic("the codec refuses EntryConfChange, or accepts every entry type")
	}
	return raft.EntryType(last + 1)
}

// normalize returns the part of m that the format promises to carry:
// the fields meaningful for m.Type, with empty Entries and empty Data as
// nil (the decoder cannot tell nil from empty).
func normalize(m *raft.Message) raft.Message {
	sh := shapes[m.Type]
	out := raft.Message{Type: m.Type}
	src, dst := reflect.ValueOf(m).Elem(), reflect.ValueOf(&out).Elem()
	for _, f := range sh.fields {
		dst.FieldByName(f).Set(src.FieldByName(f))
	}
	if sh.reject {
		out.Reject = m.Reject
	}
	if sh.entries != "" {
		for _, e := range m.Entries {
			out.Entries = append(out.Entries, normalizeEntry(e))
		}
	}
	return out
}

// normalizeEntry maps empty Data to nil.
func normalizeEntry(e raft.Entry) raft.Entry {
	if len(e.Data) == 0 {
		e.Data = nil
	}
	return e
}

// sentinels are the package's error classes.
var sentinels = []error{wire.ErrTruncated, wire.ErrChecksum, wire.ErrVersion,
	wire.ErrCluster, wire.ErrType, wire.ErrLimit, wire.ErrMalformed}

// checkTyped fails t unless err is non-nil, wraps exactly one sentinel,
// and (for decode errors) is a *DecodeError.
func checkTyped(t testing.TB, err error, decode bool) {
	t.Helper()
	if err == nil {
		t.Fatal("got nil error")
	}
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %q wraps %d sentinels, want 1", err, n)
	}
	var de *wire.DecodeError
	var ee *wire.EncodeError
	if decode && !errors.As(err, &de) || !decode && !errors.As(err, &ee) {
		t.Fatalf("error %q (%T) is not the expected typed error", err, err)
	}
}

// fixCRC rewrites the trailer of frame to match its contents, so tests
// can reach the parser behind the checksum. It modifies frame in place.
func fixCRC(frame []byte) []byte {
	if len(frame) < 4 {
		return frame
	}
	body := frame[:len(frame)-4]
	sum := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
	binary.LittleEndian.PutUint32(frame[len(body):], sum)
	return frame
}

// mustEncode encodes m for cluster c or fails t.
func mustEncode(t testing.TB, c wire.ClusterID, m *raft.Message) []byte {
	t.Helper()
	b, err := wire.AppendMessage(nil, c, m)
	if err != nil {
		t.Fatalf("AppendMessage(%+v): %v", m, err)
	}
	return b
}

package wire

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"slices"

	"github.com/embraft/embraft/raft"
)

// Version is the format version, the first byte of every frame. Storage
// records carry no version byte; storage keeps Version in its file headers.
const Version = 1

// ClusterID names a cluster. Every frame carries it so that a node never
// acts on a message meant for another cluster (a stale peer address, a
// misconfigured test); decoding a frame of another cluster fails with
// ErrCluster.
type ClusterID uint64

// Default bounds. 1200 bytes is the largest UDP payload that IPv6
// guarantees to deliver unfragmented (1280-byte minimum MTU less the IPv6
// and UDP headers, rounded down); 64 entries matches the raft core's
// default budget of 1024 bytes at 16 bytes charged per entry.
const (
	DefaultMaxFrameBytes = 1200
	DefaultMaxEntries    = 64
)

// Limits bounds what a frame may hold. Both bounds are enforced when
// encoding and when decoding, failing with ErrLimit. A field that is zero
// or negative selects its default.
type Limits struct {
	MaxFrameBytes int // whole frame, version byte to checksum
	MaxEntries    int // entries in one MsgApp or MsgProp (a MsgSnap has one)
}

// DefaultLimits are the limits AppendMessage uses.
var DefaultLimits = Limits{MaxFrameBytes: DefaultMaxFrameBytes, MaxEntries: DefaultMaxEntries}

// orDefault replaces non-positive bounds with their defaults.
func (lim Limits) orDefault() Limits {
	if lim.MaxFrameBytes <= 0 {
		lim.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = DefaultMaxEntries
	}
	return lim
}

// crcBytes is the size of the frame trailer.
const crcBytes = 4

// minFrameBytes is the smallest well-formed frame: version, one-byte
// cluster ID, type byte and checksum (MsgHeartbeatResp still adds three
// fields, but the length check only has to make the checksum addressable).
const minFrameBytes = 1 + 1 + 1 + crcBytes

// castagnoli is the CRC-32C table, built once: CRC-32C has hardware
// support on amd64 and arm64 and better error detection than IEEE.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendMessage appends the frame of m, addressed to cluster, to b and
// returns the extended buffer. It enforces DefaultLimits; see
// Limits.AppendMessage.
func AppendMessage(b []byte, cluster ClusterID, m *raft.Message) ([]byte, error) {
	return DefaultLimits.AppendMessage(b, cluster, m)
}

// AppendMessage appends the frame of m, addressed to cluster, to b and
// returns the extended buffer. Only the fields meaningful for m.Type are
// encoded; the others are ignored. It fails, returning b with its original
// length, if m.Type is unknown (ErrType), if m has more entries than
// lim.MaxEntries or the frame would exceed lim.MaxFrameBytes (ErrLimit), or
// if the entries cannot be encoded (ErrMalformed: an unknown entry type,
// MsgApp entries whose indexes do not run Index+1, Index+2, ... or whose
// terms fall below LogTerm or below the previous entry's term, or a MsgSnap
// without exactly one entry whose only non-zero field is Data). A failed
// call may have written into b's spare capacity.
func (lim Limits) AppendMessage(b []byte, cluster ClusterID, m *raft.Message) ([]byte, error) {
	lim = lim.orDefault()
	if !m.Type.Valid() {
		return b, &EncodeError{Field: "Type", Err: ErrType}
	}
	l := &layouts[m.Type]
	if l.entries != noEntries && len(m.Entries) > lim.MaxEntries {
		return b, &EncodeError{Field: "Entries", Err: ErrLimit}
	}
	start := len(b)
	b = append(b, Version)
	b = binary.AppendUvarint(b, uint64(cluster))
	b = append(b, typeByte(m, l))
	for _, f := range l.fields {
		b = binary.AppendUvarint(b, f.get(m))
	}
	var err error
	switch l.entries {
	case logEntries:
		b, err = appendLogEntries(b, m)
	case recordEntries:
		b, err = appendRecordEntries(b, m.Entries)
	case chunkBytes:
		b, err = appendChunk(b, m.Entries)
	}
	if err != nil {
		return b[:start], err
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	if len(b)-start > lim.MaxFrameBytes {
		return b[:start], &EncodeError{Field: "frame", Err: ErrLimit}
	}
	return b, nil
}

// appendLogEntries appends the entries of a MsgApp: their count, then
// their bodies, each term coded against the term before it. It checks the
// invariants that let the indexes be implied and the term deltas be
// unsigned, which the log matching property guarantees for a real MsgApp.
func appendLogEntries(b []byte, m *raft.Message) ([]byte, error) {
	if uint64(len(m.Entries)) > math.MaxUint64-uint64(m.Index) {
		return b, &EncodeError{Field: "Entries.Index", Err: ErrMalformed}
	}
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	prev := m.LogTerm
	for i := range m.Entries {
		e := &m.Entries[i]
		switch {
		case e.Index != m.Index+1+raft.Index(i):
			return b, &EncodeError{Field: "Entries.Index", Err: ErrMalformed}
		case e.Term < prev:
			return b, &EncodeError{Field: "Entries.Term", Err: ErrMalformed}
		case !validEntryType(e.Type):
			return b, &EncodeError{Field: "Entries.Type", Err: ErrMalformed}
		}
		b = appendBody(b, prev, e)
		prev = e.Term
	}
	return b, nil
}

// appendRecordEntries appends the entries of a MsgProp: their count, then
// one entry record each.
func appendRecordEntries(b []byte, ents []raft.Entry) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(ents)))
	for i := range ents {
		if !validEntryType(ents[i].Type) {
			return b, &EncodeError{Field: "Entries.Type", Err: ErrMalformed}
		}
		b = AppendEntry(b, &ents[i])
	}
	return b, nil
}

// appendChunk appends the snapshot chunk of a MsgSnap: exactly one entry
// whose only non-zero field is Data.
func appendChunk(b []byte, ents []raft.Entry) ([]byte, error) {
	if len(ents) != 1 {
		return b, &EncodeError{Field: "Entries", Err: ErrMalformed}
	}
	if e := &ents[0]; e.Index != 0 || e.Term != 0 || e.Type != raft.EntryNormal {
		return b, &EncodeError{Field: "Entries[0]", Err: ErrMalformed}
	}
	b = binary.AppendUvarint(b, uint64(len(ents[0].Data)))
	return append(b, ents[0].Data...), nil
}

// DecodeMessage decodes the frame b, which must belong to cluster and hold
// exactly one frame, into m, enforcing lim. Every field of m is
// overwritten; m.Entries keeps its capacity, so decoding into a reused
// message allocates nothing once that capacity suffices. Each decoded
// Entry.Data aliases b: the caller must not modify or reuse b while m is
// in use. On error m holds partial results and must not be used.
//
// The checks run in this order, so the error names the first problem: the
// frame size against lim (ErrLimit), the version byte (ErrVersion, checked
// before the checksum because a future version may lay the frame out
// differently), the checksum (ErrTruncated, ErrChecksum), then the
// contents (ErrCluster, ErrType, ErrLimit, ErrTruncated, ErrMalformed).
func DecodeMessage(b []byte, cluster ClusterID, m *raft.Message, lim Limits) error {
	lim = lim.orDefault()
	switch {
	case len(b) > lim.MaxFrameBytes:
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
	r.frame(cluster, m, lim)
	return r.err
}

// frame reads a checksummed frame body, after the version byte, into m.
func (r *reader) frame(cluster ClusterID, m *raft.Message, lim Limits) {
	at := r.off
	if c := ClusterID(r.uvarint("Cluster")); r.err == nil && c != cluster {
		r.failAt(at, "Cluster", ErrCluster)
	}
	l, typ, reject := r.typeByte()
	if r.err != nil {
		return
	}
	*m = raft.Message{Type: typ, Reject: reject, Entries: m.Entries[:0]}
	for _, f := range l.fields {
		f.set(m, r.uvarint(f.String()))
	}
	switch l.entries {
	case logEntries:
		r.logEntries(m, lim)
	case recordEntries:
		r.recordEntries(m, lim)
	case chunkBytes:
		r.chunk(m)
	}
	r.end()
}

// typeByte reads the type byte and returns the type's layout, the type,
// and the Reject flag, which only types with a Reject field may set.
func (r *reader) typeByte() (*layout, raft.MessageType, bool) {
	at := r.off
	c := r.byte("Type")
	if r.err != nil {
		return nil, 0, false
	}
	typ := raft.MessageType(c &^ rejectFlag)
	if !typ.Valid() {
		r.failAt(at, "Type", ErrType)
		return nil, 0, false
	}
	l := &layouts[typ]
	reject := c&rejectFlag != 0
	if reject && !l.reject {
		r.failAt(at, "Type", ErrMalformed)
	}
	return l, typ, reject
}

// entryCount reads an entry count and checks it against lim and against
// the bytes left (each entry needs at least minBytes), so that the count
// can size m.Entries without trusting the sender.
func (r *reader) entryCount(m *raft.Message, lim Limits, minBytes int) int {
	at := r.off
	n := r.uvarint("Entries.count")
	switch {
	case r.err != nil:
		return 0
	case n > uint64(lim.MaxEntries):
		r.failAt(at, "Entries.count", ErrLimit)
		return 0
	case n > uint64(r.remaining()/minBytes):
		r.failAt(at, "Entries.count", ErrTruncated)
		return 0
	}
	m.Entries = slices.Grow(m.Entries, int(n))
	return int(n)
}

// logEntries reads the entries of a MsgApp: it derives each index from
// m.Index and each term from the one before it (LogTerm for the first).
func (r *reader) logEntries(m *raft.Message, lim Limits) {
	n := r.entryCount(m, lim, minBodyBytes)
	if uint64(n) > math.MaxUint64-uint64(m.Index) {
		r.fail("Entries.count", ErrMalformed) // the last index would wrap around
		return
	}
	prev := m.LogTerm
	for i := 0; i < n && r.err == nil; i++ {
		e := raft.Entry{Index: m.Index + 1 + raft.Index(i)}
		r.body(prev, &e)
		m.Entries = append(m.Entries, e)
		prev = e.Term
	}
}

// chunk reads the snapshot chunk of a MsgSnap into m.Entries[0].Data,
// aliasing the frame.
func (r *reader) chunk(m *raft.Message) {
	n := r.uvarint("Chunk length")
	data := r.bytes("Chunk", n)
	if r.err == nil {
		m.Entries = append(m.Entries, raft.Entry{Data: data})
	}
}

// recordEntries reads the entries of a MsgProp: one entry record each.
func (r *reader) recordEntries(m *raft.Message, lim Limits) {
	n := r.entryCount(m, lim, minRecordBytes)
	for i := 0; i < n && r.err == nil; i++ {
		var e raft.Entry
		r.record(&e)
		m.Entries = append(m.Entries, e)
	}
}

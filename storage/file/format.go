package file

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// File names inside a storage directory (see docs/STORAGE.md).
const (
	metaName      = "META"
	hardStateName = "HARDSTATE"
	logStartName  = "LOGSTART"
	snapshotName  = "SNAPSHOT"
	incomingName  = "SNAPSHOT.incoming" // a snapshot arriving from the leader
	tmpSuffix     = ".tmp"
	segSuffix     = ".log"
	segNameLen    = 16 + len(segSuffix) // 16 hex digits of the first index
)

// formatVersion is written in META and every segment header.
const formatVersion = 1

// Magic numbers open every file so that a stray file is never taken for
// one of ours, and an all-zero region never validates.
var (
	metaMagic     = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'M'}
	segMagic      = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'L'}
	hsMagic       = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'H'}
	logStartMagic = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'C'}
	snapMagic     = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'S'}
	incomingMagic = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'I'}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

var le = binary.LittleEndian

// identity is what META and every segment header record.
type identity struct {
	version uint32
	cluster wire.ClusterID
	node    raft.NodeID
}

// META: magic(8) version u32 cluster u64 node u64 crc u32 = 32 bytes.
const metaLen = 32

func encodeMeta(id identity) []byte {
	b := make([]byte, 0, metaLen)
	b = append(b, metaMagic[:]...)
	b = le.AppendUint32(b, id.version)
	b = le.AppendUint64(b, uint64(id.cluster))
	b = le.AppendUint64(b, uint64(id.node))
	return le.AppendUint32(b, crc(b))
}

func decodeMeta(b []byte) (identity, error) {
	if len(b) != metaLen || [8]byte(b[:8]) != metaMagic || le.Uint32(b[28:]) != crc(b[:28]) {
		return identity{}, errors.New("bad META record (length, magic or checksum)")
	}
	return identity{le.Uint32(b[8:]), wire.ClusterID(le.Uint64(b[12:])), raft.NodeID(le.Uint64(b[20:]))}, nil
}

// Segment header: magic(8) version u32 cluster u64 node u64 first u64
// crc u32 = 40 bytes. first is the index of the segment's first record.
const segHeaderLen = 40

func encodeSegHeader(id identity, first raft.Index) []byte {
	b := make([]byte, 0, segHeaderLen)
	b = append(b, segMagic[:]...)
	b = le.AppendUint32(b, id.version)
	b = le.AppendUint64(b, uint64(id.cluster))
	b = le.AppendUint64(b, uint64(id.node))
	b = le.AppendUint64(b, uint64(first))
	return le.AppendUint32(b, crc(b))
}

func decodeSegHeader(b []byte) (identity, raft.Index, bool) {
	if len(b) < segHeaderLen || [8]byte(b[:8]) != segMagic || le.Uint32(b[36:]) != crc(b[:36]) {
		return identity{}, 0, false
	}
	id := identity{le.Uint32(b[8:]), wire.ClusterID(le.Uint64(b[12:])), raft.NodeID(le.Uint64(b[20:]))}
	return id, raft.Index(le.Uint64(b[28:])), true
}

// segName is the file name of the segment whose first record is first:
// fixed-width hex, so lexical order is index order.
func segName(first raft.Index) string {
	s := strconv.FormatUint(uint64(first), 16)
	return "0000000000000000"[len(s):] + s + segSuffix
}

// parseSegName returns the first index a segment name encodes.
func parseSegName(name string) (raft.Index, bool) {
	if len(name) != segNameLen || name[16:] != segSuffix {
		return 0, false
	}
	v, err := strconv.ParseUint(name[:16], 16, 64)
	return raft.Index(v), err == nil
}

// A frame is one log record in a segment:
//
//	length  u32   bytes of the entry record (>= minRecordLen)
//	crc     u32   CRC-32C of the 4 length bytes followed by the record
//	record  the wire entry record (wire.AppendEntry)
const (
	frameHeaderLen = 8
	// minRecordLen is the shortest wire entry record: index, term, type
	// and data length of one byte each. Zero-filled space never frames.
	minRecordLen = 4
	// MaxRecordBytes bounds one entry record (payload plus a few bytes of
	// header). Recovery treats a larger length as damage.
	MaxRecordBytes = 16 << 20
)

// appendFrame appends e's frame to b.
func appendFrame(b []byte, e *raft.Entry) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = wire.AppendEntry(b, e)
	le.PutUint32(b[at:], uint32(len(b)-at-frameHeaderLen))
	sum := crc32.Update(0, castagnoli, b[at:at+4])
	le.PutUint32(b[at+4:], crc32.Update(sum, castagnoli, b[at+frameHeaderLen:]))
	return b
}

// frameLen returns the record length a frame header announces, and
// whether it is plausible.
func frameLen(hdr []byte) (int, bool) {
	n := le.Uint32(hdr)
	return int(n), n >= minRecordLen && n <= MaxRecordBytes
}

// frameOK reports whether record matches the checksum in hdr.
func frameOK(hdr, record []byte) bool {
	sum := crc32.Update(0, castagnoli, hdr[:4])
	return crc32.Update(sum, castagnoli, record) == le.Uint32(hdr[4:])
}

// decodeRecord decodes a checksummed record that must fill rec exactly.
func decodeRecord(rec []byte, e *raft.Entry) error {
	n, err := wire.DecodeEntry(rec, e)
	if err != nil {
		return err
	}
	if n != len(rec) {
		return errors.New("entry record shorter than its frame")
	}
	return nil
}

// findFrame returns the offset of the first position in b[from:] where a
// complete frame with a matching checksum starts, or -1. Recovery uses it
// to tell a torn tail (nothing valid after the damage) from damage in the
// middle of the log.
func findFrame(b []byte, from int) int {
	for p := from; p+frameHeaderLen+minRecordLen <= len(b); p++ {
		n, ok := frameLen(b[p:])
		end := p + frameHeaderLen + n
		if ok && end <= len(b) && frameOK(b[p:], b[p+frameHeaderLen:end]) {
			return p
		}
	}
	return -1
}

// LOGSTART: magic(8) index u64 term u64 crc u32 = 28 bytes. The index and
// term of the last compacted entry: Term(index) stays answerable.
const logStartLen = 28

func encodeLogStart(i raft.Index, t raft.Term) []byte {
	b := make([]byte, 0, logStartLen)
	b = append(b, logStartMagic[:]...)
	b = le.AppendUint64(b, uint64(i))
	b = le.AppendUint64(b, uint64(t))
	return le.AppendUint32(b, crc(b))
}

func decodeLogStart(b []byte) (raft.Index, raft.Term, bool) {
	if len(b) != logStartLen || [8]byte(b[:8]) != logStartMagic || le.Uint32(b[24:]) != crc(b[:24]) {
		return 0, 0, false
	}
	return raft.Index(le.Uint64(b[8:])), raft.Term(le.Uint64(b[16:])), true
}

// A hard-state slot: magic(8) seq u64 n u8 record(n) crc u32, where the
// record is wire.AppendHardState's (at most 30 bytes). HARDSTATE holds two
// slots, each at the start of its own 4 KiB block so that a torn write of
// one cannot touch the other.
const (
	hsSlotSize  = 4096
	hsSlots     = 2
	hsRecordMax = 3 * binary.MaxVarintLen64
)

func encodeHSSlot(seq uint64, hs raft.HardState) []byte {
	b := make([]byte, 0, 64)
	b = append(b, hsMagic[:]...)
	b = le.AppendUint64(b, seq)
	b = append(b, 0)
	b = wire.AppendHardState(b, hs)
	b[16] = byte(len(b) - 17)
	return le.AppendUint32(b, crc(b))
}

func decodeHSSlot(b []byte) (seq uint64, hs raft.HardState, ok bool) {
	if len(b) < 17+4 || [8]byte(b[:8]) != hsMagic || int(b[16]) > hsRecordMax {
		return 0, hs, false
	}
	end := 17 + int(b[16])
	if len(b) < end+4 || le.Uint32(b[end:]) != crc(b[:end]) {
		return 0, hs, false
	}
	if wire.DecodeHardState(b[17:end], &hs) != nil {
		return 0, hs, false
	}
	return le.Uint64(b[8:]), hs, true
}

// The SNAPSHOT file: a 48-byte header — magic(8) version u32 index u64
// term u64 size u64 dataCRC u32 confLen u32 crc u32 — then confLen bytes
// of configuration (raft.AppendConfState; none if the snapshot has no
// configuration), then size bytes of data, nothing else. The header's crc
// covers its first 44 bytes followed by the configuration bytes, so the
// configuration is as well protected as the header. The incoming file has
// the same layout with incomingMagic and a zero data CRC (known only once
// the transfer is complete), so that installing it rewrites the header
// (and the configuration bytes, unchanged) instead of copying the data.
//
// The snapshot file has its own version: 1 was a layout with a trailer and
// 2 had no configuration (confLen reserved, always 0), both written by no
// released runtime and refused with ErrVersion.
const (
	snapVersion   = 3
	snapHeaderLen = 48
	// maxConfBytes bounds confLen. A valid configuration has at most
	// raft.MaxMembers members, each ID a uvarint of at most 10 bytes, plus
	// three counts: under 700 bytes. A larger length is damage, refused
	// before anything is read or allocated for it.
	maxConfBytes = 4 << 10
	// snapConfLenOff is the offset of confLen in the header.
	snapConfLenOff = 40
)

// encodeConf returns the bytes SNAPSHOT stores for cs: none for the zero
// ConfState (a snapshot without a configuration), else its encoding, which
// must decode again (raft.ErrInvalidConf otherwise: a configuration that
// Open would refuse is never written).
func encodeConf(cs raft.ConfState) ([]byte, error) {
	if len(cs.Voters) == 0 && len(cs.VotersOutgoing) == 0 && len(cs.Learners) == 0 {
		return nil, nil
	}
	b := raft.AppendConfState(nil, cs)
	if _, err := raft.DecodeConfState(b); err != nil || len(b) > maxConfBytes {
		return nil, fmt.Errorf("snapshot configuration %+v: %w", cs, raft.ErrInvalidConf)
	}
	return b, nil
}

// encodeSnapHeader returns the header for m followed by conf, its
// configuration's encoding (encodeConf): the first 48+len(conf) bytes of
// the file.
func encodeSnapHeader(magic [8]byte, m raft.SnapshotMeta, conf []byte) []byte {
	b := make([]byte, 0, snapHeaderLen+len(conf))
	b = append(b, magic[:]...)
	b = le.AppendUint32(b, snapVersion)
	b = le.AppendUint64(b, uint64(m.Index))
	b = le.AppendUint64(b, uint64(m.Term))
	b = le.AppendUint64(b, m.Size)
	b = le.AppendUint32(b, m.CRC)
	b = le.AppendUint32(b, uint32(len(conf)))
	b = le.AppendUint32(b, crc32.Update(crc(b), castagnoli, conf))
	return append(b, conf...)
}

// snapHeader is a decoded SNAPSHOT header.
type snapHeader struct {
	meta    raft.SnapshotMeta
	version uint32 // another version than snapVersion: ErrVersion
	confLen int    // bytes of configuration after the header
}

// dataOff is the offset of the data in the file.
func (h snapHeader) dataOff() int64 { return snapHeaderLen + int64(h.confLen) }

// decodeSnapHeader decodes the fixed header in b (at least snapHeaderLen
// bytes, else bad). If the version is this build's and confLen within its
// bound, conf is called for the confLen bytes that follow the header;
// they must be whole. It returns why the header is bad and the offset to
// report, if it is.
func decodeSnapHeader(b []byte, conf func(n int) ([]byte, error)) (h snapHeader, bad string, off int64) {
	if len(b) < snapHeaderLen || [8]byte(b[:8]) != snapMagic {
		return h, "bad snapshot header (length or magic)", 0
	}
	if h.version = le.Uint32(b[8:]); h.version != snapVersion {
		return h, "", 0
	}
	h.meta = raft.SnapshotMeta{Index: raft.Index(le.Uint64(b[12:])), Term: raft.Term(le.Uint64(b[20:])),
		Size: le.Uint64(b[28:]), CRC: le.Uint32(b[36:])}
	n := le.Uint32(b[snapConfLenOff:])
	if n > maxConfBytes {
		return h, fmt.Sprintf("snapshot configuration length %d exceeds the bound of %d bytes", n, maxConfBytes), snapConfLenOff
	}
	h.confLen = int(n)
	cb, err := conf(h.confLen)
	if err != nil {
		return h, fmt.Sprintf("reading %d bytes of snapshot configuration: %v", n, err), snapHeaderLen
	}
	switch {
	case le.Uint32(b[44:]) != crc32.Update(crc(b[:44]), castagnoli, cb):
		return h, "snapshot header checksum mismatch (header and configuration)", 0
	case h.meta.Index == 0:
		return h, "snapshot of index 0", 0
	}
	if n > 0 {
		if h.meta.Conf, err = raft.DecodeConfState(cb); err != nil {
			return h, fmt.Sprintf("snapshot configuration does not decode: %v", err), snapHeaderLen
		}
	}
	return h, "", 0
}

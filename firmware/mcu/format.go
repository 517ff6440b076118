package mcu

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// The byte layouts of docs/STORAGE.md (package storage/file), written again
// here because storage/file keeps them unexported and itself needs os and
// log/slog. A directory the firmware writes is one that storage/file.Open
// accepts (firmware/mcu's tests check this on the host): META, HARDSTATE
// and one segment "0000000000000001.log". The firmware never rolls a
// segment, compacts the files, or writes LOGSTART or SNAPSHOT.
const (
	metaName      = "META"
	hardStateName = "HARDSTATE"
	segmentName   = "0000000000000001.log" // the only segment: first index 1
	tmpSuffix     = ".tmp"

	formatVersion  = 1
	metaLen        = 32
	segHeaderLen   = 40
	frameHeaderLen = 8
	minRecordLen   = 4
	maxRecordBytes = 16 << 20
	hsSlotSize     = 4096
	hsSlots        = 2
	hsRecordMax    = 3 * binary.MaxVarintLen64
)

var (
	metaMagic = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'M'}
	segMagic  = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'L'}
	hsMagic   = [8]byte{'E', 'M', 'B', 'R', 'A', 'F', 'T', 'H'}

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	le         = binary.LittleEndian
)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// identity is what META and the segment header record.
type identity struct {
	version uint32
	cluster wire.ClusterID
	node    raft.NodeID
}

func (id identity) String() string {
	return "node " + strconv.FormatUint(uint64(id.node), 10) + " of cluster " + strconv.FormatUint(uint64(id.cluster), 10)
}

// META: magic(8) version u32 cluster u64 node u64 crc u32.
func encodeMeta(id identity) []byte {
	b := make([]byte, 0, metaLen)
	b = append(b, metaMagic[:]...)
	b = le.AppendUint32(b, id.version)
	b = le.AppendUint64(b, uint64(id.cluster))
	b = le.AppendUint64(b, uint64(id.node))
	return le.AppendUint32(b, crc(b))
}

func decodeMeta(b []byte) (identity, bool) {
	if len(b) != metaLen || [8]byte(b[:8]) != metaMagic || le.Uint32(b[28:]) != crc(b[:28]) {
		return identity{}, false
	}
	return identity{le.Uint32(b[8:]), wire.ClusterID(le.Uint64(b[12:])), raft.NodeID(le.Uint64(b[20:]))}, true
}

// Segment header: magic(8) version u32 cluster u64 node u64 first u64 crc u32.
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

// A frame: record length u32, CRC-32C u32 of the length bytes followed by
// the record, then the wire entry record (wire.AppendEntry).
func appendFrame(b []byte, e *raft.Entry) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = wire.AppendEntry(b, e)
	le.PutUint32(b[at:], uint32(len(b)-at-frameHeaderLen))
	sum := crc32.Update(0, castagnoli, b[at:at+4])
	le.PutUint32(b[at+4:], crc32.Update(sum, castagnoli, b[at+frameHeaderLen:]))
	return b
}

func frameLen(hdr []byte) (int, bool) {
	n := le.Uint32(hdr)
	return int(n), n >= minRecordLen && n <= maxRecordBytes
}

func frameOK(hdr, record []byte) bool {
	sum := crc32.Update(0, castagnoli, hdr[:4])
	return crc32.Update(sum, castagnoli, record) == le.Uint32(hdr[4:])
}

// findFrame returns the offset of the first complete, checksummed frame in
// b[from:], or -1: a bad frame with none after it is a torn tail.
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

// A hard-state slot: magic(8) seq u64 n u8 record(n) crc u32; HARDSTATE
// holds two, each at the start of its own 4 KiB block.
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

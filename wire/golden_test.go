package wire_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.hex and the FuzzDecode seed corpus")

// goldenCase is one pinned encoding: a frame (msg set) or a record (hs or
// ent set).
type goldenCase struct {
	name    string
	note    string
	cluster wire.ClusterID
	msg     *raft.Message
	hs      *raft.HardState
	ent     *raft.Entry
	// preHeader marks a MsgSnap vector pinned before the snapshot stream
	// began with a header: its annotation reads the chunk at offset 0 as
	// data, as the stream then did (see snap below).
	preHeader bool
}

// goldenCases pin the format. Changing any of their bytes is a format
// change and needs a new Version.
var goldenCases = []goldenCase{
	{name: "heartbeat", note: "MsgHeartbeat: leader 1 to 2, term 5, commit 42, heartbeat round 9",
		msg: &raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 5, Commit: 42, Index: 9}},
	{name: "heartbeat_resp", note: "MsgHeartbeatResp: 2 to leader 1, term 5, echoing round 9",
		msg: &raft.Message{Type: raft.MsgHeartbeatResp, From: 2, To: 1, Term: 5, Index: 9}},
	{name: "heartbeat_large", note: "MsgHeartbeat with multi-byte varints: a 64-bit cluster ID, large IDs, term, commit and round",
		cluster: 0x9e3779b97f4a7c15,
		msg:     &raft.Message{Type: raft.MsgHeartbeat, From: 300, To: 70000, Term: 1 << 32, Commit: 1 << 40, Index: 1 << 20}},
	{name: "read_index", note: "MsgReadIndex: follower 2 asks leader 1 for a read index for its request #7",
		msg: &raft.Message{Type: raft.MsgReadIndex, From: 2, To: 1, Term: 5, Index: 7}},
	{name: "read_index_resp", note: "MsgReadIndexResp: leader 1 answers request #7 of 2 with read index 42",
		msg: &raft.Message{Type: raft.MsgReadIndexResp, From: 1, To: 2, Term: 5, Index: 7, Commit: 42}},
	{name: "append_empty", note: "MsgApp without entries (a probe or commit update): prev entry 42 of term 5, commit 42",
		msg: &raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 5, Index: 42, LogTerm: 5, Commit: 42}},
	{name: "append_two", note: "MsgApp with two entries after entry 42 of term 4: a no-op of term 5 and a normal entry of term 5",
		msg: &raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 5, Index: 42, LogTerm: 4, Commit: 40,
			Entries: []raft.Entry{
				{Term: 5, Index: 43, Type: raft.EntryNoop},
				{Term: 5, Index: 44, Type: raft.EntryNormal, Data: []byte("x=1")},
			}}},
	{name: "append_resp", note: "MsgAppResp accepting: follower 2 now matches up to index 44",
		msg: &raft.Message{Type: raft.MsgAppResp, From: 2, To: 1, Term: 5, Index: 44}},
	{name: "append_resp_reject", note: "MsgAppResp rejecting index 42 with conflict hint: index 30 of term 3",
		msg: &raft.Message{Type: raft.MsgAppResp, From: 2, To: 1, Term: 5, Index: 42, Reject: true, Hint: 30, LogTerm: 3}},
	{name: "vote", note: "MsgVote: candidate 3 asks 1 for term 6; its last entry is 44 of term 5",
		msg: &raft.Message{Type: raft.MsgVote, From: 3, To: 1, Term: 6, Index: 44, LogTerm: 5}},
	{name: "prevote", note: "MsgPreVote: 3 asks 1 whether it would win term 6; its last entry is 44 of term 5",
		msg: &raft.Message{Type: raft.MsgPreVote, From: 3, To: 1, Term: 6, Index: 44, LogTerm: 5}},
	{name: "vote_resp", note: "MsgVoteResp: 1 grants its vote to 3 for term 6",
		msg: &raft.Message{Type: raft.MsgVoteResp, From: 1, To: 3, Term: 6}},
	{name: "prevote_resp_reject", note: "MsgPreVoteResp: 1 refuses 3's pre-vote for term 6; its commit index is 40, an entry of term 5",
		msg: &raft.Message{Type: raft.MsgPreVoteResp, From: 1, To: 3, Term: 6, Reject: true, Commit: 40, LogTerm: 5}},
	{name: "prop", note: "MsgProp: follower 2 forwards proposal #7 (one normal entry, no index or term yet) to leader 1",
		msg: &raft.Message{Type: raft.MsgProp, From: 2, To: 1, Term: 5, Index: 7,
			Entries: []raft.Entry{{Type: raft.EntryNormal, Data: []byte("y=2")}}}},
	{name: "prop_resp", note: "MsgPropResp: leader 1 refuses proposal #7 of 2 with RejectBusy (2)",
		msg: &raft.Message{Type: raft.MsgPropResp, From: 1, To: 2, Term: 5, Index: 7, Reject: true, Hint: raft.Index(raft.RejectBusy)}},
	// snap predates the snapshot stream header: as a frame it is still
	// valid and pinned, but its offset-0 chunk is not a header, so the raft
	// core now refuses it. Its note and annotation describe the stream as
	// it was then (snap_header and snap_data show the stream as it is).
	{name: "snap", note: "MsgSnap: leader 1 sends 2 snapshot 44 of term 5 (data \"x=1\") in one chunk: offset 0 of a 7-byte stream, the data then its CRC-32C",
		msg: &raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 5, Index: 44, LogTerm: 5, Commit: 0, Hint: 7,
			Entries: []raft.Entry{{Data: snapStream("x=1")}}}, preHeader: true},
	{name: "snap_resp_reject", note: "MsgSnapResp: 2 refuses a chunk of snapshot 44 of term 5 (a gap) and holds the first 1024 stream bytes",
		msg: &raft.Message{Type: raft.MsgSnapResp, From: 2, To: 1, Term: 5, Index: 44, LogTerm: 5, Commit: 1024, Reject: true}},
	{name: "hardstate", note: "hard-state record: term 5, voted for 1, commit 42",
		hs: &raft.HardState{Term: 5, Vote: 1, Commit: 42}},
	{name: "entry", note: "entry record: index 44, term 5, normal, data \"x=1\"",
		ent: &raft.Entry{Index: 44, Term: 5, Type: raft.EntryNormal, Data: []byte("x=1")}},

	// Added with membership changes and leadership transfer, without a
	// version change (docs/WIRE.md, format history).
	{name: "timeout_now", note: "MsgTimeoutNow: leader 1 tells 3, the target of a leadership transfer, to campaign at once (term 5)",
		msg: &raft.Message{Type: raft.MsgTimeoutNow, From: 1, To: 3, Term: 5}},
	{name: "vote_transfer", note: "MsgVote with the Reject bit (leadership transfer): candidate 3 asks 1 for term 6, to be answered despite 1's leader lease; its last entry is 44 of term 5",
		msg: &raft.Message{Type: raft.MsgVote, From: 3, To: 1, Term: 6, Index: 44, LogTerm: 5, Reject: true}},
	{name: "append_conf", note: "MsgApp with one EntryConfChange (index 45, term 5) after entry 44 of term 5: the joint configuration voters {1,2,3}, outgoing voters {1,2,4}, learners {5}",
		msg: &raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 5, Index: 44, LogTerm: 5, Commit: 44,
			Entries: []raft.Entry{{Term: 5, Index: 45, Type: raft.EntryConfChange, Data: raft.AppendConfState(nil, jointConf)}}}},
	{name: "snap_header", note: "MsgSnap: leader 1 starts sending 2 snapshot 44 of term 5 (configuration voters {1,2,3}, data \"x=1\"): the stream header, alone at offset 0 of a 19-byte stream",
		msg: &raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 5, Index: 44, LogTerm: 5, Commit: 0, Hint: 19,
			Entries: []raft.Entry{{Data: snapHeader(snapConf)}}}},
	{name: "snap_data", note: "MsgSnap: the rest of that stream, a mid-stream chunk at offset 12 (after the 12-byte header): the data \"x=1\" then its CRC-32C",
		msg: &raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 5, Index: 44, LogTerm: 5, Commit: 12, Hint: 19,
			Entries: []raft.Entry{{Data: snapStream("x=1")}}}},
}

// jointConf is the configuration of the append_conf vector: voter 4
// being replaced by 3, with a learner.
var jointConf = raft.ConfState{Voters: []raft.NodeID{1, 2, 3}, VotersOutgoing: []raft.NodeID{1, 2, 4}, Learners: []raft.NodeID{5}}

// snapConf is the configuration of the snapshot of snap_header and
// snap_data.
var snapConf = raft.ConfState{Voters: []raft.NodeID{1, 2, 3}}

// snapHeader returns the snapshot stream header for cs, written from
// docs/WIRE.md: the length of the encoded configuration, 2 bytes little
// endian, then the configuration (nothing for an empty one), then the
// CRC-32C of those bytes, 4 bytes little endian.
func snapHeader(cs raft.ConfState) []byte {
	var conf []byte
	if !cs.IsEmpty() {
		conf = raft.AppendConfState(nil, cs)
	}
	h := append(binary.LittleEndian.AppendUint16(nil, uint16(len(conf))), conf...)
	return binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli)))
}

// snapStream returns the data and its CRC-32C, little-endian: the part of
// a snapshot stream after the header (before the header existed, the whole
// stream).
func snapStream(data string) []byte {
	sum := crc32.Checksum([]byte(data), crc32.MakeTable(crc32.Castagnoli))
	return binary.LittleEndian.AppendUint32([]byte(data), sum)
}

// clusterOf returns the cluster of c (testCluster unless set).
func (c goldenCase) clusterOf() wire.ClusterID {
	if c.cluster == 0 {
		return testCluster
	}
	return c.cluster
}

// encode returns the case's encoding.
func (c goldenCase) encode(t testing.TB) []byte {
	switch {
	case c.hs != nil:
		return wire.AppendHardState(nil, *c.hs)
	case c.ent != nil:
		return wire.AppendEntry(nil, c.ent)
	}
	return mustEncode(t, c.clusterOf(), c.msg)
}

// goldenFrames returns the encodings of the frame cases.
func goldenFrames(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, c := range goldenCases {
		if c.msg != nil {
			out[c.name] = c.encode(t)
		}
	}
	return out
}

func goldenPath(name string) string { return filepath.Join("testdata", "golden", name+".hex") }

// TestGolden compares every encoding with its pinned hex file, checks that
// the file decodes back to the case, and checks the annotation (written
// from the test's own statement of the layout) consumes every byte.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			got := c.encode(t)
			text, err := annotate(c, got)
			if err != nil {
				t.Fatalf("annotate: %v", err)
			}
			if *update {
				if err := os.WriteFile(goldenPath(c.name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readHex(t, goldenPath(c.name))
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding changed (format change? run with -update only if intended)\n got %x\nwant %x", got, want)
			}
			checkGoldenDecode(t, c, want)
		})
	}
	if *update {
		writeSeedCorpus(t)
	}
}

// checkGoldenDecode decodes want and compares it with the case.
func checkGoldenDecode(t *testing.T, c goldenCase, want []byte) {
	switch {
	case c.hs != nil:
		var hs raft.HardState
		if err := wire.DecodeHardState(want, &hs); err != nil || hs != *c.hs {
			t.Fatalf("DecodeHardState = %+v, %v; want %+v", hs, err, *c.hs)
		}
	case c.ent != nil:
		var e raft.Entry
		n, err := wire.DecodeEntry(want, &e)
		if err != nil || n != len(want) || !reflect.DeepEqual(e, *c.ent) {
			t.Fatalf("DecodeEntry = %+v, %d, %v; want %+v", e, n, err, *c.ent)
		}
	default:
		var m raft.Message
		if err := wire.DecodeMessage(want, c.clusterOf(), &m, wire.DefaultLimits); err != nil {
			t.Fatalf("DecodeMessage: %v", err)
		}
		if got, exp := normalize(&m), normalize(c.msg); !reflect.DeepEqual(got, exp) {
			t.Fatalf("decoded %+v, want %+v", got, exp)
		}
	}
}

// readHex reads a golden file: hex digits, with whitespace and '#'
// comments ignored.
func readHex(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// annotator renders bytes as golden-file lines: a byte group, then a
// comment saying what it is.
type annotator struct {
	b         []byte
	off       int
	preHeader bool // the case's preHeader
	out       strings.Builder
	err       error
}

// emit writes the next n bytes with a comment.
func (a *annotator) emit(n int, what string) {
	if a.err != nil {
		return
	}
	if n > len(a.b)-a.off {
		a.err = fmt.Errorf("%s: need %d bytes at offset %d, have %d", what, n, a.off, len(a.b)-a.off)
		return
	}
	group := hex.EncodeToString(a.b[a.off : a.off+n])
	var spaced []string
	for i := 0; i < len(group); i += 2 {
		spaced = append(spaced, group[i:i+2])
	}
	fmt.Fprintf(&a.out, "%-29s # %s\n", strings.Join(spaced, " "), what)
	a.off += n
}

// uvarint emits one varint and returns its value.
func (a *annotator) uvarint(name string) uint64 {
	if a.err != nil {
		return 0
	}
	v, n := binary.Uvarint(a.b[a.off:])
	if n <= 0 {
		a.err = fmt.Errorf("%s: bad varint at offset %d", name, a.off)
		return 0
	}
	a.emit(n, name+" = "+strconv.FormatUint(v, 10))
	return v
}

// body emits an entry body whose term is coded against base.
func (a *annotator) body(base uint64, termName string) uint64 {
	d := a.uvarint(termName)
	if a.err != nil || a.off >= len(a.b) {
		a.err = fmt.Errorf("entry truncated at %d", a.off)
		return 0
	}
	typ := raft.EntryType(a.b[a.off])
	a.emit(1, "Entry.Type = "+strconv.Itoa(int(typ)))
	n := a.uvarint("len(Data)")
	if n > 0 && a.err == nil && int(n) <= len(a.b)-a.off {
		if typ == raft.EntryConfChange {
			a.conf(int(n), "Data: ")
		} else {
			a.emit(int(n), "Data = "+strconv.Quote(string(a.b[a.off:a.off+int(n)])))
		}
	}
	return base + d
}

// conf emits the n bytes of an encoded configuration (for Voters,
// VotersOutgoing and Learners in turn, a count then the IDs), each line
// prefixed with prefix. It fails unless the n bytes are exactly one valid
// configuration.
func (a *annotator) conf(n int, prefix string) {
	start, end := a.off, a.off+n
	for _, list := range []string{"Voters", "VotersOutgoing", "Learners"} {
		k := a.uvarint(prefix + "len(" + list + ")")
		for i := uint64(0); i < k && a.err == nil; i++ {
			a.uvarint(prefix + list + "[" + strconv.FormatUint(i, 10) + "]")
		}
	}
	if a.err != nil {
		return
	}
	if a.off != end {
		a.err = fmt.Errorf("configuration of %d bytes at %d: %d bytes used", n, start, a.off-start)
		return
	}
	if _, err := raft.DecodeConfState(a.b[start:end]); err != nil {
		a.err = fmt.Errorf("configuration at %d: %v", start, err)
	}
}

// annotate renders the encoding of c, walking it with the layout stated
// in this test file (shapes); it fails if the bytes do not follow it.
func annotate(c goldenCase, b []byte) (string, error) {
	a := &annotator{b: b, preHeader: c.preHeader}
	fmt.Fprintf(&a.out, "# %s\n# %d bytes. Regenerate: go test ./wire -run TestGolden -update\n", c.note, len(b))
	switch {
	case c.hs != nil:
		a.uvarint("HardState.Term")
		a.uvarint("HardState.Vote")
		a.uvarint("HardState.Commit")
	case c.ent != nil:
		a.uvarint("Entry.Index")
		a.body(0, "Entry.Term")
	default:
		a.frame()
	}
	if a.err == nil && a.off != len(b) {
		a.err = fmt.Errorf("%d bytes left over", len(b)-a.off)
	}
	return a.out.String(), a.err
}

// frame emits a whole message frame.
func (a *annotator) frame() {
	a.emit(1, "version = "+strconv.Itoa(int(a.b[0])))
	a.uvarint("cluster ID")
	if a.err != nil || a.off >= len(a.b) {
		a.err = fmt.Errorf("no type byte")
		return
	}
	tb := a.b[a.off]
	typ := raft.MessageType(tb & 0x7f)
	sh := shapes[typ]
	what := "type = " + strconv.Itoa(int(typ)) + " (" + typ.String() + ")"
	switch {
	case typ == raft.MsgVote:
		// Named only when set, so that vote.hex, pinned before MsgVote
		// carried the bit, keeps its annotation.
		if tb&0x80 != 0 {
			what += ", Reject = true (leadership transfer)"
		}
	case sh.reject:
		what += ", Reject = " + strconv.FormatBool(tb&0x80 != 0)
	}
	a.emit(1, what)
	vals := map[string]uint64{}
	for _, f := range sh.fields {
		vals[f] = a.uvarint(f)
	}
	switch sh.entries {
	case "log":
		n := a.uvarint("entry count")
		term := vals["LogTerm"]
		for i := uint64(0); i < n && a.err == nil; i++ {
			fmt.Fprintf(&a.out, "                              # -- entry %d: Index = %d (implied)\n", i+1, vals["Index"]+1+i)
			term = a.body(term, "Term - previous term")
		}
	case "records":
		n := a.uvarint("entry count")
		for i := uint64(0); i < n && a.err == nil; i++ {
			fmt.Fprintf(&a.out, "                              # -- entry record %d\n", i+1)
			a.uvarint("Entry.Index")
			a.body(0, "Entry.Term")
		}
	case "chunk":
		a.chunk(vals["Commit"], vals["Hint"])
	}
	if a.err == nil && len(a.b)-a.off == 4 {
		sum := binary.LittleEndian.Uint32(a.b[a.off:])
		a.emit(4, fmt.Sprintf("CRC-32C = 0x%08x, little-endian", sum))
	}
}

// chunk emits the snapshot chunk of a MsgSnap at stream offset off of a
// stream of size bytes, telling the snapshot's data from the CRC-32C that
// ends the stream.
func (a *annotator) chunk(off, size uint64) {
	n := a.uvarint("len(chunk)")
	if a.err != nil || n > uint64(len(a.b)-a.off) || size < 4 || off > size || n > size-off {
		a.err = fmt.Errorf("chunk of %d bytes at %d does not fit the frame or a %d-byte stream", n, off, size)
		return
	}
	if off == 0 && !a.preHeader {
		a.snapHeader(n, size)
		return
	}
	data := min(n, max(size-4, off)-off) // chunk bytes before the trailer
	switch {
	case data > 0 && a.preHeader:
		a.emit(int(data), fmt.Sprintf("chunk: data bytes %d..%d = %q", off, off+data-1, a.b[a.off:a.off+int(data)]))
	case data > 0:
		a.emit(int(data), fmt.Sprintf("chunk: stream bytes %d..%d = snapshot data %q", off, off+data-1, a.b[a.off:a.off+int(data)]))
	}
	if n > data {
		a.emit(int(n-data), fmt.Sprintf("chunk: stream bytes %d..%d = CRC-32C of the data, little-endian", off+data, off+n-1))
	}
}

// snapHeader emits the chunk at offset 0 of a snapshot stream of size
// bytes, n bytes long, which must be exactly the stream header: the
// configuration's length (2 bytes, little endian), the configuration, and
// the CRC-32C of both.
func (a *annotator) snapHeader(n, size uint64) {
	if n < 6 {
		a.err = fmt.Errorf("header chunk of %d bytes", n)
		return
	}
	l := uint64(binary.LittleEndian.Uint16(a.b[a.off:]))
	if n != 2+l+4 || size < n+4 {
		a.err = fmt.Errorf("header chunk of %d bytes announces a %d-byte configuration in a %d-byte stream", n, l, size)
		return
	}
	a.emit(2, fmt.Sprintf("chunk: stream bytes 0..1 = header: len(configuration) = %d, little-endian", l))
	if l > 0 {
		a.conf(int(l), "header: configuration: ")
	}
	a.emit(4, fmt.Sprintf("chunk: stream bytes %d..%d = header: CRC-32C of the bytes before, little-endian", 2+l, 5+l))
}

// writeSeedCorpus writes the FuzzDecode seed corpus: every golden
// encoding, and mutations of the frames that reach the parser's error
// paths behind a valid checksum.
func writeSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	write := func(name string, b []byte) {
		text := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range goldenCases {
		b := c.encode(t)
		write("golden-"+c.name, b)
		if c.msg == nil {
			continue
		}
		clone := func() []byte { return append([]byte(nil), b...) }
		write("mut-"+c.name+"-truncated", fixCRC(append(clone()[:len(b)-5], 0, 0, 0, 0)))
		write("mut-"+c.name+"-trailing", fixCRC(append(clone()[:len(b)-4], 0, 0, 0, 0, 0)))
		write("mut-"+c.name+"-badcrc", append(clone()[:len(b)-1], b[len(b)-1]^1))
		flagged := clone()
		flagged[2] ^= 0x80 // toggle Reject (invalid for types without it)
		write("mut-"+c.name+"-reject", fixCRC(flagged))
	}
	frames := goldenFrames(t)
	app := frames["append_two"]
	mut := func(name string, f func(b []byte) []byte) {
		write("mut-"+name, fixCRC(f(append([]byte(nil), app...))))
	}
	mut("append-huge-count", func(b []byte) []byte { b[9] = 0x7f; return b })
	mut("append-bad-entry-type", func(b []byte) []byte { b[11] = 9; return b })
	mut("append-long-data", func(b []byte) []byte { b[15] = 0x40; return b })
	mut("append-nonminimal-cluster", func(b []byte) []byte {
		return append([]byte{1, 0x87, 0x00}, b[2:]...)
	})
	mut("version-2", func(b []byte) []byte { b[0] = 2; return b })
	mut("type-unknown", func(b []byte) []byte { b[2] = byte(unknownType()); return b })
	mut("term-overflow", func(b []byte) []byte {
		return append(append(b[:3:3], 1, 2, 5, 42), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 40, 1, 1, 0, 0, 0, 0, 0, 0)
	})
	conf := frames["append_conf"]
	write("mut-append_conf-bad-entry-type", fixCRC(func(b []byte) []byte {
		b[11] = byte(unknownEntryType())
		return b
	}(append([]byte(nil), conf...))))
	// A zero voter ID: the codec carries the Data, the raft core refuses it.
	write("mut-append_conf-invalid-conf", fixCRC(func(b []byte) []byte {
		b[14] = 0
		return b
	}(append([]byte(nil), conf...))))
	write("mut-timeout_now-type-16", fixCRC(func(b []byte) []byte {
		b[2] = 16
		return b
	}(append([]byte(nil), frames["timeout_now"]...))))
	snap := frames["snap"]
	at := snapChunkLenOffset(snap)
	snapMut := func(name string, f func(head, tail []byte) []byte) {
		head := append([]byte(nil), snap[:at]...)
		write("mut-"+name, fixCRC(f(head, snap[at+1:])))
	}
	snapMut("snap-long-chunk", func(h, t []byte) []byte { return append(append(h, snap[at]+1), t...) })
	snapMut("snap-huge-chunk", func(h, t []byte) []byte {
		return append(append(h, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), t...)
	})
	snapMut("snap-no-chunk", func(h, _ []byte) []byte { return append(h, 0, 0, 0, 0) })
}

// snapChunkLenOffset returns the offset of the chunk length in a MsgSnap
// frame whose chunk is shorter than 128 bytes (a one-byte length).
func snapChunkLenOffset(frame []byte) int {
	var m raft.Message
	if err := wire.DecodeMessage(frame, testCluster, &m, wire.DefaultLimits); err != nil || m.Type != raft.MsgSnap || len(m.Entries[0].Data) >= 128 {
		panic("not a MsgSnap frame with a short chunk")
	}
	return len(frame) - 4 - len(m.Entries[0].Data) - 1 // 4: the checksum
}

package wire_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// TestSizeTargets checks the acceptance sizes stated in docs/WIRE.md:
// with cluster ID, node IDs, terms and indexes below 128 (one-byte
// varints), a heartbeat, an empty MsgApp and a MsgVote fit in 16 bytes.
func TestSizeTargets(t *testing.T) {
	small := []struct {
		name string
		msg  raft.Message
		max  int
	}{
		{"heartbeat", raft.Message{Type: raft.MsgHeartbeat, From: 127, To: 126, Term: 127, Commit: 127}, 16},
		{"empty append", raft.Message{Type: raft.MsgApp, From: 127, To: 126, Term: 127, Index: 127, LogTerm: 127, Commit: 127}, 16},
		{"vote", raft.Message{Type: raft.MsgVote, From: 127, To: 126, Term: 127, Index: 127, LogTerm: 127}, 16},
		{"prevote", raft.Message{Type: raft.MsgPreVote, From: 127, To: 126, Term: 127, Index: 127, LogTerm: 127}, 16},
	}
	for _, c := range small {
		n := len(mustEncode(t, 127, &c.msg))
		t.Logf("%s: %d bytes", c.name, n)
		if n > c.max {
			t.Errorf("%s: %d bytes, want <= %d", c.name, n, c.max)
		}
	}
}

// TestEntryOverhead checks the per-entry cost in a MsgApp beyond the
// payload: 3 bytes for payloads under 128 bytes, 4 under 16384, whatever
// the index, as long as the term rises by less than 128 from one entry to
// the next (it usually does not rise at all).
func TestEntryOverhead(t *testing.T) {
	for _, idx := range []raft.Index{1, 1<<21 - 100, 1 << 40} {
		for _, size := range []int{0, 1, 127, 128, 1000} {
			want := 3
			if size >= 128 {
				want = 4
			}
			if got := entryOverhead(t, idx, size); got != want {
				t.Errorf("index %d, payload %d: overhead %d bytes, want %d", idx, size, got, want)
			}
		}
	}
}

// entryOverhead measures the bytes one entry with a size-byte payload adds
// to a MsgApp after index idx (the entry count stays one byte).
func entryOverhead(t *testing.T, idx raft.Index, size int) int {
	base := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 9, Index: idx, LogTerm: 9, Commit: idx}
	with := base
	with.Entries = []raft.Entry{{Term: 9, Index: idx + 1, Data: make([]byte, size)}}
	lim := wire.Limits{MaxFrameBytes: 1 << 20}
	a, err := lim.AppendMessage(nil, testCluster, &base)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lim.AppendMessage(nil, testCluster, &with)
	if err != nil {
		t.Fatal(err)
	}
	return len(b) - len(a) - size
}

// TestSnapFrameSize checks that a MsgSnap fits one default frame: the
// raft core sends chunks of up to MaxMsgBytes stream bytes, so with the
// default (raft.DefaultMaxMsgBytes) a chunk plus the frame's fields must
// stay within wire.DefaultMaxFrameBytes, here for a typical transfer and
// for the worst case the core produces (a 64-bit cluster ID, every field
// near 2^40) — and even with every field at 2^64-1.
func TestSnapFrameSize(t *testing.T) {
	const near40 = 1<<40 + 12345 // a 6-byte varint, like every value up to 2^42-1
	chunk := make([]byte, raft.DefaultMaxMsgBytes)
	cases := []struct {
		name    string
		cluster wire.ClusterID
		msg     raft.Message
		size    int // exact frame size
	}{
		{"typical: 1024-byte chunk at offset 500000 of snapshot 10000", testCluster,
			raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 5, Index: 10000, LogTerm: 5,
				Commit: 500000, Hint: 1000004, Entries: []raft.Entry{{Data: chunk[:1024]}}}, 1045},
		{"worst case: fields near 2^40", 0x9e3779b97f4a7c15,
			raft.Message{Type: raft.MsgSnap, From: near40, To: near40 + 1, Term: near40, Index: near40, LogTerm: near40,
				Commit: near40, Hint: near40 + raft.DefaultMaxMsgBytes, Entries: []raft.Entry{{Data: chunk}}}, 1084},
		{"theoretical: fields at 2^64-1", math.MaxUint64,
			raft.Message{Type: raft.MsgSnap, From: math.MaxUint64, To: math.MaxUint64, Term: math.MaxUint64,
				Index: math.MaxUint64, LogTerm: math.MaxUint64, Commit: math.MaxUint64, Hint: math.MaxUint64,
				Entries: []raft.Entry{{Data: chunk}}}, 1112},
	}
	for _, c := range cases {
		frame, err := wire.AppendMessage(nil, c.cluster, &c.msg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s: %d bytes (%d beyond the chunk)", c.name, len(frame), len(frame)-len(c.msg.Entries[0].Data))
		if len(frame) > wire.DefaultMaxFrameBytes || len(frame) != c.size {
			t.Errorf("%s: %d bytes, want %d (<= %d)", c.name, len(frame), c.size, wire.DefaultMaxFrameBytes)
		}
	}
}

// TestConfFrameSize measures configurations (docs/WIRE.md §4.5, §9) at
// the largest size raft.MaxMembers allows: 64 voters listed in both voter
// lists of a joint configuration, with IDs of a given varint length. It
// pins the encoding's size and the frames carrying it, as the Data of an
// EntryConfChange in a MsgApp and as the snapshot stream header alone in
// a MsgSnap (both with one-byte fields), and shows that the largest IDs
// no longer fit a default frame.
func TestConfFrameSize(t *testing.T) {
	cases := []struct {
		bits              uint // IDs are 2^bits + i
		conf, app, header int  // exact sizes; 0: the frame exceeds the default limit
	}{
		{13, 259, 277, 278},    // 2-byte IDs
		{55, 1027, 1045, 1046}, // 8-byte IDs
		{62, 1155, 1173, 1174}, // 9-byte IDs
		{63, 1283, 0, 0},       // 10-byte IDs
	}
	for _, c := range cases {
		var cs raft.ConfState
		for i := range raft.MaxMembers {
			id := raft.NodeID(1)<<c.bits + raft.NodeID(i)
			cs.Voters = append(cs.Voters, id)
			cs.VotersOutgoing = append(cs.VotersOutgoing, id)
		}
		conf := raft.AppendConfState(nil, cs)
		if _, err := raft.DecodeConfState(conf); err != nil || len(conf) != c.conf {
			t.Fatalf("IDs near 2^%d: configuration of %d bytes (%v), want %d and valid", c.bits, len(conf), err, c.conf)
		}
		app := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 5, Index: 44, LogTerm: 5, Commit: 44,
			Entries: []raft.Entry{{Term: 5, Index: 45, Type: raft.EntryConfChange, Data: conf}}}
		hdr := append(binary.LittleEndian.AppendUint16(nil, uint16(len(conf))), conf...)
		snap := raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 5, Index: 44, LogTerm: 5,
			Hint: raft.Index(len(hdr) + 4), Entries: []raft.Entry{{Data: hdr}}}
		for _, f := range []struct {
			name string
			msg  *raft.Message
			want int
		}{{"MsgApp", &app, c.app}, {"MsgSnap header", &snap, c.header}} {
			frame, err := wire.AppendMessage(nil, testCluster, f.msg)
			t.Logf("IDs near 2^%d: %d-byte configuration, %s frame %d bytes, %v", c.bits, len(conf), f.name, len(frame), err)
			switch {
			case f.want == 0 && !errors.Is(err, wire.ErrLimit):
				t.Errorf("IDs near 2^%d: %s: %v, want ErrLimit", c.bits, f.name, err)
			case f.want != 0 && (err != nil || len(frame) != f.want):
				t.Errorf("IDs near 2^%d: %s: %d bytes, %v; want %d", c.bits, f.name, len(frame), err, f.want)
			}
		}
	}
}

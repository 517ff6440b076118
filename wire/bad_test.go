package wire_test

import (
	"errors"
	"math"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// decode decodes frame for testCluster with the default limits.
func decode(frame []byte) error {
	var m raft.Message
	return wire.DecodeMessage(frame, testCluster, &m, wire.DefaultLimits)
}

// expect fails t unless err is a typed decode error wrapping want.
func expect(t *testing.T, err, want error) {
	t.Helper()
	checkTyped(t, err, true)
	if !errors.Is(err, want) {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// TestTruncation cuts every golden encoding at every offset. Frames must
// fail with a typed error (mostly ErrChecksum: a frame has no length
// field, so a cut frame is a corrupt one); with the checksum recomputed
// the parser must say ErrTruncated; records, which have no checksum, must
// say ErrTruncated directly.
func TestTruncation(t *testing.T) {
	for _, c := range goldenCases {
		full := c.encode(t)
		for k := range len(full) {
			cut := append([]byte(nil), full[:k]...)
			switch {
			case c.hs != nil:
				var hs raft.HardState
				expect(t, wire.DecodeHardState(cut, &hs), wire.ErrTruncated)
			case c.ent != nil:
				var e raft.Entry
				_, err := wire.DecodeEntry(cut, &e)
				expect(t, err, wire.ErrTruncated)
			default:
				var m raft.Message
				checkTyped(t, wire.DecodeMessage(cut, c.clusterOf(), &m, wire.DefaultLimits), true)
				if k >= 1 && k+4 < len(full) { // cut the body, keep a valid checksum
					body := append(append([]byte(nil), full[:k]...), 0, 0, 0, 0)
					err := wire.DecodeMessage(fixCRC(body), c.clusterOf(), &m, wire.DefaultLimits)
					expect(t, err, wire.ErrTruncated)
				}
			}
		}
	}
}

// TestBitFlips flips every bit of every golden frame: the version byte
// gives ErrVersion, any other bit ErrChecksum (CRC-32C catches every
// single-bit error).
func TestBitFlips(t *testing.T) {
	for name, frame := range goldenFrames(t) {
		for i := range len(frame) * 8 {
			b := append([]byte(nil), frame...)
			b[i/8] ^= 1 << (i % 8)
			var m raft.Message
			err := wire.DecodeMessage(b, clusterOfName(name), &m, wire.DefaultLimits)
			want := wire.ErrChecksum
			if i < 8 {
				want = wire.ErrVersion
			}
			expect(t, err, want)
		}
	}
}

// clusterOfName returns the cluster of the golden case called name.
func clusterOfName(name string) wire.ClusterID {
	for _, c := range goldenCases {
		if c.name == name {
			return c.clusterOf()
		}
	}
	panic("no golden case " + name)
}

func TestWrongCluster(t *testing.T) {
	var m raft.Message
	err := wire.DecodeMessage(goldenFrames(t)["heartbeat"], testCluster+1, &m, wire.DefaultLimits)
	expect(t, err, wire.ErrCluster)
}

func TestVersion(t *testing.T) {
	b := goldenFrames(t)["heartbeat"]
	b[0] = 2
	expect(t, decode(fixCRC(b)), wire.ErrVersion)
	expect(t, decode(nil), wire.ErrTruncated)
}

// TestFrameLimit checks MaxFrameBytes on both sides.
func TestFrameLimit(t *testing.T) {
	expect(t, decode(make([]byte, wire.DefaultMaxFrameBytes+1)), wire.ErrLimit)
	hb := goldenFrames(t)["heartbeat"]
	var m raft.Message
	expect(t, wire.DecodeMessage(hb, testCluster, &m, wire.Limits{MaxFrameBytes: len(hb) - 1}), wire.ErrLimit)
	if err := wire.DecodeMessage(hb, testCluster, &m, wire.Limits{MaxFrameBytes: len(hb)}); err != nil {
		t.Fatalf("frame of exactly MaxFrameBytes: %v", err)
	}

	big := raft.Message{Type: raft.MsgApp, Index: 1, Entries: []raft.Entry{{Index: 2, Data: make([]byte, 1190)}}}
	buf := []byte("prefix")
	out, err := wire.AppendMessage(buf, testCluster, &big)
	checkTyped(t, err, false)
	if !errors.Is(err, wire.ErrLimit) || string(out) != "prefix" {
		t.Fatalf("AppendMessage = %q, %v; want the buffer unchanged and ErrLimit", out, err)
	}
	big.Entries[0].Data = big.Entries[0].Data[:1170]
	frame, err := wire.AppendMessage(nil, testCluster, &big)
	if err != nil || len(frame) > wire.DefaultMaxFrameBytes {
		t.Fatalf("frame of %d bytes: %v", len(frame), err)
	}
}

// TestEntryLimit checks MaxEntries on both sides, and that an untrusted
// count cannot make the decoder allocate.
func TestEntryLimit(t *testing.T) {
	m := raft.Message{Type: raft.MsgApp, Index: 10}
	for i := range wire.DefaultMaxEntries + 1 {
		m.Entries = append(m.Entries, raft.Entry{Index: raft.Index(11 + i)})
	}
	_, err := wire.AppendMessage(nil, testCluster, &m)
	checkTyped(t, err, false)
	if !errors.Is(err, wire.ErrLimit) {
		t.Fatalf("encoding %d entries: %v", len(m.Entries), err)
	}
	m.Entries = m.Entries[:wire.DefaultMaxEntries]
	frame := mustEncode(t, testCluster, &m)
	var got raft.Message
	expect(t, wire.DecodeMessage(frame, testCluster, &got, wire.Limits{MaxEntries: 5}), wire.ErrLimit)
	if cap(got.Entries) != 0 {
		t.Fatalf("decoder allocated %d entries before failing", cap(got.Entries))
	}

	// A count within MaxEntries but beyond what the bytes can hold.
	b := goldenFrames(t)["append_two"]
	b[9] = 60 // entry count
	expect(t, decode(fixCRC(b)), wire.ErrTruncated)
	allocs := testing.AllocsPerRun(100, func() { _ = decode(b) })
	if allocs > 1 { // the *DecodeError
		t.Fatalf("rejecting a large count allocated %.0f times", allocs)
	}
}

// TestMalformed checks inputs that carry a valid checksum but can never
// be a canonical frame.
func TestMalformed(t *testing.T) {
	frames := goldenFrames(t)
	edit := func(name string, f func(b []byte) []byte) []byte {
		return fixCRC(f(append([]byte(nil), frames[name]...)))
	}
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"non-minimal cluster varint", edit("heartbeat", func(b []byte) []byte {
			return append([]byte{1, 0x87, 0x00}, b[2:]...)
		}), wire.ErrMalformed},
		{"varint over 64 bits", edit("heartbeat", func(b []byte) []byte {
			return append(append(b[:3:3], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), b[4:]...)
		}), wire.ErrMalformed},
		{"varint of 11 bytes", edit("heartbeat", func(b []byte) []byte {
			return append(append(b[:3:3], 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), b[4:]...)
		}), wire.ErrMalformed},
		{"trailing byte", edit("heartbeat", func(b []byte) []byte {
			return append(b[:len(b)-4], 0, 0, 0, 0, 0)
		}), wire.ErrMalformed},
		{"reject flag on heartbeat", edit("heartbeat", func(b []byte) []byte { b[2] |= 0x80; return b }), wire.ErrMalformed},
		{"type 0", edit("heartbeat", func(b []byte) []byte { b[2] = 0; return b }), wire.ErrType},
		{"type 13", edit("heartbeat", func(b []byte) []byte { b[2] = 13; return b }), wire.ErrType},
		{"type 0x8d", edit("heartbeat", func(b []byte) []byte { b[2] = 0x8d; return b }), wire.ErrType},
		{"entry type 2", edit("append_two", func(b []byte) []byte { b[11] = 2; return b }), wire.ErrMalformed},
		{"entry data past end", edit("append_two", func(b []byte) []byte { b[15] = 4; return b }), wire.ErrTruncated},
		{"term overflow", edit("append_two", func(b []byte) []byte {
			return append(append(b[:7:7], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), b[8:]...)
		}), wire.ErrMalformed},
		{"index overflow", edit("append_two", func(b []byte) []byte {
			return append(append(b[:6:6], 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), b[7:]...)
		}), wire.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expect(t, decode(c.frame), c.want) })
	}
}

// TestEncodeErrors checks that invalid messages are refused, leaving the
// buffer's length unchanged.
func TestEncodeErrors(t *testing.T) {
	app := func(ents ...raft.Entry) *raft.Message {
		return &raft.Message{Type: raft.MsgApp, Index: 10, LogTerm: 3, Entries: ents}
	}
	cases := []struct {
		name string
		msg  *raft.Message
		want error
	}{
		{"type 0", &raft.Message{}, wire.ErrType},
		{"type 13", &raft.Message{Type: 13}, wire.ErrType},
		{"gap in indexes", app(raft.Entry{Index: 11, Term: 3}, raft.Entry{Index: 13, Term: 3}), wire.ErrMalformed},
		{"wrong first index", app(raft.Entry{Index: 10, Term: 3}), wire.ErrMalformed},
		{"term below LogTerm", app(raft.Entry{Index: 11, Term: 2}), wire.ErrMalformed},
		{"decreasing terms", app(raft.Entry{Index: 11, Term: 4}, raft.Entry{Index: 12, Term: 3}), wire.ErrMalformed},
		{"unknown entry type", app(raft.Entry{Index: 11, Term: 3, Type: 7}), wire.ErrMalformed},
		{"index overflow", &raft.Message{Type: raft.MsgApp, Index: math.MaxUint64,
			Entries: []raft.Entry{{Index: 0}}}, wire.ErrMalformed},
		{"unknown proposal type", &raft.Message{Type: raft.MsgProp, Entries: []raft.Entry{{Type: 2}}}, wire.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := wire.AppendMessage([]byte("x"), testCluster, c.msg)
			checkTyped(t, err, false)
			if !errors.Is(err, c.want) || string(out) != "x" {
				t.Fatalf("AppendMessage = %q, %v; want %q and %v", out, err, "x", c.want)
			}
		})
	}
}

// TestRecordErrors checks record-specific failures.
func TestRecordErrors(t *testing.T) {
	var hs raft.HardState
	expect(t, wire.DecodeHardState([]byte{1, 2, 3, 4}, &hs), wire.ErrMalformed)
	expect(t, wire.DecodeHardState([]byte{1, 0x80, 0x00, 3}, &hs), wire.ErrMalformed)
	if hs != (raft.HardState{}) {
		t.Fatalf("failed decode changed hs to %+v", hs)
	}
	var e raft.Entry
	_, err := wire.DecodeEntry([]byte{1, 1, 5, 0}, &e)
	expect(t, err, wire.ErrMalformed)
	n, err := wire.DecodeEntry([]byte{1, 1, 0, 0, 0xaa}, &e)
	if err != nil || n != 4 {
		t.Fatalf("DecodeEntry with a following byte = %d, %v; want 4, nil", n, err)
	}
}

// TestDecodeErrorText pins the error format.
func TestDecodeErrorText(t *testing.T) {
	var m raft.Message
	err := wire.DecodeMessage(goldenFrames(t)["heartbeat"], 8, &m, wire.DefaultLimits)
	if got := err.Error(); got != "wire: wrong cluster (Cluster at byte 1)" {
		t.Fatalf("Error() = %q", got)
	}
	var de *wire.DecodeError
	if !errors.As(err, &de) || de.Field != "Cluster" || de.Offset != 1 {
		t.Fatalf("DecodeError = %+v", de)
	}
}

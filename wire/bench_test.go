package wire_test

import (
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// benchAppend is a MsgApp with 8 entries of 128-byte payloads.
func benchAppend() *raft.Message {
	m := &raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 7, Index: 100000, LogTerm: 7, Commit: 99990}
	for i := range 8 {
		data := make([]byte, 128)
		for j := range data {
			data[j] = byte(i + j)
		}
		m.Entries = append(m.Entries, raft.Entry{Term: 7, Index: 100001 + raft.Index(i), Data: data})
	}
	return m
}

var benchHeartbeat = &raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 7, Commit: 99990}

func benchEncode(b *testing.B, m *raft.Message) {
	buf := make([]byte, 0, wire.DefaultMaxFrameBytes)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = wire.AppendMessage(buf[:0], testCluster, m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func benchDecode(b *testing.B, m *raft.Message) {
	frame := mustEncode(b, testCluster, m)
	got := raft.Message{Entries: make([]raft.Entry, 0, wire.DefaultMaxEntries)}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := wire.DecodeMessage(frame, testCluster, &got, wire.DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAppend(b *testing.B)    { benchEncode(b, benchAppend()) }
func BenchmarkDecodeAppend(b *testing.B)    { benchDecode(b, benchAppend()) }
func BenchmarkEncodeHeartbeat(b *testing.B) { benchEncode(b, benchHeartbeat) }
func BenchmarkDecodeHeartbeat(b *testing.B) { benchDecode(b, benchHeartbeat) }

// TestZeroAllocs checks that encoding into a buffer with room and
// decoding into a reused message allocate nothing, records included.
func TestZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	buf := make([]byte, 0, wire.DefaultMaxFrameBytes)
	got := raft.Message{Entries: make([]raft.Entry, 0, wire.DefaultMaxEntries)}
	msgs := []*raft.Message{benchAppend(), benchHeartbeat}
	for _, c := range goldenCases {
		if c.msg != nil && c.clusterOf() == testCluster {
			msgs = append(msgs, c.msg)
		}
	}
	for _, m := range msgs {
		frame := mustEncode(t, testCluster, m)
		enc := testing.AllocsPerRun(100, func() { buf, _ = wire.AppendMessage(buf[:0], testCluster, m) })
		dec := testing.AllocsPerRun(100, func() { _ = wire.DecodeMessage(frame, testCluster, &got, wire.DefaultLimits) })
		if enc != 0 || dec != 0 {
			t.Errorf("%v: %.0f allocs to encode, %.0f to decode; want 0", m.Type, enc, dec)
		}
	}
	hs, e := raft.HardState{Term: 5, Vote: 1, Commit: 42}, benchAppend().Entries[0]
	rec := testing.AllocsPerRun(100, func() {
		buf = wire.AppendHardState(buf[:0], hs)
		_ = wire.DecodeHardState(buf, &hs)
		buf = wire.AppendEntry(buf[:0], &e)
		_, _ = wire.DecodeEntry(buf, &e)
	})
	if rec != 0 {
		t.Errorf("records: %.0f allocs, want 0", rec)
	}
}

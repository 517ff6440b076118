package wire_test

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

var seed = flag.Uint64("wire.seed", 20261203, "seed of the randomized round-trip test")

// randU64 returns a value of random bit length, so that every varint
// length (1 to 10 bytes) is exercised.
func randU64(r *rand.Rand) uint64 { return r.Uint64() >> r.IntN(65) }

// randMessage returns a message of type typ with every field set at
// random, meaningful or not; its entries satisfy the MsgApp invariants
// (consecutive indexes after Index, terms non-decreasing from LogTerm),
// except that a MsgSnap carries what the codec requires of it: exactly one
// entry whose only non-zero field is Data, a non-empty chunk.
func randMessage(r *rand.Rand, typ raft.MessageType) raft.Message {
	m := raft.Message{Type: typ, From: raft.NodeID(randU64(r)), To: raft.NodeID(randU64(r)),
		Term: raft.Term(randU64(r)), LogTerm: raft.Term(randU64(r)), Index: raft.Index(randU64(r)),
		Commit: raft.Index(randU64(r)), Hint: raft.Index(randU64(r)), Reject: r.IntN(2) == 0}
	if typ == raft.MsgSnap {
		m.Entries = []raft.Entry{{Data: randBytes(r, 1+r.IntN(raft.DefaultMaxMsgBytes))}}
		return m
	}
	if m.Index > math.MaxUint64-16 {
		m.Index -= 16 // leave room for the entries' indexes
	}
	term := m.LogTerm
	for i := range r.IntN(9) {
		if r.IntN(4) == 0 && term < math.MaxUint64-1000 {
			term += raft.Term(r.IntN(1000))
		}
		e := raft.Entry{Term: term, Index: m.Index + 1 + raft.Index(i), Type: raft.EntryType(r.IntN(3))}
		if e.Type == raft.EntryConfChange {
			e.Data = raft.AppendConfState(nil, randConf(r))
		} else if n := r.IntN(80); n > 0 {
			e.Data = randBytes(r, n)
		}
		if typ == raft.MsgProp && r.IntN(2) == 0 {
			e.Term, e.Index = 0, 0 // proposals usually carry neither
		}
		m.Entries = append(m.Entries, e)
	}
	return m
}

// randConf returns a valid configuration (raft.DecodeConfState accepts
// its encoding) of up to 8 members with IDs of random bit length, joint
// about half the time.
func randConf(r *rand.Rand) raft.ConfState {
	var cs raft.ConfState
	seen := map[raft.NodeID]bool{}
	for range 1 + r.IntN(8) {
		id := raft.NodeID(randU64(r))
		if id == raft.None || seen[id] {
			continue
		}
		seen[id] = true
		switch r.IntN(4) {
		case 0:
			cs.Voters = append(cs.Voters, id)
		case 1:
			cs.Voters, cs.VotersOutgoing = append(cs.Voters, id), append(cs.VotersOutgoing, id)
		case 2:
			cs.VotersOutgoing = append(cs.VotersOutgoing, id)
		default:
			cs.Learners = append(cs.Learners, id)
		}
	}
	if len(cs.Voters) == 0 {
		cs.Voters = []raft.NodeID{1}
		cs.Learners = slices.DeleteFunc(cs.Learners, func(id raft.NodeID) bool { return id == 1 })
	}
	for _, l := range [][]raft.NodeID{cs.Voters, cs.VotersOutgoing, cs.Learners} {
		slices.Sort(l)
	}
	if _, err := raft.DecodeConfState(raft.AppendConfState(nil, cs)); err != nil {
		panic(fmt.Sprintf("randConf made an invalid configuration %+v: %v", cs, err))
	}
	return cs
}

// randBytes returns n random bytes.
func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	return b
}

// TestRoundTrip encodes random messages of every type, decodes them into
// a reused message, and checks that the meaningful fields survive and that
// re-encoding gives the same bytes.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(*seed, 0))
	var got raft.Message // reused, as a transport would
	var buf []byte
	var rejects [256][2]int // round trips per type, without and with Reject
	confs := 0              // EntryConfChange entries in MsgApp and MsgProp
	for i := range 20000 {
		m := randMessage(r, allTypes()[i%len(allTypes())])
		frame, err := wire.AppendMessage(buf[:0], testCluster, &m)
		if err != nil {
			t.Fatalf("seed %d, message %d: AppendMessage(%+v): %v", *seed, i, m, err)
		}
		buf = frame
		if err := wire.DecodeMessage(frame, testCluster, &got, wire.DefaultLimits); err != nil {
			t.Fatalf("seed %d, message %d: DecodeMessage(%x): %v", *seed, i, frame, err)
		}
		if a, b := normalize(&got), normalize(&m); !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d, message %d: round trip\n got %+v\nwant %+v", *seed, i, a, b)
		}
		again, err := wire.AppendMessage(nil, testCluster, &got)
		if err != nil || string(again) != string(frame) {
			t.Fatalf("seed %d, message %d: re-encoding differs: %x, %v; want %x", *seed, i, again, err, frame)
		}
		rejects[got.Type][b2i(got.Reject)]++
		for _, e := range got.Entries {
			if e.Type == raft.EntryConfChange {
				confs++
			}
		}
	}
	for _, typ := range allTypes() {
		n := rejects[typ]
		if n[0] == 0 || shapes[typ].reject && n[1] == 0 {
			t.Fatalf("seed %d: %v round trips without/with Reject: %v; want both where Reject travels", *seed, typ, n)
		}
	}
	if confs == 0 {
		t.Fatalf("seed %d: no EntryConfChange entry made a round trip", *seed)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRecordRoundTrip does the same for hard-state and entry records,
// decoding a stream of concatenated entry records.
func TestRecordRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(*seed, 1))
	confs := 0
	for i := range 5000 {
		hs := raft.HardState{Term: raft.Term(randU64(r)), Vote: raft.NodeID(randU64(r)), Commit: raft.Index(randU64(r))}
		var got raft.HardState
		if err := wire.DecodeHardState(wire.AppendHardState(nil, hs), &got); err != nil || got != hs {
			t.Fatalf("seed %d, record %d: hard state %+v -> %+v, %v", *seed, i, hs, got, err)
		}
		m := randMessage(r, raft.MsgProp)
		var stream []byte
		for j := range m.Entries {
			stream = wire.AppendEntry(stream, &m.Entries[j])
		}
		for j := range m.Entries {
			var e raft.Entry
			n, err := wire.DecodeEntry(stream, &e)
			if err != nil || !reflect.DeepEqual(e, normalizeEntry(m.Entries[j])) {
				t.Fatalf("seed %d, record %d/%d: entry %+v -> %+v, %v", *seed, i, j, m.Entries[j], e, err)
			}
			stream = stream[n:]
		}
		if len(stream) != 0 {
			t.Fatalf("seed %d, record %d: %d bytes left", *seed, i, len(stream))
		}
		for _, e := range m.Entries {
			if e.Type == raft.EntryConfChange {
				confs++
			}
		}
	}
	if confs == 0 {
		t.Fatalf("seed %d: no EntryConfChange record made a round trip", *seed)
	}
}

// TestDecodeOverwrites checks that decoding clears every field of a
// reused message, including those the new type does not carry.
func TestDecodeOverwrites(t *testing.T) {
	m := raft.Message{Type: raft.MsgApp, From: 9, To: 9, Term: 9, LogTerm: 9, Index: 9, Commit: 9,
		Hint: 9, Reject: true, Entries: []raft.Entry{{Term: 9, Index: 10, Data: []byte("old")}}}
	hb := &raft.Message{Type: raft.MsgHeartbeatResp, From: 2, To: 1, Term: 5}
	if err := wire.DecodeMessage(mustEncode(t, testCluster, hb), testCluster, &m, wire.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 0 || cap(m.Entries) != 1 {
		t.Fatalf("Entries = %v (cap %d), want empty with capacity kept", m.Entries, cap(m.Entries))
	}
	m.Entries = nil
	if !reflect.DeepEqual(m, *hb) {
		t.Fatalf("decoded %+v", m)
	}
}

// TestDataAliasesInput checks the zero-copy promise and that appending to
// a decoded Data cannot overwrite the rest of the frame.
func TestDataAliasesInput(t *testing.T) {
	frame := goldenFrames(t)["append_two"]
	var m raft.Message
	if err := wire.DecodeMessage(frame, testCluster, &m, wire.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	d := m.Entries[1].Data
	if cap(d) != len(d) {
		t.Fatalf("Data capacity %d exceeds its length %d", cap(d), len(d))
	}
	frame[len(frame)-5] = 'Z' // last payload byte
	if string(d) != "x=Z" {
		t.Fatalf("Data = %q, want it to alias the frame", d)
	}
}

package wire_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// FuzzDecode feeds arbitrary bytes to every decoder. Decoding must never
// panic and must fail with a typed error or succeed canonically: encoding
// the decoded value gives back exactly the input, which decodes to the
// same value again. Random bytes almost never pass the checksum, so each
// input is also tried with its checksum repaired and its own cluster ID,
// which lets the fuzzer explore the parser behind the checksum.
func FuzzDecode(f *testing.F) {
	for _, c := range goldenCases {
		f.Add(c.encode(f))
	}
	// A MsgSnap mid-stream, with multi-byte offsets and a chunk length of
	// two bytes (the golden one fits one).
	f.Add(mustEncode(f, testCluster, &raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 5, Index: 10000, LogTerm: 5,
		Commit: 1 << 20, Hint: 1<<21 + 4, Entries: []raft.Entry{{Data: bytes.Repeat([]byte("snap"), 75)}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFrame(t, data, testCluster)
		if len(data) >= 4 {
			fixed := fixCRC(append([]byte(nil), data...))
			cluster, _ := binary.Uvarint(fixed[1:])
			checkFrame(t, fixed, wire.ClusterID(cluster))
		}
		checkHardState(t, data)
		checkEntry(t, data)
	})
}

// checkFrame decodes data as a frame of cluster and, on success, checks
// the canonical round trip.
func checkFrame(t *testing.T, data []byte, cluster wire.ClusterID) {
	var m raft.Message
	if err := wire.DecodeMessage(data, cluster, &m, wire.DefaultLimits); err != nil {
		checkTyped(t, err, true)
		return
	}
	again, err := wire.AppendMessage(nil, cluster, &m)
	if err != nil {
		t.Fatalf("decoded %+v from %x but cannot re-encode it: %v", m, data, err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("non-canonical: %x decodes to %+v, which encodes as %x", data, m, again)
	}
	var m2 raft.Message
	if err := wire.DecodeMessage(again, cluster, &m2, wire.DefaultLimits); err != nil {
		t.Fatalf("re-encoding %x does not decode: %v", again, err)
	}
	if a, b := normalize(&m), normalize(&m2); !reflect.DeepEqual(a, b) {
		t.Fatalf("second decode differs:\n%+v\n%+v", a, b)
	}
}

// checkHardState decodes data as a hard-state record.
func checkHardState(t *testing.T, data []byte) {
	var hs raft.HardState
	if err := wire.DecodeHardState(data, &hs); err != nil {
		checkTyped(t, err, true)
		return
	}
	if again := wire.AppendHardState(nil, hs); !bytes.Equal(again, data) {
		t.Fatalf("non-canonical hard state: %x -> %+v -> %x", data, hs, again)
	}
}

// checkEntry decodes an entry record from the front of data.
func checkEntry(t *testing.T, data []byte) {
	var e raft.Entry
	n, err := wire.DecodeEntry(data, &e)
	if err != nil {
		checkTyped(t, err, true)
		return
	}
	if n <= 0 || n > len(data) {
		t.Fatalf("DecodeEntry consumed %d of %d bytes", n, len(data))
	}
	if again := wire.AppendEntry(nil, &e); !bytes.Equal(again, data[:n]) {
		t.Fatalf("non-canonical entry: %x -> %+v -> %x", data[:n], e, again)
	}
}

package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// clientShapes is the test's own statement of the client frame layouts
// (docs/CLIENT.md), used to annotate the golden files: after the request
// ID, each type's fields in wire order. "u:" is a varint, "b:" one byte,
// "d:" a length-prefixed byte string.
var clientShapes = map[wire.ClientType][]string{
	wire.ClientPropose:       {"d:Data (command)"},
	wire.ClientRead:          {"d:Data (key)"},
	wire.ClientStaleRead:     {"d:Data (key)"},
	wire.ClientStatusRequest: nil,
	wire.ClientResult:        {"u:Node", "d:Data (result)"},
	wire.ClientValue:         {"u:Node", "b:Found", "u:Index", "d:Data (value)"},
	wire.ClientStatusReply: {"u:Node", "b:Role", "u:Term", "u:Lead", "u:Commit", "u:Applied", "u:LastIndex",
		"u:DroppedFull", "u:DroppedFault", "u:DroppedBad", "u:ClientDropped", "u:UptimeMillis"},
	wire.ClientError: {"u:Node", "b:Code", "u:Leader"},
}

type clientCase struct {
	name    string
	note    string
	cluster wire.ClusterID
	f       wire.ClientFrame
}

// clientCases pin the client frame format; changing their bytes is a
// format change.
var clientCases = []clientCase{
	{name: "client_propose", note: "ClientPropose: request 7 proposes the 4-byte command \"\\x02put\"",
		f: wire.ClientFrame{Type: wire.ClientPropose, RequestID: 7, Data: []byte("\x02put")}},
	{name: "client_read", note: "ClientRead: request 8, linearizable read of key \"k\"",
		f: wire.ClientFrame{Type: wire.ClientRead, RequestID: 8, Data: []byte("k")}},
	{name: "client_stale_read", note: "ClientStaleRead: request 9, local read of key \"k\"",
		f: wire.ClientFrame{Type: wire.ClientStaleRead, RequestID: 9, Data: []byte("k")}},
	{name: "client_status_request", note: "ClientStatusRequest: request 300 (two-byte varint)",
		f: wire.ClientFrame{Type: wire.ClientStatusRequest, RequestID: 300}},
	{name: "client_result", note: "ClientResult: node 2 answers request 7 with the 4-byte result \"\\x01\\x05\\x2a\\x00\" (kv: OK, client 5, index 42)",
		f: wire.ClientFrame{Type: wire.ClientResult, RequestID: 7, Node: 2, Data: []byte{1, 5, 42, 0}}},
	{name: "client_value", note: "ClientValue: node 3 answers request 8: found, applied index 44, value \"v1\"",
		f: wire.ClientFrame{Type: wire.ClientValue, RequestID: 8, Node: 3, Found: true, Index: 44, Data: []byte("v1")}},
	{name: "client_value_missing", note: "ClientValue: node 3 answers request 9: not found at applied index 44",
		f: wire.ClientFrame{Type: wire.ClientValue, RequestID: 9, Node: 3, Index: 44}},
	{name: "client_status_reply", note: "ClientStatusReply: node 1, leader of term 5, commit 42, applied 42, last 43, counters, up 1.5 s",
		f: wire.ClientFrame{Type: wire.ClientStatusReply, RequestID: 300, Node: 1, Status: wire.ClientStatus{
			Role: raft.RoleLeader, Term: 5, Lead: 1, Commit: 42, Applied: 42, LastIndex: 43,
			DroppedFull: 1, DroppedFault: 0, DroppedBad: 3, ClientDropped: 2, UptimeMillis: 1500}}},
	{name: "client_error", note: "ClientError: node 2 answers request 7 with CodeLeaderChanged (3); the leader is now 4",
		f: wire.ClientFrame{Type: wire.ClientError, RequestID: 7, Node: 2, Code: wire.CodeLeaderChanged, Leader: 4}},
	{name: "client_error_large", note: "ClientError with a 64-bit cluster ID and request ID: CodeNoLeader, leader unknown",
		cluster: 0x9e3779b97f4a7c15,
		f:       wire.ClientFrame{Type: wire.ClientError, RequestID: math.MaxUint64, Node: 70000, Code: wire.CodeNoLeader}},
}

func (c clientCase) clusterOf() wire.ClusterID {
	if c.cluster == 0 {
		return testCluster
	}
	return c.cluster
}

func (c clientCase) encode(t testing.TB) []byte {
	t.Helper()
	b, err := wire.AppendClientFrame(nil, c.clusterOf(), &c.f, 0)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return b
}

// TestClientGolden pins every client frame case to its hex file and checks
// that the file decodes back to the case.
func TestClientGolden(t *testing.T) {
	for _, c := range clientCases {
		t.Run(c.name, func(t *testing.T) {
			got := c.encode(t)
			text, err := annotateClient(c, got)
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
			var f wire.ClientFrame
			if err := wire.DecodeClientFrame(want, c.clusterOf(), &f, 0); err != nil {
				t.Fatal(err)
			}
			if !clientEqual(&f, &c.f) {
				t.Fatalf("decoded %+v, want %+v", f, c.f)
			}
		})
	}
	if *update {
		writeClientSeedCorpus(t)
	}
}

// clientEqual compares frames, treating nil and empty Data alike.
func clientEqual(a, b *wire.ClientFrame) bool {
	x, y := *a, *b
	if len(x.Data) == 0 {
		x.Data = nil
	}
	if len(y.Data) == 0 {
		y.Data = nil
	}
	return reflect.DeepEqual(x, y)
}

func annotateClient(c clientCase, b []byte) (string, error) {
	a := &annotator{b: b}
	fmt.Fprintf(&a.out, "# %s\n# %d bytes. Regenerate: go test ./wire -run TestClientGolden -update\n", c.note, len(b))
	a.emit(1, "version = "+strconv.Itoa(int(b[0])))
	a.uvarint("cluster ID")
	if a.err != nil || a.off >= len(b) {
		return "", fmt.Errorf("no type byte")
	}
	typ := wire.ClientType(b[a.off])
	sh, ok := clientShapes[typ]
	if !ok {
		return "", fmt.Errorf("unknown type %d", typ)
	}
	a.emit(1, "type = "+strconv.Itoa(int(typ))+" ("+typ.String()+")")
	a.uvarint("RequestID")
	for _, f := range sh {
		kind, name := f[:2], f[2:]
		switch kind {
		case "u:":
			a.uvarint(name)
		case "b:":
			if a.off < len(b) {
				a.emit(1, name+" = "+strconv.Itoa(int(b[a.off])))
			}
		case "d:":
			n := a.uvarint("len(" + name + ")")
			if n > 0 && a.err == nil && int(n) <= len(b)-a.off {
				a.emit(int(n), name+" = "+strconv.Quote(string(b[a.off:a.off+int(n)])))
			}
		}
	}
	if a.err == nil && len(b)-a.off == 4 {
		a.emit(4, fmt.Sprintf("CRC-32C = 0x%08x, little-endian", binary.LittleEndian.Uint32(b[a.off:])))
	}
	if a.err == nil && a.off != len(b) {
		a.err = fmt.Errorf("%d bytes left over", len(b)-a.off)
	}
	return a.out.String(), a.err
}

func writeClientSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeClient")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		text := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clientCases {
		b := c.encode(t)
		write("golden-"+c.name, b)
		clone := func() []byte { return append([]byte(nil), b...) }
		write("mut-"+c.name+"-truncated", fixCRC(append(clone()[:len(b)-5], 0, 0, 0, 0)))
		write("mut-"+c.name+"-trailing", fixCRC(append(clone()[:len(b)-4], 0, 0, 0, 0, 0)))
		write("mut-"+c.name+"-badcrc", append(clone()[:len(b)-1], b[len(b)-1]^1))
	}
	for _, m := range clientMutations(t) {
		write("mut-"+m.name, m.b)
	}
}

type mutation struct {
	name string
	b    []byte
	err  error
}

// clientMutations are frames with a valid checksum that the decoder must
// refuse, with the error it must give.
func clientMutations(t testing.TB) []mutation {
	enc := func(f wire.ClientFrame) []byte {
		b, err := wire.AppendClientFrame(nil, testCluster, &f, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	value := enc(wire.ClientFrame{Type: wire.ClientValue, RequestID: 8, Node: 3, Found: true, Index: 44, Data: []byte("v1")})
	errf := enc(wire.ClientFrame{Type: wire.ClientError, RequestID: 7, Node: 2, Code: wire.CodeBusy})
	status := enc(wire.ClientFrame{Type: wire.ClientStatusReply, RequestID: 1, Node: 1})
	prop := enc(wire.ClientFrame{Type: wire.ClientPropose, RequestID: 7, Data: []byte("abc")})
	mut := func(name string, src []byte, err error, f func(b []byte) []byte) mutation {
		return mutation{name: name, err: err, b: fixCRC(f(append([]byte(nil), src...)))}
	}
	return []mutation{
		mut("found-2", value, wire.ErrMalformed, func(b []byte) []byte { b[5] = 2; return b }),
		mut("notfound-with-value", value, wire.ErrMalformed, func(b []byte) []byte { b[5] = 0; return b }),
		mut("code-0", errf, wire.ErrMalformed, func(b []byte) []byte { b[5] = 0; return b }),
		mut("code-9", errf, wire.ErrMalformed, func(b []byte) []byte { b[5] = 9; return b }),
		mut("role-4", status, wire.ErrMalformed, func(b []byte) []byte { b[5] = 4; return b }),
		mut("type-63", prop, wire.ErrType, func(b []byte) []byte { b[2] = 63; return b }),
		mut("type-72", prop, wire.ErrType, func(b []byte) []byte { b[2] = 72; return b }),
		mut("type-raft-heartbeat", prop, wire.ErrType, func(b []byte) []byte { b[2] = byte(raft.MsgHeartbeat); return b }),
		mut("long-data", prop, wire.ErrTruncated, func(b []byte) []byte { b[4] = 0x40; return b }),
		mut("nonminimal-request", prop, wire.ErrMalformed, func(b []byte) []byte {
			return append(append(b[:3:3], 0x87, 0x00), b[4:]...)
		}),
		mut("version-2", prop, wire.ErrVersion, func(b []byte) []byte { b[0] = 2; return b }),
		mut("cluster-8", prop, wire.ErrCluster, func(b []byte) []byte { b[1] = 8; return b }),
		mut("varint-overflow", prop, wire.ErrMalformed, func(b []byte) []byte {
			return append(append(b[:3:3], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), b[4:]...)
		}),
	}
}

func TestClientMutations(t *testing.T) {
	for _, m := range clientMutations(t) {
		var f wire.ClientFrame
		err := wire.DecodeClientFrame(m.b, testCluster, &f, 0)
		if !errors.Is(err, m.err) {
			t.Errorf("%s: %x: got %v, want %v", m.name, m.b, err, m.err)
		}
		var de *wire.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: %T is not a *DecodeError", m.name, err)
		}
		if f.Type != 0 || f.Data != nil {
			t.Errorf("%s: frame not zeroed on error: %+v", m.name, f)
		}
	}
}

// TestClientFrameErrors covers the checks before the body and the encoder's
// refusals.
func TestClientFrameErrors(t *testing.T) {
	good := clientCases[0].encode(t)
	var f wire.ClientFrame
	for name, tc := range map[string]struct {
		b   []byte
		max int
		err error
	}{
		"empty":     {nil, 0, wire.ErrTruncated},
		"short":     {good[:5], 0, wire.ErrTruncated},
		"version":   {append([]byte{9}, good[1:]...), 0, wire.ErrVersion},
		"checksum":  {append(append([]byte(nil), good[:len(good)-1]...), good[len(good)-1]^0x10), 0, wire.ErrChecksum},
		"too large": {good, len(good) - 1, wire.ErrLimit},
		"oversized": {make([]byte, wire.MaxClientFrameBytes+1), 0, wire.ErrLimit},
	} {
		if err := wire.DecodeClientFrame(tc.b, testCluster, &f, tc.max); !errors.Is(err, tc.err) {
			t.Errorf("%s: got %v, want %v", name, err, tc.err)
		}
	}
	if err := wire.DecodeClientFrame(good, testCluster+1, &f, 0); !errors.Is(err, wire.ErrCluster) {
		t.Errorf("other cluster: %v", err)
	}
	// A raft frame is not a client frame, and a client frame is not a raft frame.
	hb := mustEncode(t, testCluster, &raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1})
	if err := wire.DecodeClientFrame(hb, testCluster, &f, 0); !errors.Is(err, wire.ErrType) {
		t.Errorf("raft frame as client frame: %v", err)
	}
	for _, c := range clientCases {
		var m raft.Message
		if err := wire.DecodeMessage(c.encode(t), c.clusterOf(), &m, wire.DefaultLimits); !errors.Is(err, wire.ErrType) {
			t.Errorf("%s as raft frame: %v", c.name, err)
		}
	}
	for name, tc := range map[string]struct {
		f   wire.ClientFrame
		max int
		err error
	}{
		"type 0":          {wire.ClientFrame{}, 0, wire.ErrType},
		"type 72":         {wire.ClientFrame{Type: 72}, 0, wire.ErrType},
		"code 0":          {wire.ClientFrame{Type: wire.ClientError}, 0, wire.ErrMalformed},
		"role 4":          {wire.ClientFrame{Type: wire.ClientStatusReply, Status: wire.ClientStatus{Role: 4}}, 0, wire.ErrMalformed},
		"value not found": {wire.ClientFrame{Type: wire.ClientValue, Data: []byte("x")}, 0, wire.ErrMalformed},
		"too large":       {wire.ClientFrame{Type: wire.ClientPropose, Data: make([]byte, 1200)}, 0, wire.ErrLimit},
		"over max":        {wire.ClientFrame{Type: wire.ClientPropose, Data: make([]byte, 100)}, 100, wire.ErrLimit},
	} {
		prefix := []byte("keep")
		b, err := wire.AppendClientFrame(prefix, testCluster, &tc.f, tc.max)
		if !errors.Is(err, tc.err) || string(b) != "keep" {
			t.Errorf("%s: got %q, %v; want %v", name, b, err, tc.err)
		}
	}
	for _, typ := range []wire.ClientType{wire.ClientPropose, wire.ClientError, 0, 99} {
		if typ.String() == "" {
			t.Error("empty name")
		}
	}
	if wire.ErrorCode(0).String() != "ErrorCode(0)" || wire.CodeBusy.String() != "busy" {
		t.Error("ErrorCode.String")
	}
	if !wire.ClientRead.IsRequest() || wire.ClientValue.IsRequest() {
		t.Error("IsRequest")
	}
}

// TestClientRoundTrip encodes random frames of every type and decodes
// them back; the largest Data that fits is exactly the bound.
func TestClientRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	u := func() uint64 { return rng.Uint64() >> rng.IntN(64) }
	for i := 0; i < 5000; i++ {
		f := wire.ClientFrame{Type: wire.ClientType(64 + rng.IntN(8)), RequestID: u()}
		data := make([]byte, rng.IntN(64))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		switch f.Type {
		case wire.ClientPropose, wire.ClientRead, wire.ClientStaleRead:
			f.Data = data
		case wire.ClientResult:
			f.Node, f.Data = raft.NodeID(u()), data
		case wire.ClientValue:
			f.Node, f.Index, f.Found = raft.NodeID(u()), raft.Index(u()), rng.IntN(2) == 0
			if f.Found {
				f.Data = data
			}
		case wire.ClientStatusReply:
			f.Node = raft.NodeID(u())
			f.Status = wire.ClientStatus{Role: raft.Role(rng.IntN(4)), Term: raft.Term(u()), Lead: raft.NodeID(u()),
				Commit: raft.Index(u()), Applied: raft.Index(u()), LastIndex: raft.Index(u()), DroppedFull: u(),
				DroppedFault: u(), DroppedBad: u(), ClientDropped: u(), UptimeMillis: u()}
		case wire.ClientError:
			f.Node, f.Code, f.Leader = raft.NodeID(u()), wire.ErrorCode(1+rng.IntN(8)), raft.NodeID(u())
		}
		cluster := wire.ClusterID(u())
		b, err := wire.AppendClientFrame(nil, cluster, &f, 0)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		var g wire.ClientFrame
		if err := wire.DecodeClientFrame(b, cluster, &g, 0); err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if !clientEqual(&f, &g) {
			t.Fatalf("round trip:\n%+v\n%+v", f, g)
		}
	}
	// The bound is exact: a frame of exactly the maximum size passes.
	f := wire.ClientFrame{Type: wire.ClientPropose, RequestID: 1}
	f.Data = make([]byte, wire.MaxClientFrameBytes-1-1-1-1-2-4)
	b, err := wire.AppendClientFrame(nil, testCluster, &f, 0)
	if err != nil || len(b) != wire.MaxClientFrameBytes {
		t.Fatalf("max frame: %d bytes, %v", len(b), err)
	}
	if err := wire.DecodeClientFrame(b, testCluster, &f, 0); err != nil {
		t.Fatal(err)
	}
	if wire.ClientFrameOverhead < len(b)-len(f.Data) {
		t.Fatalf("ClientFrameOverhead %d below the real %d", wire.ClientFrameOverhead, len(b)-len(f.Data))
	}
}

// FuzzDecodeClient: decoding arbitrary bytes never panics and either fails
// with a typed error or round-trips canonically.
func FuzzDecodeClient(f *testing.F) {
	for _, c := range clientCases {
		f.Add(c.encode(f))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkClient(t, data, testCluster)
		if len(data) >= 4 {
			fixed := fixCRC(append([]byte(nil), data...))
			cluster, _ := binary.Uvarint(fixed[1:])
			checkClient(t, fixed, wire.ClusterID(cluster))
		}
	})
}

func checkClient(t *testing.T, data []byte, cluster wire.ClusterID) {
	var f wire.ClientFrame
	if err := wire.DecodeClientFrame(data, cluster, &f, 0); err != nil {
		checkTyped(t, err, true)
		return
	}
	again, err := wire.AppendClientFrame(nil, cluster, &f, 0)
	if err != nil {
		t.Fatalf("decoded %+v from %x but cannot re-encode it: %v", f, data, err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("non-canonical: %x decodes to %+v, which encodes as %x", data, f, again)
	}
}

func TestClientZeroAllocs(t *testing.T) {
	buf := make([]byte, 0, 1200)
	var f wire.ClientFrame
	for _, c := range clientCases {
		b := c.encode(t)
		if n := testing.AllocsPerRun(100, func() {
			_ = wire.DecodeClientFrame(b, c.clusterOf(), &f, 0)
			buf, _ = wire.AppendClientFrame(buf[:0], c.clusterOf(), &f, 0)
		}); n != 0 {
			t.Errorf("%s: %v allocs", c.name, n)
		}
	}
}

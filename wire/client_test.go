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
	"slices"
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
	wire.ClientError:             {"u:Node", "b:Code", "u:Leader"},
	wire.ClientConfChange:        {"b:Change", "u:Target"},
	wire.ClientTransferLeader:    {"u:Target"},
	wire.ClientMembershipRequest: nil,
	wire.ClientMembership:        {"u:Node", "u:Term", "u:Leader", "c:Data (configuration)"},
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
	{name: "client_conf_change", note: "ClientConfChange: request 10 asks to add node 4 as a learner (Change 2)",
		f: wire.ClientFrame{Type: wire.ClientConfChange, RequestID: 10, Change: raft.ConfAddLearner, Target: 4}},
	{name: "client_conf_change_remove", note: "ClientConfChange: request 11 asks to remove node 300 (Change 3, two-byte Target)",
		f: wire.ClientFrame{Type: wire.ClientConfChange, RequestID: 11, Change: raft.ConfRemove, Target: 300}},
	{name: "client_transfer_leader", note: "ClientTransferLeader: request 12 asks the leader to hand over to node 4",
		f: wire.ClientFrame{Type: wire.ClientTransferLeader, RequestID: 12, Target: 4}},
	{name: "client_membership_request", note: "ClientMembershipRequest: request 13",
		f: wire.ClientFrame{Type: wire.ClientMembershipRequest, RequestID: 13}},
	{name: "client_membership", note: "ClientMembership: leader 1 of term 5 answers request 10: voters {1, 2, 3}, learners {4}",
		f: wire.ClientFrame{Type: wire.ClientMembership, RequestID: 10, Node: 1, Term: 5, Leader: 1,
			Data: raft.AppendConfState(nil, raft.ConfState{Voters: []raft.NodeID{1, 2, 3}, Learners: []raft.NodeID{4}})}},
	{name: "client_membership_joint", note: "ClientMembership: node 2 (term 6, leader 1) answers request 14 with a joint configuration: voters {1, 2, 4}, outgoing {1, 2, 3}",
		f: wire.ClientFrame{Type: wire.ClientMembership, RequestID: 14, Node: 2, Term: 6, Leader: 1,
			Data: raft.AppendConfState(nil, raft.ConfState{Voters: []raft.NodeID{1, 2, 4}, VotersOutgoing: []raft.NodeID{1, 2, 3}})}},
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
		case "c:": // a configuration: three lists of a count and IDs
			a.uvarint("len(" + name + ")")
			for _, list := range []string{"Voters", "VotersOutgoing", "Learners"} {
				n := a.uvarint("  count of " + list)
				for i := uint64(0); i < n && a.err == nil; i++ {
					a.uvarint("    " + list + "[" + strconv.FormatUint(i, 10) + "]")
				}
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
	change := enc(wire.ClientFrame{Type: wire.ClientConfChange, RequestID: 7, Change: raft.ConfAddVoter, Target: 4})
	transfer := enc(wire.ClientFrame{Type: wire.ClientTransferLeader, RequestID: 7, Target: 4})
	mreq := enc(wire.ClientFrame{Type: wire.ClientMembershipRequest, RequestID: 7})
	// ClientMembership from node 1, term 5, leader 1, with the configuration
	// conf (valid or not), which starts at byte 8.
	membership := func(conf ...byte) []byte {
		b := []byte{wire.Version, byte(testCluster), byte(wire.ClientMembership), 7, 1, 5, 1, byte(len(conf))}
		return append(append(b, conf...), 0, 0, 0, 0)
	}
	tooMany := []byte{raft.MaxMembers + 1}
	for i := range raft.MaxMembers + 1 {
		tooMany = append(tooMany, byte(i+1))
	}
	overMembers := []byte{40} // 40 voters and 25 learners: 65 members
	for i := range 40 {
		overMembers = append(overMembers, byte(i+1))
	}
	overMembers = append(overMembers, 0, 25)
	for i := range 25 {
		overMembers = append(overMembers, byte(i+41))
	}
	mut := func(name string, src []byte, err error, f func(b []byte) []byte) mutation {
		return mutation{name: name, err: err, b: fixCRC(f(append([]byte(nil), src...)))}
	}
	same := func(b []byte) []byte { return b }
	return []mutation{
		mut("change-0", change, wire.ErrMalformed, func(b []byte) []byte { b[4] = 0; return b }),
		mut("change-4", change, wire.ErrMalformed, func(b []byte) []byte { b[4] = 4; return b }),
		mut("change-target-0", change, wire.ErrMalformed, func(b []byte) []byte { b[5] = 0; return b }),
		mut("change-no-target", change, wire.ErrTruncated, func(b []byte) []byte { return append(b[:5], 0, 0, 0, 0) }),
		mut("transfer-target-0", transfer, wire.ErrMalformed, func(b []byte) []byte { b[4] = 0; return b }),
		mut("transfer-trailing", transfer, wire.ErrMalformed, func(b []byte) []byte { return append(b[:5], 1, 0, 0, 0, 0) }),
		mut("membership-request-trailing", mreq, wire.ErrMalformed, func(b []byte) []byte { return append(b[:4], 0, 0, 0, 0, 0) }),
		mut("conf-ok", membership(1, 1, 0, 0), nil, same),
		mut("conf-empty", membership(), wire.ErrMalformed, same),
		mut("conf-no-voters", membership(0, 0, 1, 4), wire.ErrMalformed, same),
		mut("conf-only-outgoing", membership(0, 1, 1, 0), wire.ErrMalformed, same),
		mut("conf-voter-0", membership(1, 0, 0, 0), wire.ErrMalformed, same),
		mut("conf-unsorted", membership(2, 2, 1, 0, 0), wire.ErrMalformed, same),
		mut("conf-duplicate", membership(2, 1, 1, 0, 0), wire.ErrMalformed, same),
		mut("conf-learner-voter", membership(2, 1, 2, 0, 1, 2), wire.ErrMalformed, same),
		mut("conf-learner-outgoing", membership(1, 1, 1, 3, 1, 3), wire.ErrMalformed, same),
		mut("conf-truncated", membership(2, 1), wire.ErrMalformed, same),
		mut("conf-trailing", membership(1, 1, 0, 0, 0), wire.ErrMalformed, same),
		mut("conf-nonminimal-id", membership(1, 0x81, 0x00, 0, 0), wire.ErrMalformed, same),
		mut("conf-nonminimal-count", membership(0x81, 0x00, 1, 0, 0), wire.ErrMalformed, same),
		mut("conf-list-over-max", membership(append(tooMany, 0, 0)...), wire.ErrMalformed, same),
		mut("conf-members-over-max", membership(overMembers...), wire.ErrMalformed, same),
		mut("conf-long", membership(1, 1, 0, 0), wire.ErrTruncated, func(b []byte) []byte { b[7] = 9; return b }),
		mut("found-2", value, wire.ErrMalformed, func(b []byte) []byte { b[5] = 2; return b }),
		mut("notfound-with-value", value, wire.ErrMalformed, func(b []byte) []byte { b[5] = 0; return b }),
		mut("code-0", errf, wire.ErrMalformed, func(b []byte) []byte { b[5] = 0; return b }),
		mut("code-9", errf, wire.ErrMalformed, func(b []byte) []byte { b[5] = 9; return b }),
		mut("role-4", status, wire.ErrMalformed, func(b []byte) []byte { b[5] = 4; return b }),
		mut("type-63", prop, wire.ErrType, func(b []byte) []byte { b[2] = 63; return b }),
		mut("type-76", prop, wire.ErrType, func(b []byte) []byte { b[2] = 76; return b }),
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
		if m.err == nil { // a control: the valid frame the others deviate from
			if _, cerr := f.ConfState(); cerr != nil {
				t.Errorf("%s: %v", m.name, cerr)
			}
			continue
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
		"type 76":         {wire.ClientFrame{Type: 76}, 0, wire.ErrType},
		"change 0":        {wire.ClientFrame{Type: wire.ClientConfChange, Target: 4}, 0, wire.ErrMalformed},
		"change 4":        {wire.ClientFrame{Type: wire.ClientConfChange, Change: 4, Target: 4}, 0, wire.ErrMalformed},
		"change target 0": {wire.ClientFrame{Type: wire.ClientConfChange, Change: raft.ConfRemove}, 0, wire.ErrMalformed},
		"transfer to 0":   {wire.ClientFrame{Type: wire.ClientTransferLeader}, 0, wire.ErrMalformed},
		"no conf":         {wire.ClientFrame{Type: wire.ClientMembership, Node: 1}, 0, wire.ErrMalformed},
		"bad conf": {wire.ClientFrame{Type: wire.ClientMembership, Node: 1,
			Data: raft.AppendConfState(nil, raft.ConfState{Voters: []raft.NodeID{2, 1}})}, 0, wire.ErrMalformed},
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
	for typ := wire.ClientType(0); typ < 255; typ++ {
		req := typ == wire.ClientPropose || typ == wire.ClientRead || typ == wire.ClientStaleRead ||
			typ == wire.ClientStatusRequest || typ == wire.ClientConfChange || typ == wire.ClientTransferLeader ||
			typ == wire.ClientMembershipRequest
		admin := typ == wire.ClientConfChange || typ == wire.ClientTransferLeader || typ == wire.ClientMembershipRequest
		if typ.IsRequest() != req || typ.IsAdmin() != admin || typ.Valid() != (typ >= 64 && typ <= 75) {
			t.Errorf("%v: IsRequest %v IsAdmin %v Valid %v", typ, typ.IsRequest(), typ.IsAdmin(), typ.Valid())
		}
	}
	// ConfState decodes only a ClientMembership.
	if _, err := (&wire.ClientFrame{Type: wire.ClientValue, Data: []byte{1, 1, 0, 0}}).ConfState(); !errors.Is(err, raft.ErrInvalidConf) {
		t.Errorf("ConfState of a ClientValue: %v", err)
	}
}

// TestClientRoundTrip encodes random frames of every type and decodes
// them back; the largest Data that fits is exactly the bound.
func TestClientRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	u := func() uint64 { return rng.Uint64() >> rng.IntN(64) }
	for i := 0; i < 5000; i++ {
		f := wire.ClientFrame{Type: wire.ClientType(64 + rng.IntN(12)), RequestID: u()}
		var conf raft.ConfState // ClientMembership
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
		case wire.ClientConfChange:
			f.Change, f.Target = raft.ConfChangeType(1+rng.IntN(3)), raft.NodeID(1+u()/2)
		case wire.ClientTransferLeader:
			f.Target = raft.NodeID(1 + u()/2)
		case wire.ClientMembership:
			f.Node, f.Term, f.Leader = raft.NodeID(u()), raft.Term(u()), raft.NodeID(u())
			conf = randomConf(rng)
			f.Data = raft.AppendConfState(nil, conf)
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
		if g.Type == wire.ClientMembership { // what the frame carries is what raft decodes
			if got, err := g.ConfState(); err != nil || !got.Equal(conf) {
				t.Fatalf("ConfState %+v, %v; want %+v", got, err, conf)
			}
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

// randomConf returns a valid configuration of up to raft.MaxMembers
// members with IDs of every size, joint or not.
func randomConf(rng *rand.Rand) raft.ConfState {
	n := 1 + rng.IntN(raft.MaxMembers)
	seen := map[raft.NodeID]bool{}
	var ids []raft.NodeID
	for len(ids) < n {
		id := raft.NodeID(1 + rng.Uint64()>>rng.IntN(64)/2)
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var cs raft.ConfState
	for _, id := range ids {
		switch r := rng.IntN(8); {
		case r < 4 || len(cs.Voters) == 0:
			cs.Voters = append(cs.Voters, id)
			if r == 0 {
				cs.VotersOutgoing = append(cs.VotersOutgoing, id)
			}
		case r < 6:
			cs.VotersOutgoing = append(cs.VotersOutgoing, id)
		default:
			cs.Learners = append(cs.Learners, id)
		}
	}
	for _, l := range []*[]raft.NodeID{&cs.Voters, &cs.VotersOutgoing, &cs.Learners} {
		slices.Sort(*l)
	}
	return cs
}

// TestClientConfBound: the largest configuration with IDs below 2^14 —
// 64 voters listed in both voter lists (259 bytes, docs/WIRE.md §4) —
// fits a sealed client datagram with every other field at 2^64-1; a
// configuration of 65 members is refused.
func TestClientConfBound(t *testing.T) {
	var cs raft.ConfState
	for i := range raft.MaxMembers {
		cs.Voters = append(cs.Voters, raft.NodeID(1<<14-raft.MaxMembers+i))
	}
	cs.VotersOutgoing = slices.Clone(cs.Voters)
	f := wire.ClientFrame{Type: wire.ClientMembership, RequestID: math.MaxUint64, Node: math.MaxUint64,
		Term: math.MaxUint64, Leader: math.MaxUint64, Data: raft.AppendConfState(nil, cs)}
	if len(f.Data) != 259 {
		t.Fatalf("configuration of %d bytes", len(f.Data))
	}
	const sealedMax = wire.MaxClientFrameBytes - 41 // seal.Overhead (docs/CLIENT.md)
	b, err := wire.AppendClientFrame(nil, math.MaxUint64, &f, sealedMax)
	if err != nil {
		t.Fatalf("64 members: %v", err)
	}
	t.Logf("64 voters in both lists, IDs below 2^14, every other value 2^64-1: %d bytes", len(b))
	cs.Learners = append(cs.Learners, 1<<14)
	f.Data = raft.AppendConfState(nil, cs)
	if _, err := wire.AppendClientFrame(nil, 1, &f, 0); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("65 members: %v", err)
	}
}

func checkClient(t *testing.T, data []byte, cluster wire.ClusterID) {
	var f wire.ClientFrame
	if err := wire.DecodeClientFrame(data, cluster, &f, 0); err != nil {
		checkTyped(t, err, true)
		return
	}
	if f.Type == wire.ClientMembership { // wire's check agrees with raft's
		if _, err := f.ConfState(); err != nil {
			t.Fatalf("%x decodes, but its configuration does not: %v", data, err)
		}
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

package kv_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

func sameCommand(a, b kv.Command) bool {
	return a.Op == b.Op && a.ClientID == b.ClientID && a.Seq == b.Seq &&
		bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && bytes.Equal(a.Expected, b.Expected)
}

func TestCommandRoundTrip(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	cmds := []kv.Command{
		kv.Register(),
		{Op: kv.OpPut, ClientID: 1, Seq: 1, Key: b("k"), Value: b("v")},
		{Op: kv.OpPut, ClientID: 1 << 63, Seq: 1<<64 - 1, Key: long, Value: nil},
		{Op: kv.OpGet, ClientID: 7, Seq: 300, Key: b("")},
		{Op: kv.OpDelete, ClientID: 7, Seq: 301, Key: b("gone")},
		{Op: kv.OpCAS, ClientID: 9, Seq: 2, Key: b("k"), Expected: b("old"), Value: b("new")},
	}
	for _, c := range cmds {
		enc := c.AppendBinary([]byte("prefix"))
		if string(enc[:6]) != "prefix" {
			t.Fatalf("AppendBinary clobbered the prefix")
		}
		enc = enc[6:]
		var got kv.Command
		if err := kv.DecodeCommand(enc, &got); err != nil {
			t.Fatalf("%v: decode %x: %v", c.Op, enc, err)
		}
		if !sameCommand(got, c) {
			t.Fatalf("%v: got %+v, want %+v", c.Op, got, c)
		}
		if again := got.AppendBinary(nil); !bytes.Equal(again, enc) {
			t.Fatalf("%v: re-encoding gives %x, want %x", c.Op, again, enc)
		}
		// Every proper prefix is truncated.
		for i := range len(enc) {
			if err := kv.DecodeCommand(enc[:i], &got); !errors.Is(err, kv.ErrTruncated) {
				t.Fatalf("%v: prefix %d: err %v", c.Op, i, err)
			}
		}
	}
}

func TestCommandEncodingIsCompact(t *testing.T) {
	c := kv.Command{Op: kv.OpPut, ClientID: 5, Seq: 1, Key: b("k"), Value: b("v")}
	if got, want := c.AppendBinary(nil), []byte{2, 5, 1, 1, 'k', 1, 'v'}; !bytes.Equal(got, want) {
		t.Fatalf("put encodes as %x, want %x", got, want)
	}
	// Fields an op does not use are not encoded.
	r := kv.Command{Op: kv.OpRegister, ClientID: 5, Seq: 1, Key: b("k")}
	if got := r.AppendBinary(nil); !bytes.Equal(got, []byte{1}) {
		t.Fatalf("register encodes as %x", got)
	}
	g := kv.Command{Op: kv.OpGet, ClientID: 5, Seq: 1, Key: b("k"), Value: b("ignored"), Expected: b("x")}
	var got kv.Command
	if err := kv.DecodeCommand(g.AppendBinary(nil), &got); err != nil || got.Value != nil || got.Expected != nil {
		t.Fatalf("get: %+v %v", got, err)
	}
}

func TestDecodeCommandAliasesInput(t *testing.T) {
	c := kv.Command{Op: kv.OpPut, ClientID: 1, Seq: 1, Key: b("key"), Value: b("val")}
	buf := c.AppendBinary(nil)
	var got kv.Command
	if err := kv.DecodeCommand(buf, &got); err != nil {
		t.Fatal(err)
	}
	if cap(got.Key) != len(got.Key) {
		t.Fatalf("key capacity %d not clipped to %d", cap(got.Key), len(got.Key))
	}
	buf[len(buf)-1] = 'X'
	if string(got.Value) != "vaX" {
		t.Fatalf("Value does not alias the input: %q", got.Value)
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	cases := []struct {
		in   []byte
		want error
	}{
		{nil, kv.ErrTruncated},
		{[]byte{0}, kv.ErrOp},
		{[]byte{6}, kv.ErrOp},
		{[]byte{0xff}, kv.ErrOp},
		{[]byte{1, 0}, kv.ErrMalformed},                // trailing byte after register
		{[]byte{2, 1, 1, 0, 0, 0}, kv.ErrMalformed},    // trailing byte after put
		{[]byte{2, 0, 1, 0, 0}, kv.ErrMalformed},       // client 0
		{[]byte{3, 1, 0, 0}, kv.ErrMalformed},          // seq 0
		{[]byte{3, 0x81, 0x00, 1, 0}, kv.ErrMalformed}, // non-minimal client
		{[]byte{3, 1, 1, 0x80, 0x00}, kv.ErrMalformed}, // non-minimal length
		{[]byte{3, 1, 1, 5, 'a'}, kv.ErrTruncated},     // short key
		{[]byte{3, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, kv.ErrTruncated}, // 2^64-1 length
		{[]byte{3, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, kv.ErrMalformed}, // overflow
		{[]byte{5, 1, 1, 1, 'k', 1, 'e'}, kv.ErrTruncated},                                             // CAS without value
	}
	for _, tc := range cases {
		c := kv.Command{Op: kv.OpPut, Key: b("stale")}
		err := kv.DecodeCommand(tc.in, &c)
		if !errors.Is(err, tc.want) {
			t.Errorf("%x: err %v, want %v", tc.in, err, tc.want)
		}
		var de *kv.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%x: %T is not a *DecodeError", tc.in, err)
		}
		if !sameCommand(c, kv.Command{}) {
			t.Errorf("%x: command not zeroed on error: %+v", tc.in, c)
		}
	}
}

func TestResultRoundTrip(t *testing.T) {
	rs := []kv.Result{
		{Status: kv.StatusOK, ClientID: 3, Index: 3},
		{Status: kv.StatusOK, Value: b("value"), ClientID: 1 << 40, Index: raft.Index(1<<64 - 1)},
		{Status: kv.StatusCASMismatch, Value: b(""), ClientID: 2, Index: 9},
		{Status: kv.StatusFull},
	}
	for _, r := range rs {
		enc := r.AppendBinary(nil)
		var got kv.Result
		if err := kv.DecodeResult(enc, &got); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if got.Status != r.Status || got.ClientID != r.ClientID || got.Index != r.Index || !bytes.Equal(got.Value, r.Value) {
			t.Fatalf("got %+v, want %+v", got, r)
		}
		if !bytes.Equal(got.AppendBinary(nil), enc) {
			t.Fatal("re-encoding differs")
		}
		for i := range len(enc) {
			if err := kv.DecodeResult(enc[:i], &got); !errors.Is(err, kv.ErrTruncated) {
				t.Fatalf("prefix %d: %v", i, err)
			}
		}
	}
	var r kv.Result
	for _, in := range [][]byte{{0, 0, 0, 0}, {9, 0, 0, 0}} {
		if err := kv.DecodeResult(in, &r); !errors.Is(err, kv.ErrStatus) {
			t.Fatalf("%x: %v", in, err)
		}
	}
	if err := kv.DecodeResult([]byte{1, 0, 0, 0, 0}, &r); !errors.Is(err, kv.ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func TestNames(t *testing.T) {
	for op, name := range map[kv.Op]string{kv.OpRegister: "Register", kv.OpPut: "Put", kv.OpGet: "Get",
		kv.OpDelete: "Delete", kv.OpCAS: "CAS", 0: "Op(0)"} {
		if op.String() != name {
			t.Errorf("%d: %q", op, op.String())
		}
	}
	for st := kv.StatusOK; st <= kv.StatusFull; st++ {
		if !st.Valid() || len(st.String()) > 6 && st.String()[:7] == "Status(" {
			t.Errorf("status %d named %q", st, st.String())
		}
	}
	if kv.Status(0).Valid() || kv.Status(0).String() != "Status(0)" {
		t.Error("Status(0)")
	}
}

func TestSessionHelper(t *testing.T) {
	s := kv.Session{ClientID: 42}
	c1 := s.Put(b("k"), b("v"))
	c2 := s.CAS(b("k"), b("v"), b("w"))
	c3 := s.Next(kv.OpRegister, nil, nil, nil)
	c4 := s.Delete(b("k"))
	if c1.Seq != 1 || c2.Seq != 2 || c4.Seq != 3 || s.Seq != 3 {
		t.Fatalf("seqs %d %d %d, session %d", c1.Seq, c2.Seq, c4.Seq, s.Seq)
	}
	if c1.ClientID != 42 || c2.Op != kv.OpCAS || string(c2.Expected) != "v" || string(c2.Value) != "w" {
		t.Fatalf("commands %+v %+v", c1, c2)
	}
	if !sameCommand(c3, kv.Register()) {
		t.Fatalf("Next(OpRegister) = %+v", c3)
	}
	// The zero session builds commands the store refuses.
	var zero kv.Session
	var got kv.Command
	if err := kv.DecodeCommand(enc(zero.Get(b("k"))), &got); !errors.Is(err, kv.ErrMalformed) {
		t.Fatalf("zero session: %v", err)
	}
}

package kv_test

import (
	"bytes"
	"testing"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// harness feeds commands to a store at increasing log indexes.
type harness struct {
	t   testing.TB
	s   *kv.Store
	idx raft.Index
}

func newHarness(t testing.TB, opts kv.Options) *harness {
	return &harness{t: t, s: kv.New(opts)}
}

// raw applies encoded bytes at the next index and decodes the result.
func (h *harness) raw(b []byte) (kv.Result, []byte) {
	h.t.Helper()
	h.idx++
	out := h.s.Apply(h.idx, b)
	var r kv.Result
	if err := kv.DecodeResult(out, &r); err != nil {
		h.t.Fatalf("index %d: result %x does not decode: %v", h.idx, out, err)
	}
	return r, out
}

// do encodes and applies c.
func (h *harness) do(c kv.Command) kv.Result {
	h.t.Helper()
	r, _ := h.raw(c.AppendBinary(nil))
	return r
}

// register opens a session and checks that its ID is the entry's index.
func (h *harness) register() *kv.Session {
	h.t.Helper()
	r := h.do(kv.Register())
	if r.Status != kv.StatusOK || r.ClientID != uint64(h.idx) || r.Index != h.idx {
		h.t.Fatalf("register at %d: got %+v", h.idx, r)
	}
	return &kv.Session{ClientID: r.ClientID}
}

func (h *harness) want(r kv.Result, st kv.Status, value string) {
	h.t.Helper()
	if r.Status != st || string(r.Value) != value {
		h.t.Fatalf("index %d: got status %v value %q, want %v %q", h.idx, r.Status, r.Value, st, value)
	}
}

func snapshotBytes(t testing.TB, s *kv.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return buf.Bytes()
}

func b(s string) []byte { return []byte(s) }

// enc encodes a command.
func enc(c kv.Command) []byte { return c.AppendBinary(nil) }

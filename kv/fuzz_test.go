package kv_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/embraft/embraft/kv"
)

var sentinels = []error{kv.ErrTruncated, kv.ErrMalformed, kv.ErrOp, kv.ErrStatus,
	kv.ErrChecksum, kv.ErrVersion, kv.ErrLimit}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	var de *kv.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v is a %T, not a *DecodeError", err, err)
	}
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %v wraps %d sentinels", err, n)
	}
}

// FuzzDecodeCommand: any input decodes to a canonical command or to a
// sentinel error, and applying it as a log entry never panics and gives the
// same, decodable result on every replica. Seeds: testdata/fuzz/FuzzDecodeCommand.
func FuzzDecodeCommand(f *testing.F) {
	f.Add(enc(kv.Register()))
	f.Add(enc(kv.Command{Op: kv.OpCAS, ClientID: 1, Seq: 1, Key: b("k"), Expected: b(""), Value: b("v")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c kv.Command
		if err := kv.DecodeCommand(data, &c); err != nil {
			checkSentinel(t, err)
		} else if again := c.AppendBinary(nil); !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v re-encodes as %x, input %x", c, again, data)
		}
		var r kv.Result
		if err := kv.DecodeResult(data, &r); err != nil {
			checkSentinel(t, err)
		} else if again := r.AppendBinary(nil); !bytes.Equal(again, data) {
			t.Fatalf("result %+v re-encodes as %x, input %x", r, again, data)
		}

		// Two replicas with sessions 1 and 5 apply the entry, then a retry.
		var outs [2][2][]byte
		for i := range outs {
			s := kv.New(kv.Options{MaxSessions: 2, MaxKeyBytes: 8, MaxValueBytes: 8, MaxKeys: 4})
			s.Apply(1, enc(kv.Register()))
			s.Apply(5, enc(kv.Register()))
			outs[i][0] = s.Apply(6, data)
			outs[i][1] = s.Apply(7, data)
		}
		for _, out := range outs[0] {
			if err := kv.DecodeResult(out, &r); err != nil {
				t.Fatalf("result %x does not decode: %v", out, err)
			}
		}
		if !bytes.Equal(outs[0][0], outs[1][0]) || !bytes.Equal(outs[0][1], outs[1][1]) {
			t.Fatalf("replicas disagree: %x vs %x", outs[0], outs[1])
		}
		kv.DecodeResult(outs[0][0], &r)
		if r.Status == kv.StatusBadCommand && kv.DecodeCommand(data, &c) == nil {
			t.Fatalf("decodable command answered BadCommand")
		}
	})
}

// FuzzRestore: Restore never panics, and an accepted snapshot is canonical
// (Snapshot gives back the same bytes).
func FuzzRestore(f *testing.F) {
	h := newHarness(f, kv.Options{MaxSessions: 2})
	f.Add(snapshotBytes(f, h.s))
	c := h.register()
	h.do(c.Put(b("k"), b("v")))
	h.do(c.Get(b("k")))
	h.register()
	h.register()
	f.Add(snapshotBytes(f, h.s))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := kv.New(kv.Options{MaxSessions: 2, MaxKeyBytes: 8, MaxValueBytes: 8, MaxKeys: 4})
		if err := s.Restore(bytes.NewReader(data)); err != nil {
			checkSentinel(t, err)
			if s.Stats() != (kv.Stats{}) {
				t.Fatalf("failed Restore changed the store: %+v", s.Stats())
			}
			return
		}
		if again := snapshotBytes(t, s); !bytes.Equal(again, data) {
			t.Fatalf("accepted snapshot %x re-encodes as %x", data, again)
		}
	})
}

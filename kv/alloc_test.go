package kv_test

import (
	"testing"

	"github.com/embraft/embraft/kv"
)

// TestApplyPutAllocs measures applying a Put to an existing key with a
// reused command buffer: ApplyTo with a reused result buffer allocates
// nothing; Apply allocates only the returned result.
func TestApplyPutAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	h := newHarness(t, kv.Options{})
	s := h.register()
	h.do(s.Put(b("key"), b("value-0")))

	var cmd, out []byte
	key, value := []byte("key"), []byte("value-1")
	step := func(apply func()) float64 {
		return testing.AllocsPerRun(1000, func() {
			c := s.Put(key, value)
			cmd = c.AppendBinary(cmd[:0])
			h.idx++
			apply()
		})
	}
	applyTo := step(func() { out = h.s.ApplyTo(out[:0], h.idx, cmd) })
	apply := step(func() { out = h.s.Apply(h.idx, cmd) })
	retry := testing.AllocsPerRun(1000, func() {
		h.idx++
		out = h.s.ApplyTo(out[:0], h.idx, cmd)
	})
	t.Logf("allocs per applied Put to an existing key: ApplyTo %v, Apply %v; per retry (ApplyTo) %v", applyTo, apply, retry)
	var r kv.Result
	if err := kv.DecodeResult(out, &r); err != nil || r.Status != kv.StatusOK {
		t.Fatalf("last result %+v %v", r, err)
	}
	if applyTo != 0 || retry != 0 {
		t.Errorf("ApplyTo allocates: put %v, retry %v; want 0", applyTo, retry)
	}
	if apply > 1 {
		t.Errorf("Apply allocates %v per put, want at most 1 (the result)", apply)
	}
}

func BenchmarkApplyPut(b *testing.B) {
	h := newHarness(b, kv.Options{})
	s := h.register()
	h.do(s.Put([]byte("key"), []byte("value")))
	var cmd, out []byte
	b.ReportAllocs()
	for b.Loop() {
		c := s.Put([]byte("key"), []byte("value"))
		cmd = c.AppendBinary(cmd[:0])
		h.idx++
		out = h.s.ApplyTo(out[:0], h.idx, cmd)
	}
}

package sim

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/embraft/embraft/kv"
)

func put(client int, key, val string, call, ret int64) opRecord {
	return opRecord{client: client, in: kvInput{Op: kv.OpPut, Key: key, Value: val}, out: kvOutput{Status: kv.StatusOK},
		call: call, ret: ret, done: true}
}

func get(client int, key, val string, found bool, call, ret int64) opRecord {
	out := kvOutput{Status: kv.StatusNotFound}
	if found {
		out = kvOutput{Status: kv.StatusOK, Value: val}
	}
	return opRecord{client: client, in: kvInput{Op: kv.OpGet, Key: key}, out: out, call: call, ret: ret, done: true}
}

func cas(client int, key, expected, val string, status kv.Status, cur string, call, ret int64) opRecord {
	return opRecord{client: client, in: kvInput{Op: kv.OpCAS, Key: key, Value: val, Expected: expected},
		out: kvOutput{Status: status, Value: cur}, call: call, ret: ret, done: true}
}

func pending(o opRecord) opRecord {
	o.done, o.out, o.ret = false, kvOutput{}, 0
	return o
}

// TestModelRejectsNonLinearizable: histories no sequential order explains
// must be rejected, so the linearizability check can fail.
func TestModelRejectsNonLinearizable(t *testing.T) {
	bad := map[string][]opRecord{
		// A read after a completed write sees the old value (a stale read).
		"stale read": {
			put(0, "k", "a", 1, 2),
			put(0, "k", "b", 3, 4),
			get(1, "k", "a", true, 5, 6),
		},
		// A read returns a value nobody wrote.
		"phantom value": {
			put(0, "k", "a", 1, 2),
			get(1, "k", "z", true, 3, 4),
		},
		// Two CAS from the same expected value both succeed (a lost update).
		"double cas": {
			put(0, "k", "a", 1, 2),
			cas(1, "k", "a", "b", kv.StatusOK, "", 3, 10),
			cas(2, "k", "a", "c", kv.StatusOK, "", 4, 11),
		},
		// A read sees a write that had not been invoked yet.
		"read from the future": {
			get(1, "k", "a", true, 1, 2),
			put(0, "k", "a", 3, 4),
		},
		// Reads disagree on the order of two concurrent writes.
		"order flip": {
			put(0, "k", "a", 1, 10),
			put(1, "k", "b", 1, 10),
			get(2, "k", "a", true, 11, 12),
			get(3, "k", "b", true, 13, 14),
		},
		// A CAS mismatch must report the current value.
		"wrong mismatch value": {
			put(0, "k", "a", 1, 2),
			cas(1, "k", "x", "y", kv.StatusCASMismatch, "q", 3, 4),
		},
		// A pending put explains a later read of its value, but not a read
		// of the old value after another read saw the new one.
		"pending write seen then unseen": {
			put(0, "k", "a", 1, 2),
			pending(put(1, "k", "b", 3, 0)),
			get(2, "k", "b", true, 4, 5),
			get(2, "k", "a", true, 6, 7),
		},
	}
	for name, ops := range bad {
		if res := checkLinearizable(ops, 0); res != porcupine.Illegal {
			t.Errorf("%s: porcupine says %v, want Illegal", name, res)
		}
	}
}

// TestModelAcceptsLinearizable: histories with a valid order, including
// concurrency and operations that never returned, are accepted.
func TestModelAcceptsLinearizable(t *testing.T) {
	good := map[string][]opRecord{
		"sequential": {
			get(0, "k", "", false, 1, 2),
			put(0, "k", "a", 3, 4),
			cas(0, "k", "a", "b", kv.StatusOK, "", 5, 6),
			cas(0, "k", "a", "c", kv.StatusCASMismatch, "b", 7, 8),
			get(0, "k", "b", true, 9, 10),
		},
		"concurrent writes, consistent reads": {
			put(0, "k", "a", 1, 10),
			put(1, "k", "b", 1, 10),
			get(2, "k", "b", true, 11, 12),
			get(3, "k", "b", true, 13, 14),
		},
		"pending write took effect": {
			put(0, "k", "a", 1, 2),
			pending(put(1, "k", "b", 3, 0)),
			get(2, "k", "b", true, 4, 5),
			get(2, "k", "b", true, 6, 7),
		},
		"pending write never took effect": {
			put(0, "k", "a", 1, 2),
			pending(cas(1, "k", "a", "b", 0, "", 3, 0)),
			get(2, "k", "a", true, 4, 5),
		},
		"keys are independent": {
			put(0, "x", "1", 1, 2),
			put(0, "y", "2", 3, 4),
			get(1, "x", "1", true, 5, 6),
			get(1, "y", "2", true, 5, 6),
		},
		"delete": {
			put(0, "k", "a", 1, 2),
			{client: 0, in: kvInput{Op: kv.OpDelete, Key: "k"}, out: kvOutput{Status: kv.StatusOK}, call: 3, ret: 4, done: true},
			get(1, "k", "", false, 5, 6),
			cas(1, "k", "a", "b", kv.StatusNotFound, "", 7, 8),
		},
	}
	for name, ops := range good {
		if res := checkLinearizable(ops, 0); res != porcupine.Ok {
			t.Errorf("%s: porcupine says %v, want Ok", name, res)
		}
	}
}

// TestPendingReturnsAtInfinity pins the porcupine convention used for
// operations that never got an answer.
func TestPendingReturnsAtInfinity(t *testing.T) {
	h := history([]opRecord{pending(put(0, "k", "a", 1, 0))})
	if h[0].Return != math.MaxInt64 || !h[0].Output.(kvOutput).Unknown {
		t.Fatalf("pending op converted to %+v", h[0])
	}
}

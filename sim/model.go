package sim

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/embraft/embraft/kv"
)

// kvInput is a client operation as the linearizability model sees it.
type kvInput struct {
	Op       kv.Op // OpPut, OpGet, OpCAS or OpDelete
	Key      string
	Value    string // Put, CAS: the new value
	Expected string // CAS
}

// kvOutput is its answer. Unknown marks an operation that never got an
// answer: it may or may not have taken effect.
type kvOutput struct {
	Unknown bool
	Status  kv.Status
	Value   string // Get: the value read; CASMismatch: the current value
}

// keyState is the model's state of one key (the model is partitioned by
// key). It is comparable, so porcupine's default equality works.
type keyState struct {
	exists bool
	val    string
}

// kvModel is the sequential specification of the kv store's data
// operations, for porcupine: put, get, cas and delete on independent keys
// (the history is partitioned by key). Sessions do not appear: they make
// retries exactly-once, which is what lets a retried operation count as a
// single operation spanning from its first submission to its answer.
var kvModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return keyState{} },
	Step: func(state, input, output any) (bool, any) {
		return stepKV(state.(keyState), input.(kvInput), output.(kvOutput))
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		res := "?"
		if !out.Unknown {
			res = out.Status.String()
			if out.Value != "" {
				res += " " + quote(out.Value)
			}
		}
		switch in.Op {
		case kv.OpPut:
			return fmt.Sprintf("put(%s, %s) -> %s", in.Key, quote(in.Value), res)
		case kv.OpCAS:
			return fmt.Sprintf("cas(%s, %s => %s) -> %s", in.Key, quote(in.Expected), quote(in.Value), res)
		}
		return fmt.Sprintf("%s(%s) -> %s", in.Op, in.Key, res)
	},
	DescribeState: func(state any) string {
		s := state.(keyState)
		if !s.exists {
			return "<absent>"
		}
		return quote(s.val)
	},
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func stepKV(s keyState, in kvInput, out kvOutput) (bool, keyState) {
	next := s
	switch in.Op {
	case kv.OpPut:
		next = keyState{exists: true, val: in.Value}
		return out.Unknown || out.Status == kv.StatusOK, next
	case kv.OpGet:
		switch {
		case out.Unknown:
			return true, s
		case s.exists:
			return out.Status == kv.StatusOK && out.Value == s.val, s
		}
		return out.Status == kv.StatusNotFound, s
	case kv.OpDelete:
		next = keyState{}
		if out.Unknown {
			return true, next
		}
		if s.exists {
			return out.Status == kv.StatusOK, next
		}
		return out.Status == kv.StatusNotFound, s
	case kv.OpCAS:
		if s.exists && s.val == in.Expected {
			next = keyState{exists: true, val: in.Value}
		}
		switch {
		case out.Unknown:
			return true, next
		case !s.exists:
			return out.Status == kv.StatusNotFound, s
		case s.val == in.Expected:
			return out.Status == kv.StatusOK, next
		}
		return out.Status == kv.StatusCASMismatch && out.Value == s.val, s
	}
	return false, s
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := op.Input.(kvInput).Key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

// history converts recorded operations for porcupine. An operation that
// never got an answer has an unknown output and returns at +infinity
// (math.MaxInt64): porcupine may linearize it anywhere after its call,
// including after everything else, which is the same as never happening.
func history(ops []opRecord) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		op := porcupine.Operation{ClientId: o.client, Input: o.in, Call: o.call, Output: o.out, Return: o.ret}
		if !o.done {
			op.Output, op.Return = kvOutput{Unknown: true}, math.MaxInt64
		}
		out = append(out, op)
	}
	return out
}

// checkLinearizable runs porcupine on the recorded history.
func checkLinearizable(ops []opRecord, timeout time.Duration) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(kvModel, history(ops), timeout)
}

package kv_test

import (
	"fmt"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// Example applies commands straight to a Store, as a node would apply
// committed log entries, and shows a retried Put applied only once.
func Example() {
	store := kv.New(kv.Options{})
	var index raft.Index
	apply := func(cmd kv.Command) kv.Result { // encode, "commit", apply
		return applyBytes(store, &index, cmd.AppendBinary(nil))
	}

	// Two clients register; each session's ClientID is its entry's index.
	alice := kv.Session{ClientID: apply(kv.Register()).ClientID}
	bob := kv.Session{ClientID: apply(kv.Register()).ClientID}
	fmt.Println("alice:", alice.ClientID, "bob:", bob.ClientID)

	// Alice puts x=1. Say the reply is lost, so she will retry.
	put := alice.Put([]byte("x"), []byte("1"))
	putBytes := put.AppendBinary(nil)
	r := applyBytes(store, &index, putBytes)
	fmt.Println("put x=1:", r.Status, "at index", r.Index)

	// Meanwhile Bob overwrites x.
	bobPut := bob.Put([]byte("x"), []byte("2"))
	r = apply(bobPut)
	fmt.Println("bob put x=2:", r.Status, "at index", r.Index)

	// Alice's retry (the same bytes) commits later: it is answered from
	// her session's cache, with the original index, and not applied again.
	r = applyBytes(store, &index, putBytes)
	fmt.Println("retried put x=1:", r.Status, "at index", r.Index)
	v, _ := store.Get([]byte("x"))
	fmt.Println("x =", string(v))

	// Output:
	// alice: 1 bob: 2
	// put x=1: OK at index 3
	// bob put x=2: OK at index 4
	// retried put x=1: OK at index 3
	// x = 2
}

func applyBytes(s *kv.Store, index *raft.Index, cmd []byte) kv.Result {
	*index++
	var r kv.Result
	if err := kv.DecodeResult(s.Apply(*index, cmd), &r); err != nil {
		panic(err)
	}
	return r
}

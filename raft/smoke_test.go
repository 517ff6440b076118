package raft

import "testing"

func TestSmokeElectAndReplicate(t *testing.T) {
	nw := newNetwork(t, 5, 1, nil)
	nw.elect(1)
	nw.propose(1, "a")
	nw.propose(3, "b") // forwarded
	nw.tick(3)
	for _, id := range nw.ids {
		if got := nw.dataOf(id); len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
	nw.checkApplied()
}

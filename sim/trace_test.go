package sim

import (
	"os"
	"strconv"
	"testing"
)

// TestTrace prints the membership, crash, partition and leader events of
// one run (every event with SIM_TRACE_ALL=1; pre-vote off with
// SIM_TRACE_NOPV=1), to study a seed:
//
//	SIM_TRACE_SEED=17 SIM_TRACE_NODES=3 go test -run TestTrace -v ./sim/
func TestTrace(t *testing.T) {
	seed, _ := strconv.Atoi(os.Getenv("SIM_TRACE_SEED"))
	if seed == 0 {
		t.Skip("set SIM_TRACE_SEED (and SIM_TRACE_NODES, SIM_TRACE_STEPS, SIM_TRACE_ALL, SIM_TRACE_NOPV)")
	}
	nodes, _ := strconv.Atoi(os.Getenv("SIM_TRACE_NODES"))
	steps, _ := strconv.Atoi(os.Getenv("SIM_TRACE_STEPS"))
	all := os.Getenv("SIM_TRACE_ALL") != ""
	traceEvent = func(e event) {
		switch e.kind {
		case evChurn, evConf, evCrash, evRestart, evLeader, evPhase, evPartition, evHeal:
			t.Log(e.String())
		default:
			if all {
				t.Log(e.String())
			}
		}
	}
	defer func() { traceEvent = nil }()
	_, err := Run(Config{Seed: uint64(seed), Nodes: nodes, Steps: steps, DisablePreVote: os.Getenv("SIM_TRACE_NOPV") != ""})
	t.Log(err)
}

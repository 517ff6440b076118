package sim_test

import (
	"fmt"

	"github.com/embraft/embraft/sim"
)

// One seed: five production cores, their storage and kv state machines,
// clients, every fault kind and membership churn, on a virtual clock. Run
// returns a *sim.Violation (with the events that led to it and the command
// that replays it) if any checked property failed; the same Config always
// gives the same run.
func Example() {
	rep, err := sim.Run(sim.Config{Seed: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	again, _ := sim.Run(sim.Config{Seed: 42})
	fmt.Println("linearizable:", rep.Linearizable, "pending:", rep.Pending)
	fmt.Println("same run again:", rep.EventHash == again.EventHash)
	// Output:
	// linearizable: true pending: 0
	// same run again: true
}

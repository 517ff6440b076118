//go:build race

package sim

// raceEnabled: under the race detector a run is ~15x slower, so
// TestSimSeeds runs fewer seeds (see seedBudget).
const raceEnabled = true

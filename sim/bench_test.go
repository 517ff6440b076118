package sim

import "testing"

// BenchmarkRun measures one default run (5 nodes, 5000 steps, all faults).
func BenchmarkRun(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		if _, err := Run(Config{Seed: uint64(i + 1)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunCheckEveryStep is BenchmarkRun with the pairwise log
// matching check after every step.
func BenchmarkRunCheckEveryStep(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		if _, err := Run(Config{Seed: uint64(i + 1), CheckEvery: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

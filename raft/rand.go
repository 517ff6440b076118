package raft

// prng is SplitMix64: tiny, allocation-free, and fully determined by its
// seed, so the same Config.Seed and inputs give the same election timeouts
// on every platform (including 32-bit microcontrollers).
type prng struct{ state uint64 }

func newPRNG(seed uint64, id NodeID) prng {
	// Nodes sharing one cluster seed must draw independent timeouts. The
	// ID goes through the mixer first: a plain seed^(id*gamma) would put
	// every node on the same sequence shifted by a few draws (SplitMix64
	// adds gamma per draw), locking nodes into identical timeouts.
	idMix := prng{state: uint64(id)}
	return prng{state: seed ^ idMix.next()}
}

func (p *prng) next() uint64 {
	p.state += 0x9E3779B97F4A7C15
	z := p.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// intn returns a value in [0, n) for n > 0. The modulo bias is irrelevant
// for election timeouts of a few dozen ticks.
func (p *prng) intn(n int) int { return int(p.next() % uint64(n)) }

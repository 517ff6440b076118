package file

import "github.com/embraft/embraft/raft"

// cacheEntryOverhead is what one cached entry costs besides its payload
// (the raft.Entry value), charged against CacheBytes.
const cacheEntryOverhead = 48

// tailCache holds the most recently appended entries, so that a leader
// replicating fresh entries to followers reads them without I/O. It is a
// ring, so the steady state allocates nothing. Entries' Data alias the
// slices given to Append, which the core never modifies; callers get
// copies of the Entry values, never the ring.
type tailCache struct {
	ring  []raft.Entry // length 0 or a power of two
	head  int          // ring position of the oldest entry
	n     int          // entries cached, consecutive indexes
	bytes int
	max   int // <= 0: disabled
}

func entryCost(e *raft.Entry) int { return len(e.Data) + cacheEntryOverhead }

func (c *tailCache) at(k int) *raft.Entry { return &c.ring[(c.head+k)&(len(c.ring)-1)] }

// lo returns the first cached index, or 0 if the cache is empty.
func (c *tailCache) lo() raft.Index {
	if c.n == 0 {
		return 0
	}
	return c.at(0).Index
}

// append adds ents, which follow the cached ones (Append truncated the
// cache first), evicting the oldest entries over the bound as it goes.
func (c *tailCache) append(ents []raft.Entry) {
	if c.max <= 0 {
		return
	}
	if c.n > 0 && c.at(c.n-1).Index+1 != ents[0].Index {
		c.truncate(0)
	}
	for i := range ents {
		if c.n == len(c.ring) {
			c.grow()
		}
		*c.at(c.n) = ents[i]
		c.n++
		c.bytes += entryCost(&ents[i])
		for c.bytes > c.max && c.n > 0 {
			c.popFront()
		}
	}
}

func (c *tailCache) grow() {
	ring := make([]raft.Entry, max(64, 2*len(c.ring)))
	for k := range c.n {
		ring[k] = *c.at(k)
	}
	c.ring, c.head = ring, 0
}

// popFront drops the oldest entry, clearing it so its payload can be
// collected.
func (c *tailCache) popFront() {
	e := c.at(0)
	c.bytes -= entryCost(e)
	*e = raft.Entry{}
	c.head = (c.head + 1) & (len(c.ring) - 1)
	c.n--
}

// truncate drops entries at index from and later.
func (c *tailCache) truncate(from raft.Index) {
	for c.n > 0 && c.at(c.n-1).Index >= from {
		e := c.at(c.n - 1)
		c.bytes -= entryCost(e)
		*e = raft.Entry{}
		c.n--
	}
}

// compact drops entries at index i and earlier.
func (c *tailCache) compact(i raft.Index) {
	for c.n > 0 && c.at(0).Index <= i {
		c.popFront()
	}
}

// appendRange appends copies of the cached entries [lo, hi) to out; the
// caller guarantees they are cached.
func (c *tailCache) appendRange(out []raft.Entry, lo, hi raft.Index) []raft.Entry {
	base := c.lo()
	for i := lo; i < hi; i++ {
		out = append(out, *c.at(int(i - base)))
	}
	return out
}

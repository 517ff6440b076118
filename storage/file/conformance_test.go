package file_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
	"github.com/embraft/embraft/storage/memory"
)

// pair drives a file storage and a memory storage with the same calls.
type pair struct {
	t   *testing.T
	dir string
	o   file.Options
	f   *file.Storage
	m   *memory.Storage
}

// TestConformance runs random sequences of appends (many overlapping, so
// they truncate), hard-state updates, syncs and restarts against both
// storages, and compares every read after each step.
func TestConformance(t *testing.T) {
	for _, cache := range []int{-1, 0, 2048} {
		for seed := uint64(1); seed <= 6; seed++ {
			t.Run(fmt.Sprintf("cache=%d/seed=%d", cache, seed), func(t *testing.T) {
				o := opts(func(o *file.Options) { o.CacheBytes = cache; o.SegmentBytes = 1 << 10 })
				p := &pair{t: t, dir: t.TempDir(), o: o, m: memory.New(memory.Options{})}
				p.f = mustOpen(t, p.dir, o)
				defer func() { _ = p.f.Close() }()
				p.run(rand.New(rand.NewPCG(seed, 99)), 300)
			})
		}
	}
}

func (p *pair) run(rng *rand.Rand, steps int) {
	hs := raft.HardState{Term: 1}
	term := hs.Term
	p.both(p.f.SetHardState(hs), p.m.SetHardState(hs), "SetHardState")
	for step := range steps {
		last, _ := p.m.LastIndex()
		switch r := rng.IntN(100); {
		case r < 5:
			p.reopen()
		case r < 15:
			// Like the core: the term only grows, commit only grows and
			// never past the log.
			term++
			hs = raft.HardState{Term: term, Vote: raft.NodeID(rng.IntN(5)), Commit: hs.Commit + raft.Index(rng.IntN(int(last-hs.Commit)+1))}
			p.both(p.f.SetHardState(hs), p.m.SetHardState(hs), "SetHardState")
		default:
			lo := last + 1
			if last > hs.Commit && r < 40 {
				// A new leader's entries replace an uncommitted suffix; the
				// new term reaches the hard state first.
				lo = hs.Commit + 1 + raft.Index(rng.IntN(int(last-hs.Commit)))
				term++
				hs.Term, hs.Vote = term, 0
				p.both(p.f.SetHardState(hs), p.m.SetHardState(hs), "SetHardState")
			}
			p.appendChecked(mkEnts(lo, lo+raft.Index(rng.IntN(20)), term, step), last)
		}
		if rng.IntN(3) == 0 {
			p.both(p.f.Sync(), p.m.Sync(), "Sync")
		}
		p.compare(rng)
	}
}

// appendChecked appends to both and checks that entries read before the
// Append (which may truncate what they came from) did not change.
func (p *pair) appendChecked(ents []raft.Entry, last raft.Index) {
	p.t.Helper()
	held, _ := p.f.Entries(1, last+1, 1<<30)
	heldCopy := cloneEnts(held)
	p.both(p.f.Append(ents), p.m.Append(ents), "Append")
	sameEnts(p.t, "entries held across an Append", held, heldCopy)
}

func (p *pair) both(ferr, merr error, op string) {
	p.t.Helper()
	if !errors.Is(ferr, merr) && !(ferr == nil && merr == nil) {
		p.t.Fatalf("%s: file %v, memory %v", op, ferr, merr)
	}
}

func (p *pair) reopen() {
	p.t.Helper()
	if err := p.f.Close(); err != nil {
		p.t.Fatal(err)
	}
	p.f = mustOpen(p.t, p.dir, p.o)
}

// compare checks every read of the two storages, in range and out of it.
func (p *pair) compare(rng *rand.Rand) {
	p.t.Helper()
	fhs, _ := p.f.InitialState()
	mhs, _ := p.m.InitialState()
	ffirst, _ := p.f.FirstIndex()
	mfirst, _ := p.m.FirstIndex()
	flast, _ := p.f.LastIndex()
	mlast, _ := p.m.LastIndex()
	if fhs != mhs || ffirst != mfirst || flast != mlast {
		p.t.Fatalf("file hs %+v first %d last %d; memory hs %+v first %d last %d", fhs, ffirst, flast, mhs, mfirst, mlast)
	}
	for i := raft.Index(0); i <= mlast+1; i++ {
		ft, ferr := p.f.Term(i)
		mt, merr := p.m.Term(i)
		if ft != mt || !errors.Is(ferr, merr) {
			p.t.Fatalf("Term(%d): file %d %v, memory %d %v", i, ft, ferr, mt, merr)
		}
	}
	for range 8 {
		lo, hi := raft.Index(rng.IntN(int(mlast)+2)), raft.Index(rng.IntN(int(mlast)+3))
		max := rng.IntN(600)
		fe, ferr := p.f.Entries(lo, hi, max)
		me, merr := p.m.Entries(lo, hi, max)
		if !errors.Is(ferr, merr) && !(ferr == nil && merr == nil) {
			p.t.Fatalf("Entries(%d, %d, %d): file %v, memory %v", lo, hi, max, ferr, merr)
		}
		sameEnts(p.t, fmt.Sprintf("Entries(%d, %d, %d)", lo, hi, max), fe, me)
	}
}

func cloneEnts(ents []raft.Entry) []raft.Entry {
	out := make([]raft.Entry, len(ents))
	for i, e := range ents {
		out[i] = e
		out[i].Data = append([]byte(nil), e.Data...)
	}
	return out
}

func sameEnts(t *testing.T, what string, got, want []raft.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Index != w.Index || g.Term != w.Term || g.Type != w.Type || string(g.Data) != string(w.Data) {
			t.Fatalf("%s: entry %d is %d/%d/%q, want %d/%d/%q", what, i, g.Index, g.Term, g.Data, w.Index, w.Term, w.Data)
		}
	}
}

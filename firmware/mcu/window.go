package mcu

import (
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage"
)

// DefaultWindowEntries is how many log entries a node keeps in RAM, as the
// seed did (heapless::Vec of 256).
const DefaultWindowEntries = 256

// compactSlack is how far the safe floor must pass the window's start
// before the window is compacted: compaction copies the window, so it runs
// once per compactSlack entries, not once per entry.
const compactSlack = 32

// ErrInvalidEntries: an Append whose entries are not contiguous, whose terms
// decrease, or that leaves a gap after the stored log.
var ErrInvalidEntries = errors.New("mcu: invalid entries for append")

// Progress tracks, for every node of the firmware, the highest index its
// state machine applied and the last index its store holds. Its Floor is
// the highest index every node has applied: those entries are in every
// node's state machine and durable log, so no node will ever ask a peer
// for them and a store may drop them from RAM.
//
// This is the firmware's stand-in for snapshots, which the core does not
// have yet (a follower behind a compacted leader would need one). It is only
// possible because all the nodes live in one image. The node goroutines
// update it (their state machines and stores); nothing waits for a
// monitor to run, which under TinyGo's cooperative scheduler may be late.
type Progress struct {
	applied, last []atomic.Uint64
}

// NewProgress tracks nodes 1..n.
func NewProgress(n int) *Progress {
	return &Progress{applied: make([]atomic.Uint64, n), last: make([]atomic.Uint64, n)}
}

// Applied records that node id's state machine applied index i.
func (p *Progress) Applied(id raft.NodeID, i raft.Index) {
	if p != nil && int(id) >= 1 && int(id) <= len(p.applied) {
		p.applied[id-1].Store(uint64(i))
	}
}

// Stored records that node id's store holds entries up to index i.
func (p *Progress) Stored(id raft.NodeID, i raft.Index) {
	if p != nil && int(id) >= 1 && int(id) <= len(p.last) {
		p.last[id-1].Store(uint64(i))
	}
}

// Floor returns the highest index applied on every node (0 for a nil
// Progress: never compact).
func (p *Progress) Floor() raft.Index {
	if p == nil || len(p.applied) == 0 {
		return 0
	}
	f := p.applied[0].Load()
	for i := range p.applied {
		f = min(f, p.applied[i].Load())
	}
	return raft.Index(f)
}

// Backlog returns how many entries beyond the floor the fullest store
// holds: about the largest RAM window in the cluster.
func (p *Progress) Backlog() int {
	if p == nil {
		return 0
	}
	var last uint64
	for i := range p.last {
		last = max(last, p.last[i].Load())
	}
	return int(last) - int(p.Floor())
}

// window is the bounded part of a log a store keeps in RAM: at most max
// entries. ents[0] is a dummy holding the index and term of the entry
// before the first one kept, so Term(FirstIndex()-1) always answers.
// offs, when used (file store), holds each entry's frame offset in its
// segment file (offs[0] is the end of the dummy's frame).
//
// Slices handed out by entries stay valid: the array behind ents is only
// ever extended past its length, never overwritten; replacing entries
// (truncation, compaction) copies into a new array.
type window struct {
	ents []raft.Entry
	offs []int64
	max  int
}

func newWindow(max int, prev raft.Index, prevTerm raft.Term, withOffsets bool) window {
	w := window{max: max}
	w.ents = make([]raft.Entry, 1, w.capFor(1))
	w.ents[0] = raft.Entry{Index: prev, Term: prevTerm}
	if withOffsets {
		w.offs = make([]int64, 1, w.capFor(1))
	}
	return w
}

func (w *window) first() raft.Index { return w.ents[0].Index + 1 }
func (w *window) last() raft.Index  { return w.ents[0].Index + raft.Index(len(w.ents)) - 1 }
func (w *window) size() int         { return len(w.ents) - 1 }

func (w *window) term(i raft.Index) (raft.Term, error) {
	switch {
	case i < w.ents[0].Index:
		return 0, raft.ErrCompacted
	case i > w.last():
		return 0, raft.ErrUnavailable
	}
	return w.ents[i-w.ents[0].Index].Term, nil
}

func (w *window) entries(lo, hi raft.Index, maxBytes int) ([]raft.Entry, error) {
	switch {
	case lo <= w.ents[0].Index:
		return nil, raft.ErrCompacted
	case hi > w.last()+1:
		return nil, raft.ErrUnavailable
	case lo >= hi:
		return nil, nil
	}
	ents := w.ents[lo-w.ents[0].Index : hi-w.ents[0].Index]
	size := 0
	for i := range ents {
		size += len(ents[i].Data)
		if i > 0 && size > maxBytes {
			return ents[:i], nil
		}
	}
	return ents, nil
}

// check validates an append before anything changes: contiguous indexes,
// known types, terms that never decrease (within the batch and against the
// entry it follows), no gap and nothing below the window.
func (w *window) check(ents []raft.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].Index
	switch {
	case first <= w.ents[0].Index:
		return raft.ErrCompacted
	case first > w.last()+1:
		return ErrInvalidEntries
	}
	prevTerm, _ := w.term(first - 1)
	for i := range ents {
		e := &ents[i]
		if e.Index != first+raft.Index(i) || e.Term < prevTerm ||
			(e.Type != raft.EntryNormal && e.Type != raft.EntryNoop && e.Type != raft.EntryConfChange) {
			return ErrInvalidEntries
		}
		prevTerm = e.Term
	}
	return nil
}

// room reports whether n entries starting at index first fit the bound.
func (w *window) room(first raft.Index, n int) error {
	kept := int(first - w.first())
	if kept+n > w.max {
		return errFull(w.max)
	}
	return nil
}

func errFull(max int) error {
	return &fullError{max}
}

type fullError struct{ max int }

func (e *fullError) Error() string {
	return "storage: full: the in-RAM log window holds " + strconv.Itoa(e.max) + " entries"
}
func (e *fullError) Unwrap() error { return storage.ErrFull }

// put stores checked entries (their Data already copied) with their frame
// offsets (nil for a memory store), replacing any entries at or after
// ents[0].Index.
func (w *window) put(ents []raft.Entry, offs []int64) {
	if len(ents) == 0 {
		return
	}
	keep := int(ents[0].Index - w.ents[0].Index) // includes the dummy
	if keep == len(w.ents) {
		w.ents = append(w.ents, ents...)
		if w.offs != nil {
			w.offs = append(w.offs, offs...)
		}
		return
	}
	fresh := make([]raft.Entry, keep, w.capFor(keep+len(ents)))
	copy(fresh, w.ents[:keep])
	w.ents = append(fresh, ents...)
	if w.offs != nil {
		fo := make([]int64, keep, w.capFor(keep+len(ents)))
		copy(fo, w.offs[:keep])
		w.offs = append(fo, offs...)
	}
}

// capFor sizes a new array for n slots: room to grow by compactSlack
// before append reallocates, never beyond the bound. A window that is
// mostly compacted away costs RAM for what it holds, not for its bound.
func (w *window) capFor(n int) int { return min(n+2*compactSlack, w.max+1) }

// compactTo drops the entries up to i (keeping i as the dummy) into a new
// array. It requires i within the window.
func (w *window) compactTo(i raft.Index) {
	if i <= w.ents[0].Index || i > w.last() {
		return
	}
	k := int(i - w.ents[0].Index)
	n := len(w.ents) - k
	fresh := make([]raft.Entry, 0, w.capFor(n))
	fresh = append(fresh, raft.Entry{Index: i, Term: w.ents[k].Term})
	w.ents = append(fresh, w.ents[k+1:]...)
	if w.offs != nil {
		fo := make([]int64, 0, w.capFor(n))
		w.offs = append(fo, w.offs[k:]...)
	}
}

// maybeCompact compacts to the floor once it is compactSlack entries past
// the window's start, or whenever needed to make room for n more entries.
func (w *window) maybeCompact(floor raft.Index, n int) {
	floor = min(floor, w.last())
	if floor <= w.ents[0].Index {
		return
	}
	if floor-w.ents[0].Index >= compactSlack || w.size()+n > w.max {
		w.compactTo(floor)
	}
}

// cloneData copies the payloads of ents into one new allocation, so that a
// stored entry never pins the frame it was decoded from.
func cloneData(ents []raft.Entry) []raft.Entry {
	total := 0
	for i := range ents {
		total += len(ents[i].Data)
	}
	out := make([]raft.Entry, len(ents))
	buf := make([]byte, 0, total)
	for i, e := range ents {
		if len(e.Data) > 0 {
			at := len(buf)
			buf = append(buf, e.Data...)
			e.Data = buf[at:len(buf):len(buf)]
		} else {
			e.Data = nil
		}
		out[i] = e
	}
	return out
}

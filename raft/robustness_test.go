package raft

import (
	"errors"
	"testing"
)

var errDisk = errors.New("disk read failed")

// failingStorage wraps MemoryStorage and fails chosen reads.
type failingStorage struct {
	*MemoryStorage
	failTerm    Index // Term(failTerm) fails when non-zero
	failEntries bool
}

func (s *failingStorage) Term(i Index) (Term, error) {
	if s.failTerm != 0 && i == s.failTerm {
		return 0, errDisk
	}
	return s.MemoryStorage.Term(i)
}

func (s *failingStorage) Entries(lo, hi Index, maxBytes int) ([]Entry, error) {
	if s.failEntries {
		return nil, errDisk
	}
	return s.MemoryStorage.Entries(lo, hi, maxBytes)
}

func storedLog(terms ...Term) *MemoryStorage {
	st := NewMemoryStorage()
	for i, t := range terms {
		_ = st.Append([]Entry{{Term: t, Index: Index(i + 1)}})
	}
	return st
}

// TestNoVoteWhenOwnLogUnreadable: a voter that cannot read its own last
// term must not grant a vote (it could elect a leader missing committed
// entries). Reference: §5.4.1.
func TestNoVoteWhenOwnLogUnreadable(t *testing.T) {
	st := &failingStorage{MemoryStorage: storedLog(1, 2, 2), failTerm: 3}
	st.SetHardState(HardState{Term: 2, Commit: 3})
	r, err := New(Config{ID: 1, Peers: []NodeID{1, 2, 3}, Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 3, Index: 1, LogTerm: 1})
	if r.vote == 2 {
		t.Fatal("vote granted to a candidate while our own log was unreadable")
	}
	rd := r.Ready()
	if !errors.Is(rd.Err, errDisk) {
		t.Fatalf("Ready.Err = %v, want the storage error", rd.Err)
	}
}

// TestAppliedBeyondLogRefused: Config.Applied beyond the stored log would
// make the node acknowledge entries it does not have.
func TestAppliedBeyondLogRefused(t *testing.T) {
	if _, err := New(Config{ID: 1, Peers: []NodeID{1}, Storage: NewMemoryStorage(), Applied: 100}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Applied beyond the log: %v, want ErrConfig", err)
	}
	r, err := New(Config{ID: 1, Peers: []NodeID{1}, Storage: storedLog(1, 1, 1), Applied: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.log.committed != 3 || r.log.applied != 3 {
		t.Fatalf("commit %d applied %d, want 3 and 3", r.log.committed, r.log.applied)
	}
}

// TestUnreadableCommittedEntriesReported: committed entries that cannot be
// read back are reported once in Ready.Err instead of HasReady spinning.
func TestUnreadableCommittedEntriesReported(t *testing.T) {
	st := &failingStorage{MemoryStorage: storedLog(1, 1)}
	st.SetHardState(HardState{Term: 1, Commit: 2})
	r, err := New(Config{ID: 1, Peers: []NodeID{1, 2, 3}, Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	st.failEntries = true // the disk fails after the start (which reads the log for configurations)
	rounds := 0
	for r.HasReady() && rounds < 10 {
		rd := r.Ready()
		if rd.Err != nil && !errors.Is(rd.Err, errDisk) {
			t.Fatalf("Ready.Err = %v", rd.Err)
		}
		r.Advance(rd)
		rounds++
	}
	if rounds >= 10 {
		t.Fatal("HasReady keeps reporting work it cannot deliver")
	}
	if r.log.readErr == nil || !r.readErrReported {
		t.Fatal("the read error was not reported")
	}
}

// TestAdvanceIgnoresForeignReady: the empty batch returned by a misplaced
// second Ready call must not acknowledge the outstanding one.
func TestAdvanceIgnoresForeignReady(t *testing.T) {
	nw := newNetwork(t, 3, 1, nil)
	r := nw.node(1)
	r.Campaign()
	rd := r.Ready()
	if len(rd.Messages) == 0 {
		t.Fatal("campaign produced no messages")
	}
	first := rd.Messages[0]
	r.Advance(r.Ready()) // misuse: the empty batch
	if rd.Messages[0].Type != first.Type || !r.readyPending {
		t.Fatal("a foreign Advance acknowledged or damaged the outstanding Ready")
	}
	r.Advance(rd)
	if r.readyPending {
		t.Fatal("the real Advance was ignored")
	}
}

// TestForwardSeqBase: refusals for sequence numbers at or below the base
// (a previous incarnation's) are ignored.
func TestForwardSeqBase(t *testing.T) {
	nw := newNetwork(t, 3, 1, func(c *Config) { c.ForwardSeqBase = 1000 })
	nw.elect(1)
	f := nw.node(2)
	p, err := f.Propose([]byte("x"))
	if err != nil || p.Seq != 1001 {
		t.Fatalf("forwarded proposal %+v %v, want Seq 1001", p, err)
	}
	_ = f.Step(Message{Type: MsgPropResp, From: 1, To: 2, Index: 1, Reject: true, Hint: Index(RejectBusy)})
	if len(f.rejected) != 0 {
		t.Fatal("a refusal for a previous incarnation's sequence was accepted")
	}
	_ = f.Step(Message{Type: MsgPropResp, From: 1, To: 2, Index: 1001, Reject: true, Hint: Index(RejectBusy)})
	if len(f.rejected) != 1 {
		t.Fatal("the refusal of our own proposal was lost")
	}
}

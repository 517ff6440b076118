package raft

import (
	"encoding/binary"
	"slices"
	"strconv"
)

// MaxMembers bounds the members (voters and learners) of a configuration.
const MaxMembers = 64

// ConfState is a cluster configuration. Voters elect leaders and commit
// entries; in a joint configuration (dissertation §4.3) VotersOutgoing is
// the previous voter set and every decision needs a majority of both.
// Learners receive the log but neither vote nor count toward commitment.
// Each list is sorted; Learners share no ID with either voter list.
type ConfState struct {
	Voters         []NodeID
	VotersOutgoing []NodeID
	Learners       []NodeID
}

// Joint reports whether cs is a joint configuration.
func (cs ConfState) Joint() bool { return len(cs.VotersOutgoing) > 0 }

// IsEmpty reports whether cs has no voters (no configuration known).
func (cs ConfState) IsEmpty() bool { return len(cs.Voters) == 0 }

// IsVoter reports whether id votes in cs (in either half of a joint one).
func (cs ConfState) IsVoter(id NodeID) bool {
	return slices.Contains(cs.Voters, id) || slices.Contains(cs.VotersOutgoing, id)
}

// IsMember reports whether id is a voter or a learner of cs.
func (cs ConfState) IsMember(id NodeID) bool {
	return cs.IsVoter(id) || slices.Contains(cs.Learners, id)
}

// Members returns every member of cs, sorted.
func (cs ConfState) Members() []NodeID {
	out := slices.Concat(cs.Voters, cs.VotersOutgoing, cs.Learners)
	slices.Sort(out)
	return slices.Compact(out)
}

// Equal reports whether cs and o are the same configuration.
func (cs ConfState) Equal(o ConfState) bool {
	return slices.Equal(cs.Voters, o.Voters) && slices.Equal(cs.VotersOutgoing, o.VotersOutgoing) &&
		slices.Equal(cs.Learners, o.Learners)
}

// Clone returns a deep copy of cs.
func (cs ConfState) Clone() ConfState {
	return ConfState{Voters: slices.Clone(cs.Voters), VotersOutgoing: slices.Clone(cs.VotersOutgoing),
		Learners: slices.Clone(cs.Learners)}
}

// AppendConfState appends the encoding of cs that EntryConfChange entries
// and snapshots carry: for Voters, VotersOutgoing and Learners in turn, a
// uvarint count and the IDs as uvarints.
func AppendConfState(b []byte, cs ConfState) []byte {
	for _, l := range [...][]NodeID{cs.Voters, cs.VotersOutgoing, cs.Learners} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, id := range l {
			b = binary.AppendUvarint(b, uint64(id))
		}
	}
	return b
}

// DecodeConfState decodes b, which must hold exactly one encoded
// configuration that is valid: at most MaxMembers members, no zero IDs,
// sorted lists without duplicates, at least one voter, learners disjoint
// from voters. Anything else is ErrInvalidConf.
func DecodeConfState(b []byte) (ConfState, error) {
	var lists [3][]NodeID
	for i := range lists {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > MaxMembers || n > uint64(len(b)) {
			return ConfState{}, ErrInvalidConf
		}
		b = b[k:]
		for range n {
			id, k := binary.Uvarint(b)
			if k <= 0 || id == 0 {
				return ConfState{}, ErrInvalidConf
			}
			lists[i], b = append(lists[i], NodeID(id)), b[k:]
		}
	}
	cs := ConfState{Voters: lists[0], VotersOutgoing: lists[1], Learners: lists[2]}
	if len(b) != 0 || cs.validate() != nil {
		return ConfState{}, ErrInvalidConf
	}
	return cs, nil
}

// validate checks the invariants DecodeConfState promises.
func (cs ConfState) validate() error {
	strictlySorted := func(l []NodeID) bool {
		for i := 1; i < len(l); i++ {
			if l[i] <= l[i-1] {
				return false
			}
		}
		return true
	}
	switch {
	case len(cs.Voters) == 0,
		!strictlySorted(cs.Voters) || !strictlySorted(cs.VotersOutgoing) || !strictlySorted(cs.Learners),
		len(cs.Members()) > MaxMembers,
		slices.Contains(cs.Voters, None) || slices.Contains(cs.VotersOutgoing, None) || slices.Contains(cs.Learners, None):
		return ErrInvalidConf
	}
	for _, id := range cs.Learners {
		if cs.IsVoter(id) {
			return ErrInvalidConf
		}
	}
	return nil
}

// ConfChangeType says what a ConfChange does.
type ConfChangeType uint8

const (
	// ConfAddVoter adds a voter, or promotes a learner to voter.
	ConfAddVoter ConfChangeType = 1
	// ConfAddLearner adds a learner. Alone it cannot demote a voter (that
	// is refused as invalid); to demote, give ConfRemove then
	// ConfAddLearner for the same node in one change: the voter leaves the
	// voters and stays in the log as a learner (a one-voter change).
	ConfAddLearner ConfChangeType = 2
	// ConfRemove removes a voter or a learner.
	ConfRemove ConfChangeType = 3
)

// ConfChange is one membership change.
type ConfChange struct {
	Type ConfChangeType
	Node NodeID
}

// nextConf returns the configuration that changes produce from cs, which
// must not be joint. A change of at most one voter is applied directly
// (dissertation §4.1: any two majorities of the old and new sets overlap);
// anything larger goes through a joint configuration that the leader
// leaves automatically once it is committed (§4.3).
func nextConf(cs ConfState, changes []ConfChange) (ConfState, error) {
	if len(changes) == 0 || cs.Joint() {
		return ConfState{}, ErrInvalidConfChange
	}
	voters, learners := slices.Clone(cs.Voters), slices.Clone(cs.Learners)
	for _, c := range changes {
		var err error
		if voters, learners, err = applyChange(voters, learners, c); err != nil {
			return ConfState{}, err
		}
	}
	slices.Sort(voters)
	slices.Sort(learners)
	next := ConfState{Voters: voters, Learners: learners}
	if votersDiff(cs.Voters, voters) > 1 {
		next.VotersOutgoing = slices.Clone(cs.Voters)
	}
	if next.validate() != nil {
		return ConfState{}, ErrInvalidConfChange
	}
	return next, nil
}

func applyChange(voters, learners []NodeID, c ConfChange) ([]NodeID, []NodeID, error) {
	isVoter, isLearner := slices.Contains(voters, c.Node), slices.Contains(learners, c.Node)
	del := func(l []NodeID) []NodeID {
		return slices.DeleteFunc(l, func(id NodeID) bool { return id == c.Node })
	}
	switch {
	case c.Node == None:
		return nil, nil, ErrInvalidConfChange
	case c.Type == ConfAddVoter && !isVoter:
		return append(voters, c.Node), del(learners), nil
	case c.Type == ConfAddLearner && !isVoter && !isLearner:
		return voters, append(learners, c.Node), nil
	case c.Type == ConfRemove && (isVoter || isLearner):
		return del(voters), del(learners), nil
	}
	return nil, nil, ErrInvalidConfChange // a no-op, a bare demotion, or an unknown type
}

// votersDiff counts the IDs in exactly one of two sorted voter lists.
func votersDiff(a, b []NodeID) int {
	n := 0
	for _, id := range a {
		if !slices.Contains(b, id) {
			n++
		}
	}
	for _, id := range b {
		if !slices.Contains(a, id) {
			n++
		}
	}
	return n
}

// leaveJoint returns the configuration that ends the joint cs.
func leaveJoint(cs ConfState) ConfState {
	return ConfState{Voters: slices.Clone(cs.Voters), Learners: slices.Clone(cs.Learners)}
}

// String describes the change, e.g. "add-voter 4".
func (c ConfChange) String() string {
	names := [...]string{"invalid", "add-voter", "add-learner", "remove"}
	name := "invalid"
	if int(c.Type) < len(names) {
		name = names[c.Type]
	}
	return name + " " + strconv.FormatUint(uint64(c.Node), 10)
}

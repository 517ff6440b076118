package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
)

// membershipScenario is the demo's -membership run: node N+1 starts empty;
// at fixed points of the run it is added as a learner, promoted to voter,
// node 1 is removed, and leadership is transferred to the new node. The
// configuration is printed after each step.
type membershipScenario struct {
	d    *demo
	next int // the next step to run
}

type membershipStep struct {
	at   int // percent of the run
	name string
	run  func(ctx context.Context, d *demo, lead raft.NodeID) error
}

func (d *demo) newcomer() raft.NodeID { return raft.NodeID(d.f.nodes + 1) }

func membershipSteps(d *demo) []membershipStep {
	add := func(t raft.ConfChangeType, id raft.NodeID) func(context.Context, *demo, raft.NodeID) error {
		return func(ctx context.Context, d *demo, lead raft.NodeID) error {
			_, err := d.c.Node(lead).ChangeMembership(ctx, raft.ConfChange{Type: t, Node: id})
			return err
		}
	}
	n := d.newcomer()
	return []membershipStep{
		{20, fmt.Sprintf("add node %d as a learner", n), add(raft.ConfAddLearner, n)},
		{35, fmt.Sprintf("promote node %d to voter", n), add(raft.ConfAddVoter, n)},
		{50, "remove node 1", add(raft.ConfRemove, 1)},
		{65, fmt.Sprintf("transfer leadership to node %d", n), func(ctx context.Context, d *demo, lead raft.NodeID) error {
			return d.c.Node(lead).TransferLeadership(ctx, n)
		}},
	}
}

// step runs the next membership step once its time has come, retrying at
// the next call while leadership moves.
func (s *membershipScenario) step(ctx context.Context, elapsed time.Duration) {
	steps := membershipSteps(s.d)
	if s.next >= len(steps) || elapsed < s.d.f.duration*time.Duration(steps[s.next].at)/100 {
		return
	}
	lead := s.d.c.Leader()
	if lead == raft.None {
		return
	}
	st := steps[s.next]
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	t0 := time.Now()
	err := st.run(sctx, s.d, lead)
	switch {
	case err == nil:
		s.next++
		cs := s.d.c.Node(lead).Status().Conf
		if l := s.d.c.Leader(); l != raft.None {
			cs = s.d.c.Node(l).Status().Conf
		}
		fmt.Fprintf(s.d.out, "Membership: %s (at node %d, %v): voters %v learners %v, leader %d\n",
			st.name, lead, time.Since(t0).Round(time.Microsecond), cs.Voters, cs.Learners, s.d.c.Leader())
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, node.ErrLeaderChanged), errors.Is(err, raft.ErrBusy),
		errors.Is(err, raft.ErrConfChangePending), errors.Is(err, context.DeadlineExceeded), errors.Is(err, node.ErrTransferFailed):
		s.d.log.Info("membership step will be retried", "step", st.name, "err", err)
	default:
		s.d.log.Error("membership step failed", "step", st.name, "err", err)
		s.next++
	}
}

// members returns the final configuration's members (all nodes outside
// the membership scenario).
func (d *demo) members() []raft.NodeID {
	if !d.f.membership {
		return d.c.IDs()
	}
	if l := d.c.Leader(); l != raft.None {
		return d.c.Node(l).Status().Conf.Members()
	}
	return d.c.IDs()
}

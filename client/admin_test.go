package client

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

func ids(v ...raft.NodeID) []raft.NodeID { return v }

// TestAdmin: membership changes, the configuration and a transfer at the
// leader, sealed or not; a change the configuration has is answered
// without reaching the node; refusals that cannot succeed are not retried.
func TestAdmin(t *testing.T) {
	k := seal.NewKey()
	for name, key := range map[string]*seal.Key{"unauthenticated": nil, "sealed": &k} {
		t.Run(name, func(t *testing.T) {
			store := kv.New(kv.Options{})
			n := &fakeNode{id: 1, lead: 1, store: store, conf: raft.ConfState{Voters: ids(1)}}
			s := serve(t, n, store, key, nil)
			c := dial(t, key, s)
			ctx := context.Background()
			m, err := c.Membership(ctx)
			if err != nil || m.Node != 1 || m.Leader != 1 || m.Term != 3 || !m.Conf.Equal(raft.ConfState{Voters: ids(1)}) {
				t.Fatalf("membership: %+v %v", m, err)
			}
			want := raft.ConfState{Voters: ids(1), Learners: ids(2)}
			for range 2 { // the second is a retry: answered from the configuration
				m, err := c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfAddLearner, Node: 2})
				if err != nil || !m.Conf.Equal(want) || m.Leader != 1 {
					t.Fatalf("add learner: %+v %v", m, err)
				}
			}
			if calls, _ := n.admin(); calls != 1 {
				t.Fatalf("%d admin calls reached the node, want 1", calls)
			}
			m, err = c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfAddVoter, Node: 2})
			if err != nil || !m.Conf.Equal(raft.ConfState{Voters: ids(1, 2)}) {
				t.Fatalf("promote: %+v %v", m, err)
			}
			var e *Error
			retries := c.Retries()
			for _, bad := range []raft.ConfChange{{Type: raft.ConfAddLearner, Node: 2}, {Type: raft.ConfRemove, Node: 1}} {
				if bad.Type == raft.ConfRemove {
					if _, err := c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfRemove, Node: 2}); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := c.ChangeMembership(ctx, bad); !errors.As(err, &e) || e.Code != wire.CodeBadRequest || e.Leader != raft.None {
					t.Fatalf("%v: %v", bad, err)
				}
			}
			if _, err := c.TransferLeadership(ctx, 9); !errors.As(err, &e) || e.Code != wire.CodeBadRequest {
				t.Fatalf("transfer to a non-member: %v", err)
			}
			if c.Retries() != retries {
				t.Fatalf("refusals were retried: %d retries", c.Retries()-retries)
			}
			if _, err := c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfAddVoter}); !errors.Is(err, ErrConfig) {
				t.Fatalf("node 0: %v", err)
			}
			if _, err := c.ChangeMembership(ctx, raft.ConfChange{Type: 7, Node: 3}); !errors.As(err, &e) || e.Code != wire.CodeBadRequest {
				t.Fatalf("unknown change type: %v", err)
			}
			// A transfer to the leader itself is done; to another voter, the
			// answer names the new leader.
			if _, err := c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfAddVoter, Node: 3}); err != nil {
				t.Fatal(err)
			}
			if m, err := c.TransferLeadership(ctx, 3); err != nil || m.Node != 1 || m.Leader != 3 || m.Term != 4 || c.Leader() != 3 {
				t.Fatalf("transfer: %+v %v (client's leader %d)", m, err, c.Leader())
			}
			// Node 1 no longer leads: it names node 3, whose address the
			// client does not know (this is its only server).
			if _, err := c.Membership(ctx); !errors.As(err, &e) || e.Code != wire.CodeNoLeader || e.Leader != 3 || !errors.Is(err, ErrNoOutcome) {
				t.Fatalf("membership at a former leader: %v", err)
			}
		})
	}
}

// TestAdminRedirect: a follower answers admin requests with the leader's
// ID without calling its node, and the client goes there.
func TestAdminRedirect(t *testing.T) {
	store := kv.New(kv.Options{})
	conf := raft.ConfState{Voters: ids(1, 2)}
	leader := &fakeNode{id: 2, lead: 2, store: store, conf: conf}
	follower := &fakeNode{id: 1, lead: 2, store: store, conf: conf}
	sf := serve(t, follower, store, nil, nil)
	sl := serve(t, leader, store, nil, nil)
	c := dial(t, nil, sf, sl)
	ctx := context.Background()
	_ = c.StatusAll(ctx, 1) // learn the IDs behind the addresses
	for i := range 3 {
		c.mu.Lock()
		c.leader, c.next = raft.None, len(c.servers)-1 // the next pick is the follower
		c.mu.Unlock()
		retries := c.Retries()
		var err error
		var m Membership
		switch i {
		case 0:
			m, err = c.Membership(ctx)
		case 1:
			m, err = c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfAddLearner, Node: 3})
		case 2:
			m, err = c.TransferLeadership(ctx, 2) // the leader itself: done
		}
		if err != nil || m.Node != 2 || m.Leader != 2 || c.Retries() != retries+1 || c.Leader() != 2 {
			t.Fatalf("request %d: %+v %v, %d retries, leader %d", i, m, err, c.Retries()-retries, c.Leader())
		}
	}
	if calls, _ := follower.admin(); calls != 0 {
		t.Fatalf("the follower's node served %d admin calls", calls)
	}
	if _, cs := leader.admin(); !slices.Equal(cs.Learners, ids(3)) {
		t.Fatalf("leader's configuration %+v", cs)
	}
}

// TestAdminErrors: the node's refusals map to codes; retryable ones are
// retried until they pass.
func TestAdminErrors(t *testing.T) {
	store := kv.New(kv.Options{})
	n := &fakeNode{id: 1, lead: 1, store: store, conf: raft.ConfState{Voters: ids(1, 2)}}
	s := serve(t, n, store, nil, nil)
	c := dial(t, nil, s)
	ctx := context.Background()
	for err, code := range map[error]wire.ErrorCode{
		raft.ErrConfChangePending: wire.CodeBusy, node.ErrBusy: wire.CodeBusy,
		node.ErrTransferFailed: wire.CodeTimeout, node.ErrLeaderChanged: wire.CodeLeaderChanged,
		node.ErrStopped: wire.CodeStopped, errors.New("disk"): wire.CodeInternal,
	} {
		n.mu.Lock()
		n.adminFail = func() error { return err }
		n.mu.Unlock()
		var e *Error
		if _, gerr := c.TransferLeadership(ctx, 2); !errors.Is(gerr, ErrNoOutcome) || !errors.As(gerr, &e) || e.Code != code {
			t.Errorf("%v: got %v", err, gerr)
		}
	}
	// Two refusals of "a change is in progress", then it passes.
	left := 2
	n.mu.Lock()
	n.adminFail = func() error {
		if left--; left >= 0 {
			return raft.ErrConfChangePending
		}
		return nil
	}
	n.mu.Unlock()
	retries := c.Retries()
	if m, err := c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfRemove, Node: 2}); err != nil || !m.Conf.Equal(raft.ConfState{Voters: ids(1)}) || c.Retries() != retries+2 {
		t.Fatalf("pending change: %+v %v, %d retries", m, err, c.Retries()-retries)
	}
}

// TestAdminReachable: the leader refuses to add a node it has no address
// for, without calling its node; removing one is allowed.
func TestAdminReachable(t *testing.T) {
	store := kv.New(kv.Options{})
	n := &fakeNode{id: 1, lead: 1, store: store, conf: raft.ConfState{Voters: ids(1), Learners: ids(9)}}
	s := serve(t, n, store, nil, func(c *ServerConfig) { c.Reachable = func(id raft.NodeID) bool { return id < 5 } })
	c := dial(t, nil, s)
	ctx := context.Background()
	var e *Error
	for _, typ := range []raft.ConfChangeType{raft.ConfAddLearner, raft.ConfAddVoter} {
		if _, err := c.ChangeMembership(ctx, raft.ConfChange{Type: typ, Node: 7}); !errors.As(err, &e) || e.Code != wire.CodeBadRequest {
			t.Fatalf("add 7: %v", err)
		}
	}
	if calls, _ := n.admin(); calls != 0 {
		t.Fatalf("%d admin calls reached the node", calls)
	}
	if m, err := c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfRemove, Node: 9}); err != nil || len(m.Conf.Learners) != 0 {
		t.Fatalf("remove 9: %+v %v", m, err)
	}
	if m, err := c.ChangeMembership(ctx, raft.ConfChange{Type: raft.ConfAddLearner, Node: 4}); err != nil || !slices.Equal(m.Conf.Learners, ids(4)) {
		t.Fatalf("add 4: %+v %v", m, err)
	}
}

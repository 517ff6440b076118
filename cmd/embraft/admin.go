package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/embraft/embraft/client"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

// adminCommand runs `member add-learner|add-voter|remove ID`, `member
// list` or `transfer ID` (arguments checked by runClient) and prints the
// resulting configuration.
func adminCommand(ctx context.Context, c *client.Client, cmd string, pos []string, stdout io.Writer) (int, error) {
	var m client.Membership
	var err error
	switch {
	case cmd == "transfer":
		id, _ := parseNodeID(pos[0])
		m, err = c.TransferLeadership(ctx, id)
	case pos[0] == "list":
		m, err = c.Membership(ctx)
	default:
		id, _ := parseNodeID(pos[1])
		typ := map[string]raft.ConfChangeType{"add-learner": raft.ConfAddLearner, "add-voter": raft.ConfAddVoter,
			"remove": raft.ConfRemove}[pos[0]]
		m, err = c.ChangeMembership(ctx, raft.ConfChange{Type: typ, Node: id})
	}
	if err != nil {
		var e *client.Error
		if errors.As(err, &e) && e.Code == wire.CodeBadRequest {
			why := "a voter cannot become a learner, the last voter cannot be removed, " +
				"and a node must have an address in the leader's --peers"
			if cmd == "transfer" {
				why = "only a voter can lead"
			}
			err = fmt.Errorf("the leader refused (%w): %s", err, why)
		}
		return exitError, err
	}
	printMembership(m, stdout)
	return exitOK, nil
}

// printMembership prints a configuration as four lines:
//
//	voters: 1 2 3
//	outgoing: -
//	learners: 4
//	leader: 1 (term 2)
func printMembership(m client.Membership, w io.Writer) {
	list := func(ids []raft.NodeID) string {
		if len(ids) == 0 {
			return "-"
		}
		s := make([]string, len(ids))
		for i, id := range ids {
			s[i] = fmt.Sprint(uint64(id))
		}
		return strings.Join(s, " ")
	}
	lead := "unknown"
	if m.Leader != raft.None {
		lead = fmt.Sprint(uint64(m.Leader))
	}
	fmt.Fprintf(w, "voters: %s\noutgoing: %s\nlearners: %s\nleader: %s (term %d)\n",
		list(m.Conf.Voters), list(m.Conf.VotersOutgoing), list(m.Conf.Learners), lead, m.Term)
}

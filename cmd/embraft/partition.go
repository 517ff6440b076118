package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// parseGroups parses "1,2/3,4,5" into node groups.
func parseGroups(s string, nodes int) ([][]raft.NodeID, error) {
	var groups [][]raft.NodeID
	seen := map[raft.NodeID]bool{}
	for _, part := range strings.Split(s, "/") {
		var g []raft.NodeID
		for _, f := range strings.Split(part, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > nodes || seen[raft.NodeID(n)] {
				return nil, fmt.Errorf("-partition %q: %q is not a new node ID in 1..%d", s, f, nodes)
			}
			seen[raft.NodeID(n)] = true
			g = append(g, raft.NodeID(n))
		}
		groups = append(groups, g)
	}
	if len(groups) < 2 {
		return nil, fmt.Errorf("-partition %q: need at least two groups separated by /", s)
	}
	return groups, nil
}

func (f *demoFlags) checkPartition() error {
	if f.partition == "" {
		return nil
	}
	if f.transport == "udp" {
		return errors.New("-partition needs -transport netstack or channel")
	}
	if f.duration <= 0 {
		return errors.New("-partition needs -duration")
	}
	if f.partition == "leader" {
		if f.nodes < 3 {
			return errors.New("-partition leader needs at least 3 nodes")
		}
	} else if _, err := parseGroups(f.partition, f.nodes); err != nil {
		return err
	}
	if f.partAt == 0 {
		f.partAt = f.duration * 3 / 10
	}
	if f.healAt == 0 {
		f.healAt = f.duration * 7 / 10
	}
	if f.partAt >= f.healAt || f.healAt >= f.duration {
		return errors.New("-partition-at < -heal-at < -duration is required")
	}
	return nil
}

// partitionScenario splits the cluster, shows the minority cannot commit
// while the majority can, heals, and shows the old leader stepping down and
// catching up.
type partitionScenario struct {
	d         *demo
	groups    [][]raft.NodeID
	minority  []raft.NodeID
	oldLeader raft.NodeID
	opsAtCut  int64
	applied   bool
	healed    bool
	reported  bool
}

func (p *partitionScenario) step(ctx context.Context, elapsed time.Duration) {
	d := p.d
	switch {
	case !p.applied && elapsed >= d.f.partAt:
		p.apply(ctx)
	case p.applied && !p.healed && elapsed >= d.f.healAt:
		d.log.Info("healing the partition", "ops_committed_during", d.ops.Load()-p.opsAtCut)
		d.heal()
		p.healed = true
	case p.healed && !p.reported:
		p.reportRejoin()
	}
}

func (p *partitionScenario) apply(ctx context.Context) {
	d := p.d
	p.oldLeader = d.c.Leader()
	p.groups = d.partitionGroups(p.oldLeader)
	for _, g := range p.groups {
		if 2*len(g) <= d.f.nodes && (p.minority == nil || len(g) < len(p.minority)) {
			p.minority = g
		}
	}
	d.log.Info("partitioning the network", "groups", fmt.Sprint(p.groups), "leader", uint64(p.oldLeader))
	d.partition(p.groups)
	p.opsAtCut = d.ops.Load()
	p.applied = true
	go p.probeMinority(ctx)
}

// probeMinority proposes at a minority node: it must not commit.
func (p *partitionScenario) probeMinority(ctx context.Context) {
	if len(p.minority) == 0 {
		return
	}
	d, id := p.d, p.minority[0]
	reg := kv.Register()
	cmd := reg.AppendBinary(nil)
	pctx, cancel := context.WithTimeout(ctx, min(d.f.healAt-d.f.partAt, 2*time.Second))
	defer cancel()
	_, err := d.c.Node(id).Propose(pctx, cmd)
	if err == nil {
		d.log.Error("minority committed a command: this must not happen", "node", uint64(id))
		return
	}
	d.log.Info("minority cannot commit", "node", uint64(id), "group", fmt.Sprint(p.minority), "err", err)
}

// reportRejoin waits for the old leader to step down and catch up.
func (p *partitionScenario) reportRejoin() {
	d := p.d
	lead := d.c.Leader()
	if p.oldLeader == raft.None || lead == raft.None || lead == p.oldLeader {
		if lead == p.oldLeader && p.oldLeader != raft.None && !slices.Contains(p.minority, p.oldLeader) {
			d.log.Info("the leader was in the majority and kept leading", "leader", uint64(lead))
			p.reported = true
		}
		return
	}
	old, cur := d.c.Node(p.oldLeader).Status(), d.c.Node(lead).Status()
	if old.Role != raft.RoleLeader && old.Applied >= cur.Commit-min(cur.Commit, 2) {
		d.log.Info("old leader stepped down and caught up", "node", uint64(p.oldLeader),
			"role", old.Role.String(), "term", uint64(old.Term), "applied", uint64(old.Applied))
		p.reported = true
	}
}

// partitionGroups resolves -partition: explicit groups, or "leader": the
// current leader and one follower cut off from the rest.
func (d *demo) partitionGroups(lead raft.NodeID) [][]raft.NodeID {
	if d.f.partition != "leader" {
		g, _ := parseGroups(d.f.partition, d.f.nodes)
		return g
	}
	minority := []raft.NodeID{lead}
	var rest []raft.NodeID
	for _, id := range d.c.IDs() {
		switch {
		case id == lead:
		case len(minority) < (d.f.nodes-1)/2:
			minority = append(minority, id)
		default:
			rest = append(rest, id)
		}
	}
	return [][]raft.NodeID{minority, rest}
}

func (d *demo) partition(groups [][]raft.NodeID) {
	if sw := d.c.Switch(); sw != nil {
		sw.Partition(groups...)
		return
	}
	for i, a := range groups {
		for j, b := range groups {
			if i == j {
				continue
			}
			for _, x := range a {
				for _, y := range b {
					d.c.Network().Cut(x, y, true)
				}
			}
		}
	}
}

func (d *demo) heal() {
	if sw := d.c.Switch(); sw != nil {
		sw.Heal()
		return
	}
	for _, x := range d.c.IDs() {
		for _, y := range d.c.IDs() {
			d.c.Network().Cut(x, y, false)
		}
	}
}

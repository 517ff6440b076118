// Command embraft-min is the smallest useful embraft program: a 3-node
// cluster (5 with -5) in one process, wired by hand with the node package,
// in-memory storage and the channel transport. It elects a leader,
// proposes a few commands there, checks they applied, and exits 0.
//
// It exists to measure embraft's footprint (docs/BENCHMARKS.md: stripped
// binary size); keep its imports to what a minimal embedding needs.
package main

import (
	"context"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/memory"
	"github.com/embraft/embraft/transport/channel"
)

// counter is the state machine: it counts applied commands.
type counter struct{ n uint64 }

func (c *counter) Apply(raft.Index, []byte) []byte { c.n++; return nil }
func (c *counter) Snapshot(io.Writer) error        { return nil }
func (c *counter) Restore(io.Reader) error         { return nil }

func fail(msg string, err error) {
	if err != nil {
		msg += ": " + err.Error()
	}
	os.Stderr.WriteString("embraft-min: " + msg + "\n")
	os.Exit(1)
}

func main() {
	size := 3
	if len(os.Args) > 1 && os.Args[1] == "-5" {
		size = 5
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ids := make([]raft.NodeID, size)
	for i := range ids {
		ids[i] = raft.NodeID(i + 1)
	}
	net := channel.NewNetwork(channel.Options{})
	nodes := make([]*node.Node, size)
	for i, id := range ids {
		n, err := node.Start(ctx, node.Config{
			Raft:    raft.Config{ID: id, Peers: ids, Seed: 1},
			Storage: memory.New(memory.Options{}), Transport: net.Endpoint(id),
			StateMachine: &counter{},
		})
		if err != nil {
			fail("start", err)
		}
		nodes[i] = n
	}
	defer func() {
		for _, n := range nodes {
			_ = n.Stop()
		}
	}()

	var leader *node.Node
	for leader == nil {
		for _, n := range nodes {
			if n.Status().Role == raft.RoleLeader {
				leader = n
			}
		}
		if ctx.Err() != nil {
			fail("no leader", ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}

	const commands = 16
	for i := range commands {
		if _, err := leader.Propose(ctx, []byte("command "+strconv.Itoa(i))); err != nil {
			fail("propose", err)
		}
	}
	st := leader.Status()
	os.Stdout.WriteString(strconv.Itoa(size) + " nodes, leader " + strconv.FormatUint(uint64(leader.ID()), 10) +
		", term " + strconv.FormatUint(uint64(st.Term), 10) + ", applied " + strconv.FormatUint(uint64(st.Applied), 10) +
		" (" + strconv.Itoa(commands) + " commands)\n")
}

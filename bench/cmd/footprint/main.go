// Command footprint measures the live memory of an idle in-memory embraft
// cluster: 5 nodes (memory storage, channel transport) that have committed
// 256 commands of 64 bytes, after two runtime.GC calls, against a baseline
// taken before the cluster started. The seed ran this in a 128 KB heap.
//
//	cd bench && go run ./cmd/footprint [-nodes 5] [-entries 256] [-cmd 64] [-memprofile heap.out]
//
// With -memprofile every allocation is sampled (MemProfileRate 1) and the
// in-use heap profile is written after the measurement:
// go tool pprof -sample_index=inuse_space -top heap.out
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/node"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/wire"
)

type countSM struct{ n uint64 }

func (c *countSM) Apply(raft.Index, []byte) []byte { c.n++; return nil }
func (c *countSM) Snapshot(io.Writer) error        { return nil }
func (c *countSM) Restore(io.Reader) error         { return nil }

type sample struct {
	heap, stack, sys uint64
	goroutines       int
}

func measure() sample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{heap: ms.HeapAlloc, stack: ms.StackInuse, sys: ms.Sys, goroutines: runtime.NumGoroutine()}
}

func main() {
	nodes := flag.Int("nodes", 5, "cluster size")
	entries := flag.Int("entries", 256, "commands to commit")
	cmdBytes := flag.Int("cmd", 64, "command size in bytes")
	memprofile := flag.String("memprofile", "", "write an in-use heap profile (every allocation sampled) to this file")
	flag.Parse()
	if *memprofile != "" {
		runtime.MemProfileRate = 1
	}
	cmd := make([]byte, *cmdBytes)

	before := measure()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Config{
		Nodes: *nodes, Storage: cluster.StorageMemory, Transport: cluster.TransportChannel, Seed: 1,
		NewStateMachine: func(raft.NodeID) node.StateMachine { return &countSM{} },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	lead, err := c.WaitLeader(wctx)
	wcancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
	n := c.Node(lead)
	for range *entries {
		if _, err := n.Propose(ctx, cmd); err != nil {
			fmt.Fprintln(os.Stderr, "footprint: propose:", err)
			os.Exit(1)
		}
	}
	// Let the followers learn the final commit index and apply (one
	// heartbeat interval), so every node holds and has applied the log.
	time.Sleep(200 * time.Millisecond)
	after := measure()
	var applied []uint64
	for _, id := range c.IDs() {
		applied = append(applied, uint64(c.Node(id).Status().Applied))
	}

	heap := int64(after.heap) - int64(before.heap)
	stack := int64(after.stack) - int64(before.stack)
	fmt.Printf("%s %s/%s: %d nodes, %d commands of %d bytes committed (applied per node: %v)\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, *nodes, *entries, *cmdBytes, applied)
	fmt.Printf("live heap after GC:   %8d bytes total, %7d per node\n", heap, heap/int64(*nodes))
	fmt.Printf("goroutine stacks:     %8d bytes total (StackInuse), %d goroutines (%d per node)\n",
		stack, after.goroutines-before.goroutines, (after.goroutines-before.goroutines) / *nodes)
	fmt.Printf("heap + stacks:        %8d bytes total, %7d per node\n", heap+stack, (heap+stack)/int64(*nodes))

	wireSizes(*cmdBytes)

	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(f, 0)
			_ = f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "footprint:", err)
			os.Exit(1)
		}
	}
	c.Stop()
}

// wireSizes prints frame sizes from the codec itself (cluster ID 0, term 3,
// indexes and commit around 300: two-byte varints, as in a young log).
func wireSizes(cmdBytes int) {
	size := func(m raft.Message) int {
		b, err := wire.AppendMessage(nil, 0, &m)
		if err != nil {
			fmt.Fprintln(os.Stderr, "footprint: wire:", err)
			os.Exit(1)
		}
		return len(b)
	}
	// An entry's data is the node's envelope (uvarint node ID, uvarint
	// 64-bit request ID whose high half is a random incarnation: 1 + 9-10
	// bytes) followed by the command.
	data := make([]byte, 1+10+cmdBytes)
	app := func(k int) raft.Message {
		m := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3, Index: 300, Commit: 299}
		for i := range k {
			m.Entries = append(m.Entries, raft.Entry{Term: 3, Index: 301 + raft.Index(i), Data: data})
		}
		return m
	}
	hb := size(raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 300})
	hbr := size(raft.Message{Type: raft.MsgHeartbeatResp, From: 2, To: 1, Term: 3})
	ar := size(raft.Message{Type: raft.MsgAppResp, From: 2, To: 1, Term: 3, Index: 301})
	a0, a1, a8 := size(app(0)), size(app(1)), size(app(8))
	fmt.Printf("wire: heartbeat %d B, heartbeat response %d B, append response %d B\n", hb, hbr, ar)
	fmt.Printf("wire: MsgApp empty %d B, 1 entry %d B, 8 entries %d B: %d B per entry = %d B data (%d-byte command + %d-byte envelope) + %d B framing\n",
		a0, a1, a8, (a8-a0)/8, len(data), cmdBytes, len(data)-cmdBytes, (a8-a0)/8-len(data))
}

// Command mcucheck checks, on the host, the storage directories that the
// semihosting firmware wrote: each opens with storage/file (docs/STORAGE.md)
// and all committed prefixes are identical. Exit status 0 if so.
//
//	go run ./firmware/mcucheck [-nodes 5] embraft-mcu-data
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/embraft/embraft/firmware/hostcheck"
	"github.com/embraft/embraft/firmware/mcu"
)

func main() {
	nodes := flag.Int("nodes", 5, "number of node directories (node-1 ... node-N)")
	flag.Parse()
	dir := "embraft-mcu-data"
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	ns, commit, err := hostcheck.Check(dir, *nodes, mcu.DefaultCluster)
	for _, n := range ns {
		fmt.Printf("node-%d: term %d vote %d commit %d, log 1..%d (last term %d), storage/file recovery: %+v\n",
			n.ID, n.HardState.Term, n.HardState.Vote, n.HardState.Commit, n.LastIndex, n.LastTerm, n.Recovery)
	}
	if err != nil {
		fmt.Println("MCUCHECK FAIL:", err)
		os.Exit(1)
	}
	fmt.Printf("MCUCHECK OK: storage/file opens all %d directories; committed entries 1..%d identical on every node\n", *nodes, commit)
}

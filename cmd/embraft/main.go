// Command embraft runs embraft clusters. With no arguments it runs the
// 5-node demo; `embraft demo -h` lists the demo's flags.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: embraft [command] [flags]

commands:
  demo    run a cluster in this process with a client workload (default)
  node    run one member of a multi-process cluster (UDP, file storage, kv)
  put, get, del, cas, status
          client commands against a multi-process cluster (--cluster ADDR,...)
  member  add-learner ID, add-voter ID, remove ID, list: change or show the
          membership of a multi-process cluster (at its leader)
  transfer ID
          hand leadership to voter ID
  keygen  print a new random cluster key
  sim     run the deterministic simulator: one seed, or a campaign (--seeds N)
  help    print this text

Run 'embraft demo -h', 'embraft node -h' or 'embraft put -h' for flags.
`

func main() {
	args := os.Args[1:]
	cmd := "demo"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "demo":
		os.Exit(runDemo(args, os.Stdout))
	case "sim":
		os.Exit(runSim(args, os.Stdout))
	case "node":
		os.Exit(runNode(args, os.Stdout, os.Stderr))
	case "put", "get", "del", "cas", "status", "member", "transfer":
		os.Exit(runClient(cmd, args, os.Stdout, os.Stderr))
	case "keygen":
		os.Exit(runKeygen(args, os.Stdout, os.Stderr))
	case "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "embraft: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
}

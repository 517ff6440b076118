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
  help    print this text

Run 'embraft demo -h' for the demo's flags.
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
	case "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "embraft: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
}

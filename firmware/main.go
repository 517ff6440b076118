// Command firmware is embraft on a microcontroller: five Raft nodes in one
// TinyGo image for a Cortex-M4 (QEMU's mps2-an386 board), each running the
// real raft core under the real node runtime, exchanging wire-encoded
// frames through bounded in-memory channels, replicating the kv store. A
// client task writes through random nodes (followers forward), the leader
// is stopped and later restarted, and the run ends by itself with a final
// line and the semihosting exit status (0: ok, 1: failure).
//
// Build (from the repository root; docs/EMBEDDED.md has the details):
//
//	scripts/tinygo.sh build -target=firmware/targets/mps2-an386.json -o build/firmware.elf ./firmware
//	scripts/tinygo.sh build -target=firmware/targets/mps2-an386.json -tags embraft_semihosting -o build/firmware-sh.elf ./firmware
//
// Storage is chosen at build time: in RAM by default, semihosting files
// (docs/STORAGE.md formats) with -tags embraft_semihosting. Options come
// from QEMU's -append as key=value words: commands=200 clients=4 seed=7
// data=embraft-mcu-data window=256 failover=0.4 restart=0.7 verbose=1.
//
// The same program builds and runs with the host's Go (`go run ./firmware`),
// semihosting then being emulated with package os.
package main

import (
	"runtime"
	"strconv"
	"strings"

	"github.com/embraft/embraft/firmware/mcu"
	"github.com/embraft/embraft/firmware/semihost"
)

func main() {
	var con semihost.Console
	cfg := mcu.Config{
		Storage: storageKind, DataDir: "embraft-mcu-data", Seed: 7,
		Out: con, Clock: semihost.Centiseconds, MemStats: true, Platform: platform(),
	}
	if err := parseArgs(&cfg, semihost.Cmdline()); err != nil {
		con.WriteString("FIRMWARE FAIL: " + err.Error() + "\n")
		semihost.Exit(1)
	}
	if src := mcu.InstallEntropy(); src != "" {
		con.WriteString("Entropy for node incarnations: " + src + "\n")
	}
	rep := runProtected(cfg)
	for _, line := range mcu.Summary(cfg, rep) {
		con.WriteString(line + "\n")
	}
	if !rep.OK {
		semihost.Exit(1)
	}
	semihost.Exit(0)
}

// runProtected turns a panic in the runner's goroutine into a failed run
// (panics in other goroutines end the program through TinyGo's runtime,
// whose message the QEMU wrapper script shows, with exit status 1).
func runProtected(cfg mcu.Config) (rep mcu.Report) {
	defer func() {
		if v := recover(); v != nil {
			rep = mcu.Report{Err: &panicError{v}}
		}
	}()
	return mcu.Run(cfg)
}

type panicError struct{ v any }

func (p *panicError) Error() string {
	switch v := p.v.(type) {
	case error:
		return "panic: " + v.Error()
	case string:
		return "panic: " + v
	}
	return "panic"
}

// parseArgs reads key=value words from the command line (QEMU -append).
func parseArgs(cfg *mcu.Config, cmdline string) error {
	fields := strings.Fields(cmdline)
	if len(fields) > 0 && !strings.Contains(fields[0], "=") {
		fields = fields[1:] // the kernel's (or the program's) name
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return &argError{f, "want key=value"}
		}
		var err error
		var n uint64
		switch k {
		case "data":
			cfg.DataDir = v
			continue
		case "failover", "restart":
			var x float64
			x, err = strconv.ParseFloat(v, 64)
			if k == "failover" {
				cfg.FailoverAt = x
			} else {
				cfg.RestartAt = x
			}
		default:
			n, err = strconv.ParseUint(v, 10, 32)
			switch k {
			case "commands":
				cfg.Commands = int(n)
			case "clients":
				cfg.Clients = int(n)
			case "seed":
				cfg.Seed = n
			case "window":
				cfg.Window = int(n)
			case "nodes":
				cfg.Nodes = int(n)
			case "verbose":
				cfg.Verbose = n != 0
			default:
				return &argError{f, "unknown option"}
			}
		}
		if err != nil {
			return &argError{f, err.Error()}
		}
	}
	return nil
}

type argError struct{ arg, why string }

func (e *argError) Error() string { return "argument " + e.arg + ": " + e.why }

func platform() string {
	if runtime.Compiler == "tinygo" {
		return "TinyGo " + runtime.Version() + ", " + board
	}
	return "host " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

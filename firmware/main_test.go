package main

import (
	"testing"

	"github.com/embraft/embraft/firmware/mcu"
)

func TestParseArgs(t *testing.T) {
	var cfg mcu.Config
	err := parseArgs(&cfg, "/tmp/x/firmware.elf commands=50 clients=2 seed=9 data=d window=128 failover=0.5 restart=0.8 verbose=1 nodes=3")
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		commands, clients, window, nodes int
		seed                             uint64
		data                             string
		failover, restart                float64
		verbose                          bool
	}
	got := view{cfg.Commands, cfg.Clients, cfg.Window, cfg.Nodes, cfg.Seed, cfg.DataDir, cfg.FailoverAt, cfg.RestartAt, cfg.Verbose}
	want := view{50, 2, 128, 3, 9, "d", 0.5, 0.8, true}
	if got != want {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	for _, bad := range []string{"x commands", "x commands=-1", "x bogus=1", "x failover=abc"} {
		if err := parseArgs(&cfg, bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

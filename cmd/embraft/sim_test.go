package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSimSingleSeed(t *testing.T) {
	var out bytes.Buffer
	code := runSim([]string{"--seed", "3", "--steps", "1500"}, &out)
	if code != 0 || !strings.Contains(out.String(), "ok: no violation") || !strings.Contains(out.String(), "seed 3:") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

func TestSimCampaign(t *testing.T) {
	var out bytes.Buffer
	code := runSim([]string{"--seeds", "6", "--start-seed", "10", "--steps", "800", "--nodes", "3", "--workers", "2"}, &out)
	text := out.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	for _, want := range []string{"6/6 seeds", "(10..15; 3 nodes", "faults injected", "  isolate-leader", "client ops checked",
		"violations                     0", "seeds/minute"} {
		if !strings.Contains(text, want) {
			t.Errorf("campaign output lacks %q:\n%s", want, text)
		}
	}
}

func TestSimScript(t *testing.T) {
	var out bytes.Buffer
	if code := runSim([]string{"--seed", "2", "--steps", "600", "--script", "0109030705", "--script-every", "50"}, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

func TestSimFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "0"}, {"--nodes", "10"}, {"--steps", "0"}, {"--keys", "0"}, {"--seeds", "-1"},
		{"--script", "zz"}, {"--workers", "0"}, {"--value-bytes", "5000"}, {"stray"},
	} {
		var out bytes.Buffer
		if code := runSim(args, &out); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out.String())
		}
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the demo as a user would (shorter) and checks that it
// shows the failover and identical state, and exits 0.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	code := runDemo([]string{"--duration", "2s", "--tick", "2ms", "--clients", "4", "--seed", "3"}, &out)
	text := out.String()
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, text)
	}
	for _, want := range []string{
		"became leader", "stopping the leader", "re-election complete", "restarting the stopped node",
		"summary: all 5 nodes applied the same sequence", "cluster stopped cleanly",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestDemoOpsBoundAndSmallCluster(t *testing.T) {
	var out bytes.Buffer
	code := runDemo([]string{"--nodes", "1", "--ops", "50", "--duration", "0", "--tick", "2ms", "--log-level", "warn"}, &out)
	if code != 0 || !strings.Contains(out.String(), "summary: all 1 nodes") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

func TestDemoFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "0"}, {"--nodes", "8"}, {"--storage", "tape"}, {"--transport", "pigeon"},
		{"--payload", "5000"}, {"--log-level", "loud"}, {"--drop", "1"}, {"stray"}, {"--duration", "0"},
	} {
		var out bytes.Buffer
		if code := runDemo(args, &out); code == 0 {
			t.Errorf("%v: exit 0, want an error", args)
		}
	}
}

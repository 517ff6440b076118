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
	code := runDemo([]string{"--duration", "2s", "--tick", "2ms", "--clients", "4", "--seed", "3",
		"--data-dir", t.TempDir()}, &out)
	text := out.String()
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, text)
	}
	for _, want := range []string{
		"network configured: StaticConfigV4 { address: 192.0.2.1/24", "starts fresh",
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
	code := runDemo([]string{"--nodes", "1", "--ops", "50", "--duration", "0", "--tick", "2ms", "--log-level", "warn",
		"--storage", "memory", "--transport", "channel"}, &out)
	if code != 0 || !strings.Contains(out.String(), "summary: all 1 nodes") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

func TestDemoFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "0"}, {"--nodes", "8"}, {"--storage", "tape"}, {"--transport", "pigeon"},
		{"--payload", "5000"}, {"--log-level", "loud"}, {"--drop", "1"}, {"stray"}, {"--duration", "0"},
		{"--loss", "0.2", "--transport", "channel"}, {"--partition", "1,2/2,3"}, {"--partition", "9/1"},
		{"--partition", "leader", "--transport", "udp"}, {"--partition", "1/2", "--partition-at", "5s", "--duration", "3s"},
	} {
		var out bytes.Buffer
		if code := runDemo(args, &out); code == 0 {
			t.Errorf("%v: exit 0, want an error", args)
		}
	}
}

// TestDemoResumes runs the demo twice on one directory: the second run
// says it resumed and ends with more state than the first.
func TestDemoResumes(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--duration", "1s", "--tick", "2ms", "--clients", "2", "--no-failover",
		"--transport", "channel", "--data-dir", dir, "--log-level", "warn"}
	var first, second bytes.Buffer
	if code := runDemo(args, &first); code != 0 {
		t.Fatalf("first run exited %d:\n%s", code, first.String())
	}
	if code := runDemo(args, &second); code != 0 {
		t.Fatalf("second run exited %d:\n%s", code, second.String())
	}
	if !strings.Contains(second.String(), "Node 1 resumed from") || !strings.Contains(second.String(), "resumed         from the state persisted") {
		t.Fatalf("second run does not report resuming:\n%s", second.String())
	}
}

// TestDemoPartition: the leader is cut off with a minority; the output
// shows the minority cannot commit, a new leader, and the old leader
// stepping down and catching up after healing.
func TestDemoPartition(t *testing.T) {
	var out bytes.Buffer
	code := runDemo([]string{"--duration", "3s", "--tick", "2ms", "--clients", "2", "--storage", "memory",
		"--loss", "0.05", "--jitter", "1ms", "--partition", "leader"}, &out)
	text := out.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	for _, want := range []string{"partitioning the network", "minority cannot commit", "new leader observed",
		"healing the partition", "old leader stepped down and caught up"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

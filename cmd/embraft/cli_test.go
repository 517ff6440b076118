package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp/seal"
)

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := fs.String("a", "", "")
	b := fs.Bool("b", false, "")
	pos, err := parseInterleaved(fs, []string{"k", "--a", "1", "v", "-b", "--", "-x", "--a"})
	if err != nil || *a != "1" || !*b || !reflect.DeepEqual(pos, []string{"k", "v", "-x", "--a"}) {
		t.Fatalf("%q %v %q %v", pos, err, *a, *b)
	}
	if _, err := parseInterleaved(fs, []string{"--nope"}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestNodeFlags(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{
		{},
		{"--id", "1"},
		{"--id", "1", "--peers", "1=127.0.0.1:9001"},
		{"--id", "1", "--peers", "1=127.0.0.1:9001", "--data-dir", "d", "extra"},
	} {
		if _, err := parseNodeFlags(args, &out); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	f, err := parseNodeFlags([]string{"--id", "2", "--peers", "1=127.0.0.1:9001,2=127.0.0.1:9002", "--data-dir", "d"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(seal.EnvKey, "")
	cfg, err := memberConfig(f, nil)
	if err != nil || cfg.ID != 2 || len(cfg.Peers) != 2 || cfg.ClusterID != 0xEB || cfg.Key != nil {
		t.Fatalf("%+v %v", cfg, err)
	}
	f.listen = "127.0.0.1:1"
	if _, err := memberConfig(f, nil); err == nil {
		t.Fatal("--listen differing from --peers accepted")
	}
	f.listen, f.peers = "127.0.0.1:9005", "1=127.0.0.1:9001"
	f.id = 5
	if cfg, err := memberConfig(f, nil); err != nil || cfg.Peers[5] != "127.0.0.1:9005" {
		t.Fatalf("--listen adds the member: %+v %v", cfg, err)
	}
	f.clusterID = "zz"
	if _, err := memberConfig(f, nil); err == nil {
		t.Fatal("bad cluster ID accepted")
	}
	// --join and --voters.
	base := []string{"--id", "2", "--peers", "1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003", "--data-dir", "d"}
	if _, err := parseNodeFlags(append(base, "--join", "--voters", "1,2"), &out); err == nil {
		t.Fatal("--join with --voters accepted")
	}
	f, err = parseNodeFlags(append(base, "--join"), &out)
	if cfg, cerr := memberConfig(f, nil); err != nil || cerr != nil || !cfg.Join || cfg.Voters != nil {
		t.Fatalf("--join: %+v %v %v", cfg, err, cerr)
	}
	f, err = parseNodeFlags(append(base, "--voters", "1, 2"), &out)
	if cfg, cerr := memberConfig(f, nil); err != nil || cerr != nil || cfg.Join || !reflect.DeepEqual(cfg.Voters, []raft.NodeID{1, 2}) {
		t.Fatalf("--voters: %+v %v %v", cfg, err, cerr)
	}
	for _, bad := range []string{"1,3,x", "1,0", "1,3", "1,2,4"} { // bad IDs, without self, without an address
		f, _ := parseNodeFlags(append(base, "--voters", bad), &out)
		if _, err := memberConfig(f, nil); err == nil {
			t.Errorf("--voters %s accepted", bad)
		}
	}
	if code := runClient("put", []string{"k"}, &out, &out); code != exitUsage {
		t.Fatalf("put with one argument: exit %d", code)
	}
	// Membership verbs: usage errors before any datagram.
	for _, args := range [][]string{
		{"member"}, {"member", "add"}, {"member", "add-voter"}, {"member", "add-voter", "0"},
		{"member", "add-voter", "x"}, {"member", "remove", "1", "2"}, {"member", "list", "1"},
	} {
		if code := runClient(args[0], append(args[1:], "--cluster", "127.0.0.1:1"), &out, &out); code != exitUsage {
			t.Errorf("%q: exit %d", args, code)
		}
	}
	for _, args := range [][]string{{"transfer"}, {"transfer", "-1"}, {"transfer", "1", "2"}} {
		if code := runClient(args[0], append(args[1:], "--cluster", "127.0.0.1:1"), &out, &out); code != exitUsage {
			t.Errorf("%q: exit %d", args, code)
		}
	}
	if code := runClient("get", []string{"k"}, &out, &out); code != exitUsage {
		t.Fatalf("get without --cluster: exit %d", code)
	}
}

// freePeerPorts finds n UDP ports p on 127.0.0.1 such that p and p+1000
// (the default client port) are both free.
func freePeerPorts(t *testing.T, n int) []int {
	t.Helper()
	var held []*net.UDPConn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		if p+1000 > 65535 {
			_ = c.Close()
			continue
		}
		c2, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1000})
		if err != nil {
			_ = c.Close()
			continue
		}
		held = append(held, c, c2)
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatal("no free port pairs")
	}
	return ports
}

// TestQuickStart runs the README's multi-process quick start: three
// `embraft node` processes with default client ports and a key from the
// environment, then put, get, cas, del and status as a user types them,
// then SIGINT (exit 0).
func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 3 processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	ports := freePeerPorts(t, 3)
	var peers, cluster []string
	for i, p := range ports {
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d", i+1, p))
		cluster = append(cluster, fmt.Sprintf("127.0.0.1:%d", p+1000))
	}
	key := seal.NewKey()
	env := append(os.Environ(), seal.EnvKey+"="+key.String())
	var procs []*exec.Cmd
	var logs []*bytes.Buffer
	for i := range ports {
		var logb bytes.Buffer
		cmd := exec.Command(bin, "node", "--id", strconv.Itoa(i+1), "--peers", strings.Join(peers, ","),
			"--data-dir", filepath.Join(dir, "node"+strconv.Itoa(i+1)))
		cmd.Env, cmd.Stderr = env, &logb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		logs = append(logs, &logb)
	}
	defer func() {
		for _, p := range procs {
			if p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
		if t.Failed() {
			for i, l := range logs {
				t.Logf("node %d:\n%s", i+1, l.String())
			}
		}
	}()
	run := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--cluster", strings.Join(cluster, ","))...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if code != wantCode {
			t.Fatalf("%q: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out.String(), errb.String())
		}
		return out.String()
	}
	if got := run(0, "put", "greeting", "hello"); got != "ok\n" {
		t.Fatalf("put: %q", got)
	}
	if got := run(0, "get", "greeting"); got != "hello\n" {
		t.Fatalf("get: %q", got)
	}
	if got := run(0, "get", "greeting", "--stale"); got != "hello\n" && got != "not found\n" {
		t.Fatalf("get --stale: %q", got)
	}
	if got := run(exitNegative, "get", "nothing"); got != "not found\n" {
		t.Fatalf("get missing: %q", got)
	}
	if got := run(0, "cas", "greeting", "hello", "hi"); got != "ok\n" {
		t.Fatalf("cas: %q", got)
	}
	if got := run(exitNegative, "cas", "greeting", "hello", "hey"); got != "mismatch: current value \"hi\"\n" {
		t.Fatalf("cas mismatch: %q", got)
	}
	if got := run(0, "del", "greeting"); got != "ok\n" {
		t.Fatalf("del: %q", got)
	}
	if got := run(exitNegative, "del", "greeting"); got != "not found\n" {
		t.Fatalf("del again: %q", got)
	}
	status := run(0, "status")
	if strings.Count(status, "\n") != 4 || strings.Count(status, "leader ") != 1 || strings.Count(status, "follower") != 2 {
		t.Fatalf("status:\n%s", status)
	}
	t.Logf("status:\n%s", status)
	// A client without the key gets no answer.
	cmd := exec.Command(bin, "get", "k", "--cluster", cluster[0], "--timeout", "300ms", "--attempt-timeout", "100ms")
	cmd.Env = append(os.Environ(), seal.EnvKey+"=")
	if err := cmd.Run(); err == nil {
		t.Fatal("a client without the key was answered")
	}
	// One member down: status marks it, writes go on.
	_ = procs[2].Process.Signal(syscall.SIGKILL)
	_ = procs[2].Wait()
	if got := run(0, "put", "k", "v"); got != "ok\n" {
		t.Fatalf("put with a member down: %q", got)
	}
	if status := run(0, "status", "--attempt-timeout", "200ms"); !strings.Contains(status, "unreachable") {
		t.Fatalf("status with a member down:\n%s", status)
	}
	// Graceful shutdown on SIGINT.
	for _, p := range procs[:2] {
		_ = p.Process.Signal(os.Interrupt)
	}
	for i, p := range procs[:2] {
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node %d: %v", i+1, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("node %d did not stop", i+1)
		}
	}
	if !strings.Contains(logs[0].String(), "shutting down") {
		t.Errorf("node 1 log:\n%s", logs[0].String())
	}
}

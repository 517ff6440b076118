package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/embraft/embraft/transport/udp/seal"
)

// TestMultiProcessMembership drives membership through the real binary:
// three `embraft node` processes bootstrap with --voters 1,2,3 while
// their address book also names node 4, started with --join. With the
// CLI (sealed client protocol, any member: non-leaders redirect) it adds
// 4 as a learner, waits until it has caught up, promotes it, removes an
// original voter that does not lead and SIGTERMs it, transfers leadership
// to 4, and checks with get and status that writes from before and after
// are readable from the new membership.
func TestMultiProcessMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 4 processes")
	}
	start := time.Now()
	bin := buildBinary(t)
	dir := t.TempDir()
	key := seal.NewKey()
	keyFile := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(keyFile, []byte(key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 4
	ports := freePorts(t, 2*n)
	var peers, clientAddrs []string
	for i := 1; i <= n; i++ {
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d", i, ports[i-1]))
		clientAddrs = append(clientAddrs, fmt.Sprintf("127.0.0.1:%d", ports[n+i-1]))
	}
	procs := make([]*proc, n)
	for i := range procs {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		args := []string{"node", "--id", strconv.Itoa(i + 1), "--peers", strings.Join(peers, ","),
			"--client", clientAddrs[i], "--data-dir", filepath.Join(dir, fmt.Sprintf("node-%d", i+1)),
			"--key-file", keyFile}
		if i+1 == n {
			args = append(args, "--join")
		} else {
			args = append(args, "--voters", "1,2,3")
		}
		procs[i] = &proc{id: i + 1, log: logf, args: args}
		procs[i].start(t, bin)
	}
	defer func() {
		for _, p := range procs {
			if p.running() {
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			for _, p := range procs {
				b, _ := os.ReadFile(p.log.Name())
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				if len(lines) > 20 {
					lines = lines[len(lines)-20:]
				}
				t.Logf("node %d log tail:\n%s", p.id, strings.Join(lines, "\n"))
			}
		}
	}()

	// cli runs one client command; it returns the exit code and stdout.
	cli := func(cluster []string, args ...string) (int, string, string) {
		cmd := exec.Command(bin, append(args, "--cluster", strings.Join(cluster, ","), "--key-file", keyFile)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return code, out.String(), errb.String()
	}
	// untilExit reruns a command until it exits with code and an output
	// (stdout; stderr for exit status 1) that ok accepts, within a
	// generous deadline for slow machines; a retry of any of these
	// commands is harmless.
	untilExit := func(what string, want int, ok func(string) bool, cluster []string, args ...string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for tries := 1; ; tries++ {
			code, out, errs := cli(cluster, args...)
			if code == exitError {
				out = errs
			}
			if code == want && ok(out) {
				t.Logf("%s (%v, try %d): embraft %s\n%s", what, time.Since(start).Round(time.Millisecond), tries,
					strings.Join(args, " "), strings.TrimRight(out, "\n"))
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: embraft %s: exit %d\nstdout: %s\nstderr: %s", what, strings.Join(args, " "), code, out, errs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	until := func(what string, ok func(string) bool, cluster []string, args ...string) string {
		t.Helper()
		return untilExit(what, 0, ok, cluster, args...)
	}
	is := func(want string) func(string) bool { return func(out string) bool { return out == want } }
	has := func(lines ...string) func(string) bool {
		return func(out string) bool {
			for _, l := range lines {
				if !slices.Contains(strings.Split(out, "\n"), l) {
					return false
				}
			}
			return true
		}
	}
	all := clientAddrs

	until("a write before the change", is("ok\n"), all, "put", "before", "1")
	until("the initial configuration", has("voters: 1 2 3", "outgoing: -", "learners: -"), all, "member", "list")
	untilExit("node 4 holds nothing before it is added", exitNegative, is("not found\n"),
		clientAddrs[3:], "get", "before", "--stale", "--attempts", "1")
	until("add node 4 as a learner", has("voters: 1 2 3", "learners: 4"), all, "member", "add-learner", "4")
	until("the learner caught up", is("1\n"), clientAddrs[3:], "get", "before", "--stale", "--attempts", "1")
	out := until("promote node 4", has("voters: 1 2 3 4", "learners: -"), all, "member", "add-voter", "4")

	// Remove an original voter that does not lead, then stop it.
	lead := 0
	for _, l := range strings.Split(out, "\n") {
		if _, err := fmt.Sscanf(l, "leader: %d", &lead); err == nil {
			break
		}
	}
	gone := 1
	for gone == lead {
		gone++
	}
	var rest []string
	var restAddrs []string
	for i := 1; i <= n; i++ {
		if i != gone {
			rest = append(rest, strconv.Itoa(i))
			restAddrs = append(restAddrs, clientAddrs[i-1])
		}
	}
	until(fmt.Sprintf("remove node %d (leader %d)", gone, lead), has("voters: "+strings.Join(rest, " "), "learners: -"),
		all, "member", "remove", strconv.Itoa(gone))
	if code := procs[gone-1].stop(t); code != 0 {
		t.Errorf("node %d exited %d on SIGTERM", gone, code)
	}

	until("transfer leadership to node 4", has("voters: "+strings.Join(rest, " ")), restAddrs, "transfer", "4")
	until("node 4 leads", func(out string) bool {
		return strings.HasPrefix(out, "voters: ") && strings.Contains(out, "\nleader: 4 ")
	},
		restAddrs, "member", "list")
	until("a write after the change", is("ok\n"), restAddrs, "put", "after", "2")
	until("the write from before", is("1\n"), restAddrs, "get", "before")
	until("the write from after", is("2\n"), restAddrs, "get", "after")
	// status: node 4 leads, the two others follow it.
	until("status", func(out string) bool {
		rows := strings.Split(strings.TrimSpace(out), "\n")
		if len(rows) != 4 {
			return false
		}
		leaders := 0
		for _, r := range rows[1:] {
			f := strings.Fields(r)
			if len(f) < 5 || f[4] != "4" || (f[2] == "leader") != (f[0] == "4") {
				return false
			}
			if f[2] == "leader" {
				leaders++
			}
		}
		return leaders == 1
	}, restAddrs, "status")
	// Every member of the new configuration holds both writes.
	for i, addr := range restAddrs {
		for k, v := range map[string]string{"before": "1", "after": "2"} {
			until(fmt.Sprintf("member %s holds %s", rest[i], k), is(v+"\n"), []string{addr}, "get", k, "--stale", "--attempts", "1")
		}
	}
	// Refusals: demoting a voter, transferring to a non-member.
	refused := func(errs string) bool { return strings.Contains(errs, "leader refused") }
	untilExit("demoting a voter is refused", exitError, refused, restAddrs, "member", "add-learner", "4")
	untilExit("a transfer to a removed node is refused", exitError, refused, restAddrs, "transfer", strconv.Itoa(gone))

	for _, p := range procs {
		if p.id == gone {
			continue
		}
		if code := p.stop(t); code != 0 {
			t.Errorf("node %d exited %d on SIGTERM", p.id, code)
		}
	}
	t.Logf("membership scenario done in %v", time.Since(start).Round(time.Millisecond))
}

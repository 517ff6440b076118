package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/embraft/embraft/client"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

// The multi-process test: five `embraft node` processes on 127.0.0.1 with
// a cluster key, a concurrent client workload from this process, SIGKILLs
// of the leader and of a follower at random moments, restarts on the same
// data directories, then a porcupine check of the whole history (reads
// included, final reads of every key at the end) against a kv model.

const itCluster wire.ClusterID = 0xEB

// itConfig sizes the run; EMBRAFT_IT_SEED replays a seed.
type itConfig struct {
	nodes, clients, keys int
	rounds               int           // kill rounds (leader + follower each)
	warmup               time.Duration // workload before the first kill
	cooldown             time.Duration // workload after the last restart
}

func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: builds the binary and runs 5 processes (~30 s)")
	}
	cfg := itConfig{nodes: 5, clients: 5, keys: 3, rounds: 3, warmup: 1500 * time.Millisecond, cooldown: 1500 * time.Millisecond}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EMBRAFT_IT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("EMBRAFT_IT_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with EMBRAFT_IT_SEED=%d)", seed, seed)
	defer func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d (replay with EMBRAFT_IT_SEED=%d)", seed, seed)
		}
	}()
	runMultiProcess(t, cfg, seed)
}

// proc is one node process.
type proc struct {
	id   int
	args []string
	log  *os.File
	cmd  *exec.Cmd
	done chan error
}

func (p *proc) start(t *testing.T, bin string) {
	t.Helper()
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start node %d: %v", p.id, err)
	}
	p.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(p.cmd, p.done)
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case err := <-p.done:
		p.done <- err // keep it for wait
		return false
	default:
		return true
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("node %d did not die", p.id)
	}
	p.cmd = nil
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.cmd = nil
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			return -1
		}
		return 0
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.cmd = nil
		return -2
	}
}

// freePorts reserves n distinct free UDP ports on 127.0.0.1 (bound at
// once, then released together, so they differ from each other).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var conns []*net.UDPConn
	var ports []int
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	return ports
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "embraft")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

func runMultiProcess(t *testing.T, cfg itConfig, seed uint64) {
	testStart := time.Now()
	bin := buildBinary(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, 0x17))

	key := seal.NewKey()
	keyFile := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(keyFile, []byte(key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2*cfg.nodes)
	var peers, clientAddrs []string
	for i := 1; i <= cfg.nodes; i++ {
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d", i, ports[i-1]))
		clientAddrs = append(clientAddrs, fmt.Sprintf("127.0.0.1:%d", ports[cfg.nodes+i-1]))
	}
	procs := make([]*proc, cfg.nodes)
	for i := range procs {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		procs[i] = &proc{id: i + 1, log: logf, args: []string{"node", "--id", strconv.Itoa(i + 1),
			"--peers", strings.Join(peers, ","), "--client", clientAddrs[i],
			"--data-dir", filepath.Join(dir, fmt.Sprintf("node-%d", i+1)),
			"--cluster-id", strconv.FormatUint(uint64(itCluster), 10), "--key-file", keyFile, "--log-level", "info"}}
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
				if len(lines) > 15 {
					lines = lines[len(lines)-15:]
				}
				t.Logf("node %d log tail:\n%s", p.id, strings.Join(lines, "\n"))
			}
		}
	}()

	dial := func(seed uint64) *client.Client {
		c, err := client.Dial(client.Config{Servers: clientAddrs, ClusterID: itCluster, Key: &key,
			AttemptTimeout: 300 * time.Millisecond, MaxAttempts: 40, Backoff: 20 * time.Millisecond, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	admin := dial(1)
	defer admin.Close()
	leaderOf := func() (raft.NodeID, []client.NodeStatus) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		sts := admin.StatusAll(ctx, 1)
		var lead raft.NodeID
		var term raft.Term
		for _, s := range sts {
			if s.Err == nil && s.Status.Role == raft.RoleLeader && s.Status.Term >= term {
				lead, term = s.Node, s.Status.Term
			}
		}
		return lead, sts
	}
	waitLeader := func(d time.Duration) raft.NodeID {
		deadline := time.Now().Add(d)
		for {
			if l, _ := leaderOf(); l != raft.None {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("no leader within %v", d)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := waitLeader(15 * time.Second)
	t.Logf("leader %d elected %v after start", first, time.Since(testStart).Round(time.Millisecond))

	// The workload.
	h := &history{start: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range cfg.clients {
		wg.Add(1)
		cseed := rng.Uint64()
		go func() {
			defer wg.Done()
			workload(t, dial(cseed), w, cfg.keys, cseed, h, stop)
		}()
	}

	// Faults: kill the leader and a follower, restart them.
	kills := 0
	sleep := func(lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)+1))) }
	time.Sleep(cfg.warmup)
	for round := 0; round < cfg.rounds; round++ {
		lead := waitLeader(15 * time.Second)
		var victims []int
		victims = append(victims, int(lead))
		procs[lead-1].kill(t)
		kills++
		sleep(0, 800*time.Millisecond)
		for {
			f := 1 + rng.IntN(cfg.nodes)
			if f != int(lead) {
				victims = append(victims, f)
				procs[f-1].kill(t)
				kills++
				break
			}
		}
		t.Logf("round %d at %v: SIGKILL leader %d and follower %d", round+1, time.Since(h.start).Round(time.Millisecond), victims[0], victims[1])
		sleep(500*time.Millisecond, 2*time.Second)
		for _, v := range victims {
			procs[v-1].start(t, bin)
		}
		sleep(500*time.Millisecond, 2*time.Second)
	}
	time.Sleep(cfg.cooldown)
	close(stop)
	wg.Wait()

	// Final reads of every key, in the history: they must show every
	// acknowledged write that linearizes before them.
	fin := dial(rng.Uint64())
	defer fin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	final := map[string]string{}
	for k := range cfg.keys {
		key := "k" + strconv.Itoa(k)
		call := h.now()
		v, found, err := fin.Get(ctx, []byte(key))
		if err != nil {
			t.Fatalf("final read of %s: %v", key, err)
		}
		h.add(porcupine.Operation{ClientId: cfg.clients, Input: kvIn{op: 'g', key: key}, Call: call,
			Output: kvOut{found: found, value: string(v)}, Return: h.now()})
		if found {
			final[key] = string(v)
		}
	}

	// Every replica converges to the same applied index and values.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, sts := leaderOf()
		ok := true
		for _, s := range sts {
			ok = ok && s.Err == nil && s.Status.Applied == sts[0].Status.Applied && s.Status.Applied > 0
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas did not converge: %+v", sts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, addr := range clientAddrs {
		one, err := client.Dial(client.Config{Servers: []string{addr}, ClusterID: itCluster, Key: &key, AttemptTimeout: time.Second, MaxAttempts: 5})
		if err != nil {
			t.Fatal(err)
		}
		for k := range cfg.keys {
			key := "k" + strconv.Itoa(k)
			v, found, err := one.StaleGet(ctx, []byte(key))
			if err != nil || found != (final[key] != "") || string(v) != final[key] {
				t.Errorf("node %d holds %s = %q (found %v, %v), the cluster %q", i+1, key, v, found, err, final[key])
			}
		}
		_ = one.Close()
	}

	// Graceful shutdown: SIGTERM, exit 0.
	for _, p := range procs {
		if code := p.stop(t); code != 0 {
			t.Errorf("node %d exited %d on SIGTERM", p.id, code)
		}
	}

	ops := h.operations()
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, 60*time.Second)
	unknown, reads := 0, 0
	for _, op := range ops {
		if op.Output.(kvOut).unknown {
			unknown++
		}
		if op.Input.(kvIn).op == 'g' {
			reads++
		}
	}
	t.Logf("%d kills, %d operations (%d reads, %d with unknown outcome, %d client retries), linearizable: %v; %v in all",
		kills, len(ops), reads, unknown, h.retries, res, time.Since(testStart).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("embraft-history-%d.html", seed))
		if err := porcupine.VisualizePath(kvModel, info, path); err == nil {
			t.Logf("history visualised in %s", path)
		}
		t.Fatalf("history is not linearizable (%v)", res)
	}
	if len(ops) < 200 {
		t.Fatalf("only %d operations completed", len(ops))
	}
}

// history records operations with real timestamps (nanoseconds since
// start).
type history struct {
	start   time.Time
	mu      sync.Mutex
	ops     []porcupine.Operation
	retries uint64
}

func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *history) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

// workload runs one client session until stop: puts of unique values,
// linearizable gets and compare-and-swaps on a few keys.
func workload(t *testing.T, c *client.Client, id, keys int, seed uint64, h *history, stop chan struct{}) {
	defer c.Close()
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	ctx := context.Background()
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Register(rctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-stop:
			return
		default:
		}
	}
	last := map[string]string{} // the value this client last saw per key
	for n := 0; ; n++ {
		select {
		case <-stop:
			h.mu.Lock()
			h.retries += c.Retries()
			h.mu.Unlock()
			return
		default:
		}
		key := "k" + strconv.Itoa(rng.IntN(keys))
		value := fmt.Sprintf("c%d-%d", id, n)
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		call := h.now()
		var in kvIn
		var out kvOut
		switch r := rng.IntN(10); {
		case r < 4:
			in = kvIn{op: 'p', key: key, value: value}
			res, err := c.Put(octx, []byte(key), []byte(value))
			switch {
			case err != nil:
				out.unknown = true
			case res.Status != kv.StatusOK:
				t.Errorf("put answered %v", res.Status)
				out.unknown = true
			}
		case r < 7:
			in = kvIn{op: 'g', key: key}
			v, found, err := c.Get(octx, []byte(key))
			if err != nil {
				cancel()
				continue // a failed read has no effect: leave it out
			}
			out = kvOut{found: found, value: string(v)}
			if found {
				last[key] = string(v)
			}
		default:
			expected := last[key]
			if expected == "" {
				expected = "none"
			}
			in = kvIn{op: 'c', key: key, value: value, expected: expected}
			res, err := c.CAS(octx, []byte(key), []byte(expected), []byte(value))
			switch {
			case err != nil:
				out.unknown = true
			case res.Status == kv.StatusOK:
				out.status = kv.StatusOK
				last[key] = value
			case res.Status == kv.StatusCASMismatch:
				out.status, out.value = kv.StatusCASMismatch, string(res.Value)
				last[key] = string(res.Value)
			case res.Status == kv.StatusNotFound:
				out.status = kv.StatusNotFound
			default:
				t.Errorf("cas answered %v", res.Status)
				out.unknown = true
			}
		}
		cancel()
		ret := h.now()
		if out.unknown {
			ret = math.MaxInt64 // may take effect at any time after the call
		}
		h.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
	}
}

type kvIn struct {
	op              byte // 'p' put, 'g' get, 'c' cas
	key             string
	value, expected string
}

type kvOut struct {
	unknown bool      // no outcome known (writes only)
	found   bool      // get
	value   string    // get: the value; cas mismatch: the current value
	status  kv.Status // cas
}

type kvState struct {
	value  string
	exists bool
}

// kvModel is a key-value register per key.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k := op.Input.(kvIn).key
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range order {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return kvState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(kvState), input.(kvIn), output.(kvOut)
		switch in.op {
		case 'p':
			return true, kvState{value: in.value, exists: true}
		case 'g':
			return out.found == st.exists && out.value == st.value, st
		}
		match := st.exists && st.value == in.expected
		if out.unknown {
			if match {
				return true, kvState{value: in.value, exists: true}
			}
			return true, st
		}
		switch out.status {
		case kv.StatusOK:
			return match, kvState{value: in.value, exists: true}
		case kv.StatusCASMismatch:
			return st.exists && !match && out.value == st.value, st
		default: // not found
			return !st.exists, st
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(kvIn), output.(kvOut)
		res := "?"
		if !out.unknown {
			switch in.op {
			case 'g':
				res = fmt.Sprintf("%q found=%v", out.value, out.found)
			case 'c':
				res = out.status.String() + " " + out.value
			default:
				res = "ok"
			}
		}
		switch in.op {
		case 'p':
			return fmt.Sprintf("put(%s, %s) -> %s", in.key, in.value, res)
		case 'g':
			return fmt.Sprintf("get(%s) -> %s", in.key, res)
		}
		return fmt.Sprintf("cas(%s, %s, %s) -> %s", in.key, in.expected, in.value, res)
	},
}

// TestKVModel checks the model on small histories: it must accept an
// unknown-outcome write that later reads see (or do not see), and reject
// a lost acknowledged write, a stale read and a CAS that saw a value that
// was never there.
func TestKVModel(t *testing.T) {
	put := func(c int, v string, call, ret int64, unknown bool) porcupine.Operation {
		if unknown {
			ret = math.MaxInt64
		}
		return porcupine.Operation{ClientId: c, Input: kvIn{op: 'p', key: "k", value: v}, Call: call, Output: kvOut{unknown: unknown}, Return: ret}
	}
	get := func(c int, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: kvIn{op: 'g', key: "k"}, Call: call, Output: kvOut{found: v != "", value: v}, Return: ret}
	}
	cas := func(c int, exp, v string, st kv.Status, cur string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: kvIn{op: 'c', key: "k", value: v, expected: exp}, Call: call,
			Output: kvOut{status: st, value: cur}, Return: ret}
	}
	for name, tc := range map[string]struct {
		h  []porcupine.Operation
		ok bool
	}{
		"unknown put seen":        {[]porcupine.Operation{put(0, "a", 0, 0, true), get(1, "a", 10, 20)}, true},
		"unknown put not seen":    {[]porcupine.Operation{put(0, "a", 0, 0, true), get(1, "", 10, 20)}, true},
		"unknown put flickers":    {[]porcupine.Operation{put(0, "a", 0, 0, true), get(1, "a", 10, 20), get(1, "", 30, 40)}, false},
		"lost acknowledged write": {[]porcupine.Operation{put(0, "a", 0, 5, false), get(1, "", 10, 20)}, false},
		"stale read":              {[]porcupine.Operation{put(0, "a", 0, 5, false), put(0, "b", 6, 9, false), get(1, "a", 10, 20)}, false},
		"concurrent read":         {[]porcupine.Operation{put(0, "a", 0, 5, false), put(0, "b", 6, 15, false), get(1, "a", 10, 20)}, true},
		"cas ok":                  {[]porcupine.Operation{put(0, "a", 0, 5, false), cas(1, "a", "b", kv.StatusOK, "", 10, 20), get(0, "b", 30, 40)}, true},
		"cas phantom mismatch":    {[]porcupine.Operation{put(0, "a", 0, 5, false), cas(1, "x", "b", kv.StatusCASMismatch, "z", 10, 20)}, false},
		"cas not found":           {[]porcupine.Operation{cas(1, "x", "b", kv.StatusNotFound, "", 10, 20), put(0, "a", 30, 35, false)}, true},
	} {
		if got := porcupine.CheckOperations(kvModel, tc.h); got != tc.ok {
			t.Errorf("%s: linearizable = %v, want %v", name, got, tc.ok)
		}
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/embraft/embraft/client"
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// Exit codes of the client commands.
const (
	exitOK       = 0
	exitError    = 1 // the request failed, or its outcome is unknown
	exitUsage    = 2
	exitNegative = 3 // get/del/cas: not found; cas: mismatch
)

// envCluster may hold the --cluster list.
const envCluster = "EMBRAFT_CLUSTER"

const clientUsage = `usage: embraft put KEY VALUE   --cluster ADDR,ADDR,... [flags]
       embraft get KEY [--stale] --cluster ...
       embraft del KEY           --cluster ...
       embraft cas KEY OLD NEW   --cluster ...
       embraft status            --cluster ...
       embraft member add-learner ID | add-voter ID | remove ID | list   --cluster ...
       embraft transfer ID       --cluster ...

ADDR are the members' client addresses (default: peer port + 1000);
--cluster defaults to $EMBRAFT_CLUSTER. Writes register a kv session for
this invocation and retry the same encoded command on other members (the
named leader first) until an outcome is known, --attempts times at most
and within --timeout, so a write is applied at most once. get is
linearizable (ReadIndex) unless --stale. The cluster key comes from
--key-file or $EMBRAFT_CLUSTER_KEY and must match the members'.

member and transfer are served by the leader (another member names it and
the request is retried there): 'member add-learner ID' adds a node started
with 'embraft node --join', 'member add-voter ID' adds a voter or promotes a
learner (let it catch up first: see 'status'), 'member remove ID' removes a
voter or learner, 'member list' prints the configuration, 'transfer ID'
hands leadership to voter ID. Each prints the resulting configuration. A
change the configuration already has succeeds at once, so retrying one is
harmless; one change runs at a time.

Exit status: 0 ok; 1 failed or outcome unknown; 2 usage; 3 not found (get,
del, cas) or cas mismatch.

flags:
`

type clientFlags struct {
	cluster        string
	clusterID      string
	keyFile        string
	timeout        time.Duration
	attemptTimeout time.Duration
	attempts       int
	stale          bool
}

// runClient runs one client command (put, get, del, cas, status) and
// returns the exit code.
func runClient(cmd string, args []string, stdout, stderr io.Writer) int {
	var f clientFlags
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clientUsage); fs.PrintDefaults() }
	fs.StringVar(&f.cluster, "cluster", os.Getenv(envCluster), "members' client addresses, comma-separated (default $"+envCluster+")")
	fs.StringVar(&f.clusterID, "cluster-id", defaultClusterID, "cluster ID (decimal or 0x hex)")
	fs.StringVar(&f.keyFile, "key-file", "", "file holding the cluster key (64 hex digits); default $EMBRAFT_CLUSTER_KEY")
	admin := cmd == "member" || cmd == "transfer"
	attemptTimeout := time.Second
	if admin {
		attemptTimeout = 3 * time.Second // a transfer takes up to two election timeouts
	}
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "overall time limit")
	fs.DurationVar(&f.attemptTimeout, "attempt-timeout", attemptTimeout, "time limit of one attempt at one member")
	fs.IntVar(&f.attempts, "attempts", 20, "attempts per request at most")
	if cmd == "get" {
		fs.BoolVar(&f.stale, "stale", false, "read the member's local replica without a ReadIndex round (may be stale)")
	}
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	want := map[string]int{"put": 2, "get": 1, "del": 1, "cas": 3, "status": 0, "transfer": 1}[cmd]
	if cmd == "member" {
		want = 2
		if len(pos) > 0 && pos[0] == "list" {
			want = 1
		}
	}
	switch {
	case err != nil:
	case cmd == "member" && (len(pos) == 0 || !slices.Contains([]string{"add-learner", "add-voter", "remove", "list"}, pos[0])):
		err = errors.New("member takes add-learner ID, add-voter ID, remove ID or list (see embraft member -h)")
	case len(pos) != want:
		err = fmt.Errorf("%s takes %d argument(s), got %d (see embraft %s -h)", cmd, want, len(pos), cmd)
	case admin && cmd+" "+pos[0] != "member list":
		_, err = parseNodeID(pos[len(pos)-1])
	case len(splitList(f.cluster)) == 0:
		err = errors.New("--cluster (or $" + envCluster + ") is required")
	case f.timeout <= 0 || f.attemptTimeout <= 0 || f.attempts <= 0:
		err = errors.New("--timeout, --attempt-timeout and --attempts must be positive")
	}
	if err != nil {
		fmt.Fprintf(stderr, "embraft %s: %v\n", cmd, err)
		return exitUsage
	}
	cid, err := parseClusterID(f.clusterID)
	if err != nil {
		fmt.Fprintf(stderr, "embraft %s: %v\n", cmd, err)
		return exitUsage
	}
	key, err := loadKey(f.keyFile, nil)
	if err != nil {
		fmt.Fprintf(stderr, "embraft %s: %v\n", cmd, err)
		return exitUsage
	}
	backoff := time.Duration(0) // the client's default
	if admin {
		backoff = 100 * time.Millisecond // rides out an election while the leader is unknown
	}
	c, err := client.Dial(client.Config{Servers: splitList(f.cluster), ClusterID: cid, Key: key,
		AttemptTimeout: f.attemptTimeout, MaxAttempts: f.attempts, Backoff: backoff})
	if err != nil {
		fmt.Fprintf(stderr, "embraft %s: %v\n", cmd, err)
		return exitUsage
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	code, err := clientCommand(ctx, c, cmd, pos, f, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "embraft %s: %v\n", cmd, err)
	}
	return code
}

func clientCommand(ctx context.Context, c *client.Client, cmd string, pos []string, f clientFlags, stdout io.Writer) (int, error) {
	switch cmd {
	case "status":
		return printStatus(c.StatusAll(ctx, 2), stdout)
	case "member", "transfer":
		return adminCommand(ctx, c, cmd, pos, stdout)
	case "get":
		get := c.Get
		if f.stale {
			get = c.StaleGet
		}
		v, found, err := get(ctx, []byte(pos[0]))
		if err != nil {
			return exitError, err
		}
		if !found {
			fmt.Fprintln(stdout, "not found")
			return exitNegative, nil
		}
		fmt.Fprintln(stdout, string(v))
		return exitOK, nil
	}
	// Writes: one session for this invocation.
	if err := c.Register(ctx); err != nil {
		return exitError, fmt.Errorf("registering a session: %w", err)
	}
	var res kv.Result
	var err error
	switch cmd {
	case "put":
		res, err = c.Put(ctx, []byte(pos[0]), []byte(pos[1]))
	case "del":
		res, err = c.Delete(ctx, []byte(pos[0]))
	case "cas":
		res, err = c.CAS(ctx, []byte(pos[0]), []byte(pos[1]), []byte(pos[2]))
	}
	if err != nil {
		return exitError, err
	}
	switch res.Status {
	case kv.StatusOK:
		fmt.Fprintln(stdout, "ok")
		return exitOK, nil
	case kv.StatusNotFound:
		fmt.Fprintln(stdout, "not found")
		return exitNegative, nil
	case kv.StatusCASMismatch:
		fmt.Fprintf(stdout, "mismatch: current value %q\n", res.Value)
		return exitNegative, nil
	}
	return exitError, errors.New("the store answered " + res.Status.String())
}

// printStatus prints one line per member, marking the unreachable ones.
func printStatus(sts []client.NodeStatus, stdout io.Writer) (int, error) {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tTERM\tLEADER\tCOMMIT\tAPPLIED\tLAST\tDROPS\tBAD\tUPTIME")
	up := 0
	for _, s := range sts {
		if s.Err != nil {
			fmt.Fprintf(tw, "?\t%s\tunreachable\t-\t-\t-\t-\t-\t-\t-\t-\n", s.Addr)
			continue
		}
		up++
		st := s.Status
		lead := "-"
		if st.Lead != raft.None {
			lead = strconv.FormatUint(uint64(st.Lead), 10)
		}
		uptime := (time.Duration(st.UptimeMillis) * time.Millisecond).Round(time.Second)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Node, s.Addr, st.Role, st.Term, lead,
			st.Commit, st.Applied, st.LastIndex, st.DroppedFull+st.DroppedFault, st.DroppedBad+st.ClientDropped, uptime)
	}
	_ = tw.Flush()
	if up == 0 {
		return exitError, errors.New("no member answered")
	}
	return exitOK, nil
}

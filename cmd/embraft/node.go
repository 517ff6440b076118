package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/embraft/embraft/cluster"
	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport/udp"
	"github.com/embraft/embraft/transport/udp/seal"
	"github.com/embraft/embraft/wire"
)

// defaultClusterID is the cluster ID of the node and client commands
// unless --cluster-id says otherwise.
const defaultClusterID = "0xEB"

// parseInterleaved parses fs from args allowing flags after positional
// arguments ("put k v --cluster ..."); everything after "--" is
// positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func parseClusterID(s string) (wire.ClusterID, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("--cluster-id %q: %w", s, err)
	}
	return wire.ClusterID(v), nil
}

// loadKey reads the cluster key from --key-file or $EMBRAFT_CLUSTER_KEY.
func loadKey(file string, log *slog.Logger) (*seal.Key, error) {
	k, warn, err := seal.Load(file)
	if err != nil {
		return nil, err
	}
	if warn != "" && log != nil {
		log.Warn(warn)
	}
	return k, nil
}

type nodeFlags struct {
	id        uint64
	listen    string
	peers     string
	dataDir   string
	client    string
	clusterID string
	keyFile   string
	logLevel  string
	tick      time.Duration
	join      bool
	voters    string
}

const nodeUsage = `usage: embraft node --id N --peers 1=HOST:PORT,2=HOST:PORT,... --data-dir DIR [flags]

Runs one member of a multi-process cluster: file storage in DIR, peers over
UDP, the kv state machine, and the client protocol on --client (default:
the peer port + 1000). SIGINT or SIGTERM stops it gracefully (exit 0); after
a crash it recovers from DIR. The cluster key comes from --key-file or
$EMBRAFT_CLUSTER_KEY (64 hex digits); without one, datagrams are not
authenticated (docs/SECURITY.md).

--peers is an address book: it may name nodes that are not members (yet).
On the first start in a fresh DIR the initial voters are --voters (default:
every node in --peers); with --join the node starts with no configuration
and waits to be added ('embraft member add-learner N', then 'add-voter N').
DIR records that choice: later starts take it, and the configuration, from
DIR, so --join and --voters only matter the first time.

flags:
`

func parseNodeFlags(args []string, out io.Writer) (nodeFlags, error) {
	var f nodeFlags
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprint(out, nodeUsage); fs.PrintDefaults() }
	fs.Uint64Var(&f.id, "id", 0, "this member's ID (one of --peers)")
	fs.StringVar(&f.listen, "listen", "", "peer address to listen on (default: this member's entry in --peers, which it must match)")
	fs.StringVar(&f.peers, "peers", "", "every member's peer address: 1=127.0.0.1:9001,2=127.0.0.1:9002,...")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory of this member's durable state")
	fs.StringVar(&f.client, "client", "", "client address to listen on (default: peer host, peer port + 1000; \"off\": none)")
	fs.StringVar(&f.clusterID, "cluster-id", defaultClusterID, "cluster ID (decimal or 0x hex), the same on every member and client")
	fs.StringVar(&f.keyFile, "key-file", "", "file holding the cluster key (64 hex digits); default $"+seal.EnvKey)
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.tick, "tick", 10*time.Millisecond, "Raft tick (heartbeat 10 ticks, election 30-60 ticks); the same on every member")
	fs.BoolVar(&f.join, "join", false, "fresh data directory: start with no configuration and wait to be added by the leader")
	fs.StringVar(&f.voters, "voters", "", "fresh data directory: the initial voters, e.g. 1,2,3 (default: every node in --peers)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return f, err
	}
	switch {
	case len(pos) > 0:
		return f, fmt.Errorf("unexpected argument %q", pos[0])
	case f.id == 0:
		return f, errors.New("--id is required")
	case f.peers == "" && f.listen == "":
		return f, errors.New("--peers is required")
	case f.dataDir == "":
		return f, errors.New("--data-dir is required")
	case f.tick <= 0:
		return f, errors.New("--tick must be positive")
	case f.join && f.voters != "":
		return f, errors.New("--join and --voters exclude each other (a joining node has no initial voters)")
	}
	return f, nil
}

// runNode runs one member until SIGINT or SIGTERM and returns the exit
// code.
func runNode(args []string, stdout, stderr io.Writer) int {
	f, err := parseNodeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "embraft node:", err)
		return 2
	}
	level, err := parseLevel(f.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "embraft node: --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := memberConfig(f, log)
	if err != nil {
		fmt.Fprintln(stderr, "embraft node:", err)
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	log = log.With("node", f.id) // the packages below name the node themselves
	m, err := cluster.StartMember(context.Background(), cfg)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	select {
	case sig := <-sigs:
		signal.Stop(sigs) // a second signal kills the process the default way
		log.Info("shutting down", "signal", sig.String())
		st := m.Node.Status()
		if err := m.Stop(); err != nil {
			log.Error("node had failed", "err", err)
			return 1
		}
		log.Info("stopped", "term", uint64(st.Term), "commit", uint64(st.Commit), "applied", uint64(st.Applied))
		return 0
	case <-m.Node.Done():
		err := m.Stop()
		log.Error("node stopped by itself", "err", err)
		return 1
	}
}

// memberConfig turns the flags into a cluster.MemberConfig.
func memberConfig(f nodeFlags, log *slog.Logger) (cluster.MemberConfig, error) {
	id := raft.NodeID(f.id)
	peers := map[raft.NodeID]string{}
	if f.peers != "" {
		var err error
		if peers, err = udp.ParsePeers(f.peers); err != nil {
			return cluster.MemberConfig{}, err
		}
	}
	switch self, ok := peers[id]; {
	case !ok && f.listen == "":
		return cluster.MemberConfig{}, fmt.Errorf("--peers has no entry for --id %d (or give --listen)", id)
	case !ok:
		peers[id] = f.listen
	case f.listen != "" && f.listen != self:
		return cluster.MemberConfig{}, fmt.Errorf("--listen %s differs from this member's entry in --peers (%s)", f.listen, self)
	}
	if len(peers) > cluster.MaxNodes {
		return cluster.MemberConfig{}, fmt.Errorf("at most %d members", cluster.MaxNodes)
	}
	cid, err := parseClusterID(f.clusterID)
	if err != nil {
		return cluster.MemberConfig{}, err
	}
	var voters []raft.NodeID
	for _, v := range splitList(f.voters) {
		n, err := parseNodeID(v)
		if err != nil {
			return cluster.MemberConfig{}, fmt.Errorf("--voters: %w", err)
		}
		if _, ok := peers[n]; !ok {
			return cluster.MemberConfig{}, fmt.Errorf("--voters: node %d has no address in --peers", n)
		}
		voters = append(voters, n)
	}
	if f.voters != "" && !slices.Contains(voters, id) {
		return cluster.MemberConfig{}, fmt.Errorf("--voters does not include --id %d (start a node that is not an initial voter with --join)", id)
	}
	key, err := loadKey(f.keyFile, log)
	if err != nil {
		return cluster.MemberConfig{}, err
	}
	return cluster.MemberConfig{ID: id, Peers: peers, Voters: voters, Join: f.join, ClientAddr: f.client,
		DataDir: f.dataDir, ClusterID: cid, Key: key, TickInterval: f.tick, AllowNonLoopback: true,
		Logger: log}, nil
}

// parseNodeID parses a node ID: a positive decimal integer.
func parseNodeID(s string) (raft.NodeID, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return raft.None, fmt.Errorf("node ID %q: want a positive integer", s)
	}
	return raft.NodeID(v), nil
}

// runKeygen writes a new random cluster key.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the key to this file (mode 0600, must not exist) instead of stdout")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: embraft keygen [--out FILE]\n\nPrints a new random 32-byte cluster key as 64 hex digits.")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err != nil {
		fmt.Fprintln(stderr, "embraft keygen:", err)
		return 2
	}
	k := seal.NewKey()
	if *out == "" {
		fmt.Fprintln(stdout, k.String())
		return 0
	}
	fh, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = fmt.Fprintln(fh, k.String())
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "embraft keygen:", err)
		return 1
	}
	return 0
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

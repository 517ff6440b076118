package dgram

import (
	"errors"
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/transport"
	"github.com/embraft/embraft/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	addr1 = netip.MustParseAddrPort("127.0.0.1:1001")
	addr2 = netip.MustParseAddrPort("127.0.0.1:1002")
)

func heartbeat(t *testing.T, from, to raft.NodeID) []byte {
	t.Helper()
	b, err := wire.AppendMessage(nil, 7, &raft.Message{Type: raft.MsgHeartbeat, From: from, To: to, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoopThroughWrite: frames a Core writes come back through Receive.
func TestLoopThroughWrite(t *testing.T) {
	out := make(chan []byte, 4)
	c, err := New(Config{ID: 1, Cluster: 7, Peers: map[raft.NodeID]netip.AddrPort{1: addr1, 2: addr2},
		Write: func(to netip.AddrPort, f []byte) error {
			if to != addr2 {
				t.Errorf("wrote to %v", to)
			}
			out <- append([]byte(nil), f...)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close(); c.Wait() }()
	if err := c.Send(2, heartbeat(t, 1, 2)); err != nil {
		t.Fatal(err)
	}
	f := <-out
	if v := c.Receive(f, addr2); v != Misrouted { // addressed to 2, not to us
		t.Fatalf("verdict %v", v)
	}
	if v := c.Receive(heartbeat(t, 2, 1), netip.MustParseAddrPort("[::ffff:127.0.0.1]:1002")); v != Delivered {
		t.Fatalf("IPv4-mapped source: verdict %v", v)
	}
	if v := c.Receive(heartbeat(t, 2, 1), addr1); v != Spoofed {
		t.Fatalf("wrong source: verdict %v", v)
	}
	if st := c.Stats(); st.Sent != 1 || st.Received != 1 || st.DroppedBad != 2 {
		t.Fatalf("stats %+v", st)
	}
	if Spoofed.String() != "address mismatch" || Verdict(42).String() != "verdict(42)" {
		t.Fatal("Verdict.String")
	}
	c.Close()
	if err := c.Send(2, f); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestWriteErrorCountsFault(t *testing.T) {
	done := make(chan struct{})
	c, err := New(Config{ID: 1, Peers: map[raft.NodeID]netip.AddrPort{2: addr2},
		Write: func(netip.AddrPort, []byte) error { defer close(done); return errors.New("boom") }})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Send(2, []byte{1})
	<-done
	c.Close()
	c.Wait()
	if st := c.Stats(); st.DroppedFault != 1 || st.Sent != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	w := func(netip.AddrPort, []byte) error { return nil }
	for name, cfg := range map[string]Config{
		"no ID":          {Write: w},
		"no Write":       {ID: 1},
		"huge datagram":  {ID: 1, Write: w, MaxDatagram: 70000},
		"peer 0":         {ID: 1, Write: w, Peers: map[raft.NodeID]netip.AddrPort{0: addr2}},
		"no address":     {ID: 1, Write: w, Peers: map[raft.NodeID]netip.AddrPort{2: {}}},
		"port 0":         {ID: 1, Write: w, Peers: map[raft.NodeID]netip.AddrPort{2: netip.MustParseAddrPort("127.0.0.1:0")}},
		"shared address": {ID: 1, Write: w, Peers: map[raft.NodeID]netip.AddrPort{2: addr2, 3: addr2}},
	} {
		if c, err := New(cfg); err == nil {
			c.Close()
			c.Wait()
			t.Errorf("%s: accepted", name)
		}
	}
}

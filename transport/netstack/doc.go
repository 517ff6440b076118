// Package netstack is a transport over gVisor's userspace TCP/IP stack on
// a simulated Ethernet, all inside this process: every node gets its own
// gVisor stack (IPv4, ARP, UDP) with one NIC — an Ethernet endpoint
// (link/ethernet) over a channel endpoint (link/channel) — and talks UDP
// through a gonet socket. A Switch connects the NICs: it learns MACs,
// forwards unicast frames, floods broadcasts (ARP) and unknown
// destinations, and injects faults.
//
// # Addresses
//
// Only 192.0.2.0/24 (TEST-NET-1, RFC 5737) is used, and only inside the
// simulated Ethernet; no OS socket is opened. Node i (1..254) is
// 192.0.2.i/24, UDP port 9000+i, MAC 02:00:00:00:00:i (locally
// administered), MTU 1500, one route for 192.0.2.0/24 and no gateway.
// NetworkFor(id) and Transport.Network() return this NetworkConfig; its
// String is what the demo prints:
//
//	Node 1 network configured: StaticConfigV4 { address: 192.0.2.1/24, gateway: None, mac: 02:00:00:00:00:01, udp_port: 9001, mtu: 1500 }
//
// # Usage
//
//	sw, _ := netstack.NewSwitch(netstack.SwitchOptions{Seed: 1})
//	defer sw.Close()
//	tr, _ := sw.Attach(netstack.Options{ID: 1, ClusterID: 7, Peers: []raft.NodeID{1, 2, 3}})
//	fmt.Printf("Node %d network configured: %v\n", 1, tr.Network())
//
// A node ID can be attached again after its transport is closed (a
// restarted node). Closing the switch disconnects every port; each
// transport is still closed by its owner.
//
// # Faults
//
// Faults are set while running and apply per direction (src node, dst
// node): Loss and Duplicate probabilities, Delay plus uniform Jitter
// (through a heap-ordered delay line served by one goroutine and one
// timer, bounded by SwitchOptions.DelayQueue: a frame arriving at a full
// delay line is dropped and counted), and partitions: Partition(groups...)
// blocks both directions between groups, Cut(from, to) one direction,
// Heal removes them all. Decisions draw from one PRNG seeded by
// SwitchOptions.Seed (goroutine scheduling still varies between runs).
// Switch.Stats counts forwarded, flooded, duplicated and delayed frames
// and drops by loss, partition, full delay line and departed port; frames
// the switch drops also count as the sending transport's
// Stats.DroppedFault (ARP frames included).
//
// # Bounds, and what is dropped and counted
//
// The same as package udp (both use transport/internal/dgram): SendQueue
// frames per peer (default 16), one sender goroutine per peer, Send never
// blocks and a full queue counts DroppedFull; an inbox of InboxSize frames
// (default 32), full counts DroppedFull; MaxDatagram bytes (default 1200).
// Every received datagram is fully decoded (wire.DecodeMessage) and must
// be addressed to this node by a configured peer from that peer's address
// (192.0.2.From:9000+From); anything else is dropped and counted as
// DroppedBad. Each port's link endpoint buffers SwitchOptions.PortQueue
// outbound frames (default 256).
package netstack

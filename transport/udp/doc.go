// Package udp is a transport over OS UDP sockets: one socket per node,
// one frame per datagram.
//
// # Addresses
//
// Every address — the listen address and each peer's — must resolve to
// 127.0.0.0/8 unless Options.AllowNonLoopback is set (for a cluster across
// hosts, set by the CLI). Tests use loopback only. Peers are configured as
// a map from node ID to host:port; ParsePeers reads the CLI form
// "1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003", and the map may
// include the node itself (its entry is then its listen address).
//
// # Bounds
//
//   - Send queue: SendQueue frames per peer (default 16), drained by one
//     sender goroutine per peer. Send copies the frame and never blocks; a
//     full queue drops the frame and counts it (Stats.DroppedFull).
//   - Inbox: InboxSize frames (default 32). A full inbox drops the frame
//     and counts it (Stats.DroppedFull).
//   - Datagram: MaxDatagram bytes (default 1200, wire.DefaultMaxFrameBytes).
//     The receive loop reads into a MaxDatagram+1 byte buffer, so an
//     oversized datagram is detected, not silently cut.
//
// # What is dropped and counted
//
// Every received datagram is decoded with wire.DecodeMessage into a
// scratch message (which checks size, version, checksum, cluster ID and
// contents; cheap next to the system call) and must also be addressed to
// this node (To), come from a configured peer (From, not this node) and
// from that peer's configured address (source IP and port). Anything else
// — garbage, truncated or oversized datagrams, another version or
// cluster, an unknown or spoofed sender — is dropped and counted as
// Stats.DroppedBad, and the transport goes on. Accepted frames are
// delivered as fresh copies the receiver owns (Stats.Received). Sent
// counts datagrams the socket accepted; a failed socket write counts as
// Stats.DroppedFault.
//
// # Authentication
//
// With Options.Key (a pre-shared 32-byte cluster key) every datagram is
// sealed by package seal: encrypted and authenticated with AES-256-GCM
// under a key derived per sender start (epoch and salt), bound to the
// cluster ID, with a counter nonce that is never reused. The receive loop
// opens each datagram before the checks above: one that is not sealed,
// does not authenticate (forged, tampered, another key or cluster ID) or
// comes from an address that is no peer's counts as AuthStats.Forged; an
// authentic datagram already seen (a per-peer sliding window of 1024
// counters) or of an epoch older than the newest seen from that peer
// counts as AuthStats.Replayed. Both are also Stats.DroppedBad. A sealed
// datagram is seal.Overhead (41) bytes longer than its frame. See
// docs/SECURITY.md for the threat model and the residual risks.
//
// Close closes the socket and waits for the receive loop and the sender
// goroutines; later Sends fail with transport.ErrClosed.
package udp

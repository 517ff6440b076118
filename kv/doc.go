// Package kv is embraft's replicated key-value state machine: put, get,
// delete and compare-and-swap, with exactly-once client sessions in the
// style of the Raft dissertation, §6.3. A *Store implements the node
// package's StateMachine (Apply, Snapshot, Restore); Session is a
// transport-agnostic client helper.
//
// # Commands and results
//
// A log entry's payload is one Command encoded by Command.AppendBinary: an
// operation byte, then per operation (uvarints; a byte string is its
// length as a uvarint followed by its bytes):
//
//	OpRegister (1)  nothing more
//	OpPut      (2)  ClientID Seq Key Value
//	OpGet      (3)  ClientID Seq Key
//	OpDelete   (4)  ClientID Seq Key
//	OpCAS      (5)  ClientID Seq Key Expected Value
//
// The encoding is canonical: varints are minimal, ClientID and Seq are
// non-zero, and nothing may follow the last field. New formats will take
// new operation bytes. DecodeCommand accepts any byte string without
// panicking and answers it with a Command or an error; Apply answers an
// entry that does not decode with StatusBadCommand and changes nothing, the
// same way on every replica.
//
// Apply returns an encoded Result: a Status byte, then ClientID, Index and
// the length of Value as uvarints, then Value (see DecodeResult). Gets go
// through the log, and so are linearizable; Store.Get is a local,
// non-linearizable read for tests and demos. CAS succeeds only if the key
// exists and its value equals Expected byte for byte; a missing key is
// StatusNotFound, a different value StatusCASMismatch with the current
// value in Result.Value. Nothing decoded is applied with reflection, fmt or
// JSON: the apply path is plain byte slicing.
//
// # Sessions
//
// A client first submits OpRegister (see Register). The session's ClientID
// is the log index of that register entry, returned in Result.ClientID.
// Every later command carries (ClientID, Seq), Seq counting from 1 and
// growing by one per new command, with at most one command outstanding.
// For each session the store keeps the last applied Seq and that command's
// encoded result, and answers a command by comparing its Seq:
//
//   - Seq > last: a new command. It is applied, and its result is cached
//     (whatever the status, TooLarge and Full included). Gaps are
//     tolerated.
//   - Seq == last: a retry of the last command. The cached result is
//     returned byte for byte and nothing is applied again.
//   - Seq < last: a stale duplicate of an older command, whose result is
//     gone. Nothing is applied; the answer is StatusStaleSequence.
//   - An unknown ClientID (never registered, evicted or expired): nothing
//     is applied; the answer is StatusSessionExpired. So a client whose
//     session expired cannot get a command applied twice: its retries are
//     refused rather than re-executed.
//
// Why the ClientID is the register entry's log index: it needs no
// coordination, it is identical on every replica (they apply the same log),
// and it is never issued twice (indexes only grow, and snapshots carry the
// applied index), so an expired session's ID can never be handed to a new
// client, whose state a stale command of the old client could otherwise
// corrupt.
//
// # Expiry rule
//
// A session's last-activity index is the log index of the last entry that
// named it: its register entry, or any later command carrying its
// ClientID (new, retry or stale). Sessions leave the store only by these
// two rules, which depend on nothing but the (index, command) sequence
// given to Apply, so every replica drops the same sessions at the same
// entry:
//
//  1. Idle expiry (only if Options.SessionTTLEntries = T > 0): before the
//     entry at index i is applied, every session whose last-activity index
//     a satisfies i - a > T is dropped (counted in Stats.Expirations).
//     Index gaps (entries, such as a leader's no-ops, that never reach the
//     state machine) count as log distance too.
//  2. Eviction: when an OpRegister is applied while Options.MaxSessions
//     sessions are live, the session with the smallest last-activity
//     index is dropped first, ties broken by the lowest ClientID (counted in
//     Stats.Evictions). Exactly MaxSessions sessions fit; the next
//     registration evicts one. (Ties cannot actually arise, since each entry
//     touches at most one session.)
//
// Apply must see strictly increasing indexes (a node applies committed
// entries in log order); an index not above the last applied one is
// answered StatusBadCommand and changes nothing.
//
// # Bounds
//
// Memory is bounded by Options: at most MaxKeys keys of at most MaxKeyBytes
// bytes with values of at most MaxValueBytes, and at most MaxSessions
// sessions, each caching one result (at most MaxValueBytes plus a few
// bytes, for a Get). A command exceeding a size bound is answered
// StatusTooLarge, a Put creating a key beyond MaxKeys StatusFull; neither
// changes the data. All replicas must use the same Options.
//
// # Snapshots
//
// Snapshot writes the whole state in a canonical format, so equal states
// give equal bytes (and equal Digests):
//
//	"EKV" SnapshotVersion(1 byte)
//	applied-index evictions expirations                      (uvarints)
//	key count, then per key in ascending byte order: key, value
//	session count, then per session in ascending last-activity order:
//	    ClientID Seq last-activity-index cached-result
//	CRC-32C (Castagnoli) of all the bytes above, 4 bytes little-endian
//
// Restore reads exactly one snapshot (r must end where it does), validates
// it completely (checksum, canonical order, the restoring store's Options
// bounds) and only then replaces the state; a corrupt or oversized
// snapshot returns an error and leaves the store untouched. A retry that
// arrives after a restore is still deduplicated, since the cached results
// travel with the sessions.
//
// # Errors
//
// Decoding failures are a *DecodeError naming the field and its byte
// offset, wrapping one of the sentinel errors (ErrTruncated, ErrMalformed,
// ErrOp, ErrStatus, ErrChecksum, ErrVersion, ErrLimit), testable with
// errors.Is.
package kv

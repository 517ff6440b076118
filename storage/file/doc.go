// Package file is a durable storage.Storage: one directory per node,
// append-only segment files with checksummed records, crash-atomic hard
// state, group commit, snapshots with log compaction, and recovery that
// cuts a torn tail and completes an interrupted snapshot installation but
// refuses any other damage. docs/STORAGE.md is the full specification (byte layouts,
// fsync points, recovery rules, measured figures).
//
// # Layout
//
//	META                  format version, cluster ID, node ID (written once, atomically)
//	HARDSTATE             two checksummed slots (term, vote, commit) with sequence numbers
//	LOGSTART              index and term of the last compacted entry (after Compact, InstallSnapshot)
//	SNAPSHOT              48-byte header (index, term, size, CRC-32C of the data, configuration length),
//	                      the configuration (raft.AppendConfState), then the data
//	SNAPSHOT.incoming     a snapshot arriving from the leader; removed by Open
//	<first index>.log     segments: a header, then frames [len u32][CRC-32C u32][wire entry record]
//	*.tmp                 interrupted atomic replacements; removed by Open
//
// # Durability
//
// Append only encodes into a buffer; Sync writes it and fsyncs the active
// segment once (group commit), then the directory if a segment was created
// or removed, then HARDSTATE if the term or vote changed. Everything Sync
// covered survives a crash: Open validates every record and cuts only a
// torn tail — a bad record in the last segment with no valid record after
// it and an index above the durable commit index. Any other damage fails
// Open with a *CorruptError naming the file and offset. After an I/O error
// the storage is failed (ErrFailed): every later call returns the error.
//
// # Snapshots
//
// CreateSnapshot streams the data into a temp file renamed over SNAPSHOT;
// Compact drops entries the snapshot covers (LOGSTART, then whole
// segments). A snapshot from the leader arrives in SNAPSHOT.incoming
// (WriteSnapshotChunk, not fsynced); InstallSnapshot checks its CRC,
// renames it over SNAPSHOT and then discards the log, which restarts
// after the snapshot. If a crash comes between the two, Open keeps the log
// when it holds the snapshot's last entry with its term and discards it
// otherwise.
//
// # Memory
//
// An index of 24 bytes per stored entry (term, segment, offset, payload
// length) answers Term, FirstIndex, LastIndex and Entries' size limit
// without I/O; MaxEntries bounds it. Entries reads from the files (one
// positioned read per segment touched) or from a cache of the most recent
// entries bounded by CacheBytes. Append's write buffer is flushed at 64 KiB.
package file

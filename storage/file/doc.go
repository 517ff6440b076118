// Package file is a durable storage.Storage: one directory per node,
// append-only segment files with checksummed records, crash-atomic hard
// state, group commit, and recovery that cuts a torn tail but refuses any
// other damage. docs/STORAGE.md is the full specification (byte layouts,
// fsync points, recovery rules, measured figures).
//
// # Layout
//
//	META                  format version, cluster ID, node ID (written once, atomically)
//	HARDSTATE             two checksummed slots (term, vote, commit) with sequence numbers
//	LOGSTART              index and term of the last compacted entry (after Compact)
//	SNAPSHOT              snapshot metadata, data and CRC (after SaveSnapshot)
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
// # Memory
//
// An index of 24 bytes per stored entry (term, segment, offset, payload
// length) answers Term, FirstIndex, LastIndex and Entries' size limit
// without I/O; MaxEntries bounds it. Entries reads from the files (one
// positioned read per segment touched) or from a cache of the most recent
// entries bounded by CacheBytes. Append's write buffer is flushed at 64 KiB.
package file

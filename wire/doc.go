// Package wire is the compact, versioned binary codec that the transport
// and the storage layer share. It turns a raft.Message into one
// self-checking frame, and a raft.HardState or raft.Entry into a record,
// and back. docs/WIRE.md specifies the bytes precisely enough to write a
// compatible decoder in another language; this comment is the Go view.
//
// # Frames
//
// A frame carries one raft.Message:
//
//	version (1 byte, = Version)
//	cluster ID (uvarint)
//	type byte: the MessageType in bits 0-6, Reject in bit 7
//	the type's fields, each a uvarint, in a fixed order per type
//	entries (MsgApp and MsgProp only): a count, then the entries;
//	  a MsgSnap instead carries one snapshot chunk: its length, its bytes
//	CRC-32C (Castagnoli) of all the bytes above, 4 bytes little-endian
//
// Only the fields meaningful for the message type travel (see the comments
// on the raft.MessageType constants); the others decode as zero. Inside a
// MsgApp the entry indexes are implied (Index+1, Index+2, ...) and each
// entry's term is coded as the increase over the previous entry's term (over
// LogTerm for the first), so an entry normally costs 3 bytes on top of a
// payload under 128 bytes and 4 under 16 KiB, whatever its index.
//
// # Canonical encoding
//
// Every value has exactly one encoding: varints must be minimal, flags
// must be zero where a type does not use them, entry types must be known,
// and a frame or record must end exactly where its contents do. Decoding
// any accepted input and encoding the result gives back the same bytes.
//
// # Buffers and aliasing
//
// The Append functions append to a caller-owned buffer and return it, in
// the style of strconv.AppendInt: with enough capacity they allocate
// nothing. The Decode functions fill a caller-owned value. DecodeMessage
// reuses the capacity of m.Entries, and every decoded Entry.Data is a
// subslice of the input (zero copy, capacity clipped to its length): the
// caller must not modify or reuse the input buffer while the decoded
// message or entry is in use, or must copy the data out first.
//
// # Errors
//
// Decoding never panics and never allocates more than the input justifies
// (the entry slice grows only to a count bounded both by Limits.MaxEntries
// and by the bytes present). Every failure wraps one of the sentinel errors
// (ErrTruncated, ErrChecksum, ErrVersion, ErrCluster, ErrType, ErrLimit,
// ErrMalformed), testable with errors.Is; decode failures are a
// *DecodeError naming the field and its byte offset, encode failures an
// *EncodeError naming the field.
//
// # Records
//
// AppendHardState and AppendEntry produce records for the storage layer.
// Records carry neither a version byte nor a checksum: storage frames
// each record with its own length and CRC, and records Version once in its
// file headers. An entry record is the entry's index followed by the very
// entry body that a MsgApp frame carries (with the term coded against 0),
// and MsgProp frames carry entry records verbatim, so one codec serves
// both the log on disk and the log on the wire.
//
// The package imports nothing beyond a small fenced set of the standard
// library (no fmt, reflect, unsafe, os, time or sync) so that it stays
// portable and cheap; TestImportFence enforces this.
package wire

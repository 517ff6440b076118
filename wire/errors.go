package wire

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by this package wraps exactly one
// of them, so callers can sort failures with errors.Is: a transport would
// typically count ErrChecksum and ErrTruncated as line noise, ErrCluster
// as a misrouted peer, and ErrVersion as a peer needing an upgrade.
var (
	// ErrTruncated: the input ends before the value it announces.
	ErrTruncated = errors.New("wire: truncated input")
	// ErrChecksum: the frame's CRC-32C does not match its contents.
	ErrChecksum = errors.New("wire: checksum mismatch")
	// ErrVersion: the frame's version byte is not Version.
	ErrVersion = errors.New("wire: unsupported version")
	// ErrCluster: the frame belongs to another cluster.
	ErrCluster = errors.New("wire: wrong cluster")
	// ErrType: the message type is unknown.
	ErrType = errors.New("wire: unknown message type")
	// ErrLimit: a frame or an entry count exceeds its Limits bound.
	ErrLimit = errors.New("wire: limit exceeded")
	// ErrMalformed: the bytes can never be a valid encoding (varint
	// overflow or non-minimal varint, trailing bytes, flag or entry type
	// out of range, term or index overflow, non-consecutive or
	// term-decreasing entries on encode).
	ErrMalformed = errors.New("wire: malformed input")
)

// DecodeError reports where decoding failed. Err is one of the sentinel
// errors; Field names the value being read (a raft.Message field name
// where there is one); Offset is the byte offset of that value from the
// start of the input.
type DecodeError struct {
	Field  string
	Offset int
	Err    error
}

// Error formats the error without fmt (the package is import-fenced).
func (e *DecodeError) Error() string {
	return e.Err.Error() + " (" + e.Field + " at byte " + strconv.Itoa(e.Offset) + ")"
}

// Unwrap exposes the sentinel error to errors.Is.
func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError reports why a value could not be encoded. Err is one of the
// sentinel errors; Field names the offending value.
type EncodeError struct {
	Field string
	Err   error
}

// Error formats the error without fmt.
func (e *EncodeError) Error() string { return e.Err.Error() + " (encoding " + e.Field + ")" }

// Unwrap exposes the sentinel error to errors.Is.
func (e *EncodeError) Unwrap() error { return e.Err }

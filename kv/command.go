package kv

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"

	"github.com/embraft/embraft/raft"
)

// Sentinel errors. Every error returned by this package's decoders and by
// Store.Restore wraps exactly one of them (or an I/O error from the
// reader), so callers can sort failures with errors.Is.
var (
	// ErrTruncated: the input ends before the value it announces.
	ErrTruncated = errors.New("kv: truncated input")
	// ErrMalformed: the bytes can never be a valid encoding (bad magic,
	// varint overflow or non-minimal varint, trailing bytes, a zero
	// ClientID or Seq, an invalid cached result, keys or sessions out of
	// order or duplicated).
	ErrMalformed = errors.New("kv: malformed input")
	// ErrOp: the command's operation byte is not a known Op.
	ErrOp = errors.New("kv: unknown operation")
	// ErrStatus: the result's status byte is not a known Status.
	ErrStatus = errors.New("kv: unknown status")
	// ErrChecksum: the snapshot's CRC-32C does not match its contents.
	ErrChecksum = errors.New("kv: snapshot checksum mismatch")
	// ErrVersion: the snapshot's version byte is not SnapshotVersion.
	ErrVersion = errors.New("kv: unsupported snapshot version")
	// ErrLimit: a snapshot holds more, or larger, keys, values or sessions
	// than the restoring store's Options allow.
	ErrLimit = errors.New("kv: snapshot exceeds the store's limits")
)

// DecodeError reports where decoding failed. Err is one of the sentinel
// errors (or, for Restore, an I/O error of the reader); Field names the
// value being read; Offset is the byte offset of that value from the start
// of the input.
type DecodeError struct {
	Field  string
	Offset int64
	Err    error
}

// Error formats the error without fmt.
func (e *DecodeError) Error() string {
	return e.Err.Error() + " (" + e.Field + " at byte " + strconv.FormatInt(e.Offset, 10) + ")"
}

// Unwrap exposes the sentinel error to errors.Is.
func (e *DecodeError) Unwrap() error { return e.Err }

// Op is a command's operation. The numeric values are part of the log
// format and must never be renumbered.
type Op uint8

const (
	// OpRegister opens a client session. Its ClientID is the log index of
	// the register entry, returned in Result.ClientID.
	OpRegister Op = 1
	// OpPut sets Key to Value.
	OpPut Op = 2
	// OpGet reads Key (through the log, hence linearizable).
	OpGet Op = 3
	// OpDelete removes Key.
	OpDelete Op = 4
	// OpCAS sets Key to Value if Key exists and its value equals Expected.
	OpCAS Op = 5
)

// Valid reports whether o is a known operation.
func (o Op) Valid() bool { return o >= OpRegister && o <= OpCAS }

// String returns the operation's name.
func (o Op) String() string {
	switch o {
	case OpRegister:
		return "Register"
	case OpPut:
		return "Put"
	case OpGet:
		return "Get"
	case OpDelete:
		return "Delete"
	case OpCAS:
		return "CAS"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Command is one state machine command, carried in a log entry.
//
// Only the fields an operation uses are encoded (see the package comment
// for the layouts); the others are ignored by AppendBinary and decode as
// zero.
type Command struct {
	Op       Op
	ClientID uint64 // session; 0 for OpRegister
	Seq      uint64 // per-session sequence number, from 1; 0 for OpRegister
	Key      []byte // Put, Get, Delete, CAS
	Value    []byte // Put, CAS (the new value)
	Expected []byte // CAS (the value Key must hold)
}

// AppendBinary appends the command's encoding to b and returns the
// extended buffer. It allocates only if b lacks capacity. It does not
// validate: a command that DecodeCommand would reject (an unknown Op, a
// zero ClientID or Seq) is encoded as is and answered StatusBadCommand by
// the store.
func (c *Command) AppendBinary(b []byte) []byte {
	b = append(b, byte(c.Op))
	switch c.Op {
	case OpPut:
		b = binary.AppendUvarint(b, c.ClientID)
		b = binary.AppendUvarint(b, c.Seq)
		b = appendBytes(b, c.Key)
		b = appendBytes(b, c.Value)
	case OpGet, OpDelete:
		b = binary.AppendUvarint(b, c.ClientID)
		b = binary.AppendUvarint(b, c.Seq)
		b = appendBytes(b, c.Key)
	case OpCAS:
		b = binary.AppendUvarint(b, c.ClientID)
		b = binary.AppendUvarint(b, c.Seq)
		b = appendBytes(b, c.Key)
		b = appendBytes(b, c.Expected)
		b = appendBytes(b, c.Value)
	}
	return b
}

// DecodeCommand decodes one command from b into *c. It accepts only the
// canonical encoding (minimal varints, no trailing bytes, a non-zero
// ClientID and Seq for operations other than OpRegister), so re-encoding a
// decoded command gives back b. Key, Value and Expected alias b (capacity
// clipped to length). Any input yields either a command or an error
// wrapping ErrTruncated, ErrMalformed or ErrOp; it never panics. On error
// *c is set to the zero Command.
func DecodeCommand(b []byte, c *Command) error {
	*c = Command{}
	d := decoder{b: b}
	if len(b) == 0 {
		return d.fail("op", ErrTruncated)
	}
	var x Command
	x.Op = Op(b[0])
	d.off = 1
	if !x.Op.Valid() {
		return &DecodeError{Field: "op", Offset: 0, Err: ErrOp}
	}
	if x.Op != OpRegister {
		var err error
		if x.ClientID, err = d.nonZero("client id"); err != nil {
			return err
		}
		if x.Seq, err = d.nonZero("seq"); err != nil {
			return err
		}
		if x.Key, err = d.bytes("key", "key length"); err != nil {
			return err
		}
		switch x.Op {
		case OpPut:
			if x.Value, err = d.bytes("value", "value length"); err != nil {
				return err
			}
		case OpCAS:
			if x.Expected, err = d.bytes("expected", "expected length"); err != nil {
				return err
			}
			if x.Value, err = d.bytes("value", "value length"); err != nil {
				return err
			}
		}
	}
	if d.off != len(b) {
		return d.fail("end", ErrMalformed)
	}
	*c = x
	return nil
}

// Status is the outcome of a command. The numeric values are part of the
// result format and must never be renumbered.
type Status uint8

const (
	// StatusOK: the command took effect (Get: Value holds the value).
	StatusOK Status = 1
	// StatusNotFound: Get, Delete or CAS named a key that does not exist.
	StatusNotFound Status = 2
	// StatusCASMismatch: the key's value differs from Expected; Value holds
	// the current value. Nothing changed.
	StatusCASMismatch Status = 3
	// StatusSessionExpired: the command names a session the store does not
	// hold (never registered, evicted or expired). It was not applied.
	StatusSessionExpired Status = 4
	// StatusStaleSequence: the command's Seq is below the session's last
	// applied Seq; it is an old duplicate whose result is no longer cached.
	// It was not applied (again).
	StatusStaleSequence Status = 5
	// StatusBadCommand: the entry does not decode as a Command, or it was
	// given to Apply with a log index not above the last one applied. It
	// was not applied.
	StatusBadCommand Status = 6
	// StatusTooLarge: the key, value or expected value exceeds the store's
	// MaxKeyBytes or MaxValueBytes. Nothing changed.
	StatusTooLarge Status = 7
	// StatusFull: a Put would create a key beyond MaxKeys. Nothing changed.
	StatusFull Status = 8
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s >= StatusOK && s <= StatusFull }

// String returns the status's name.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusNotFound:
		return "NotFound"
	case StatusCASMismatch:
		return "CASMismatch"
	case StatusSessionExpired:
		return "SessionExpired"
	case StatusStaleSequence:
		return "StaleSequence"
	case StatusBadCommand:
		return "BadCommand"
	case StatusTooLarge:
		return "TooLarge"
	case StatusFull:
		return "Full"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Result is what Apply returns for a command, encoded.
type Result struct {
	Status Status
	// Value is the value read by a successful Get, or the current value on
	// StatusCASMismatch; empty otherwise.
	Value []byte
	// ClientID is the new session's ID for OpRegister, and the command's
	// ClientID otherwise (0 for StatusBadCommand).
	ClientID uint64
	// Index is the log index at which the command took effect. A retry
	// answered from the session cache carries the original index, so a
	// client can tell that its command was applied earlier.
	Index raft.Index
}

// AppendBinary appends the result's encoding to b and returns the extended
// buffer: the status byte, then ClientID, Index and len(Value) as uvarints,
// then Value. It allocates only if b lacks capacity.
func (r *Result) AppendBinary(b []byte) []byte {
	b = append(b, byte(r.Status))
	b = binary.AppendUvarint(b, r.ClientID)
	b = binary.AppendUvarint(b, uint64(r.Index))
	return appendBytes(b, r.Value)
}

// DecodeResult decodes one result from b into *r, accepting only the
// canonical encoding. Value aliases b. Errors wrap ErrTruncated,
// ErrMalformed or ErrStatus; on error *r is set to the zero Result.
func DecodeResult(b []byte, r *Result) error {
	*r = Result{}
	d := decoder{b: b}
	if len(b) == 0 {
		return d.fail("status", ErrTruncated)
	}
	var x Result
	x.Status = Status(b[0])
	if !x.Status.Valid() {
		return &DecodeError{Field: "status", Offset: 0, Err: ErrStatus}
	}
	d.off = 1
	var err error
	if x.ClientID, err = d.uvarint("client id"); err != nil {
		return err
	}
	idx, err := d.uvarint("index")
	if err != nil {
		return err
	}
	x.Index = raft.Index(idx)
	if x.Value, err = d.bytes("value", "value length"); err != nil {
		return err
	}
	if d.off != len(b) {
		return d.fail("end", ErrMalformed)
	}
	*r = x
	return nil
}

// maxResultOverhead bounds an encoded result's size beyond its value.
const maxResultOverhead = 1 + 3*binary.MaxVarintLen64

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// uvarintLen is the length of v's minimal uvarint encoding.
func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// decoder reads a byte slice front to back.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) fail(field string, err error) error {
	return &DecodeError{Field: field, Offset: int64(d.off), Err: err}
}

func (d *decoder) uvarint(field string) (uint64, error) {
	v, n := binary.Uvarint(d.b[d.off:])
	if n == 0 {
		return 0, d.fail(field, ErrTruncated)
	}
	if n < 0 || n != uvarintLen(v) {
		return 0, d.fail(field, ErrMalformed)
	}
	d.off += n
	return v, nil
}

func (d *decoder) nonZero(field string) (uint64, error) {
	at := d.off
	v, err := d.uvarint(field)
	if err == nil && v == 0 {
		return 0, &DecodeError{Field: field, Offset: int64(at), Err: ErrMalformed}
	}
	return v, err
}

// bytes reads a length-prefixed byte string. The field names are passed
// separately (not concatenated) so that the success path allocates nothing.
func (d *decoder) bytes(field, lengthField string) ([]byte, error) {
	n, err := d.uvarint(lengthField)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, d.fail(field, ErrTruncated)
	}
	end := d.off + int(n)
	p := d.b[d.off:end:end]
	d.off = end
	return p, nil
}

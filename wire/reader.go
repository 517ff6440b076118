package wire

import "encoding/binary"

// reader walks an input from the front. Its error is sticky: after the
// first failure every read returns zero values and changes nothing, so a
// decoder can be written as a straight sequence of reads (mirroring the
// layout it parses) with one error check at the end.
type reader struct {
	b   []byte // the input; offsets are relative to its start
	off int    // offset of the next unread byte
	err error  // the first failure, a *DecodeError
}

// fail records err for the value at the current offset.
func (r *reader) fail(field string, err error) { r.failAt(r.off, field, err) }

// failAt records err for the value starting at offset off, unless an
// earlier failure is already recorded (the first cause is the informative
// one).
func (r *reader) failAt(off int, field string, err error) {
	if r.err == nil {
		r.err = &DecodeError{Field: field, Offset: off, Err: err}
	}
}

// remaining returns the number of unread bytes.
func (r *reader) remaining() int { return len(r.b) - r.off }

// uvarint reads one canonical unsigned LEB128 varint. Non-minimal
// encodings (a multi-byte varint whose last byte is 0x00) are refused so
// that every value has exactly one encoding.
func (r *reader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	switch {
	case n == 0:
		r.fail(field, ErrTruncated)
		return 0
	case n < 0: // more than 64 bits
		r.fail(field, ErrMalformed)
		return 0
	case n > 1 && r.b[r.off+n-1] == 0:
		r.fail(field, ErrMalformed)
		return 0
	}
	r.off += n
	return v
}

// byte reads one byte.
func (r *reader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if r.remaining() < 1 {
		r.fail(field, ErrTruncated)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// bytes returns the next n bytes as a subslice of the input whose capacity
// is clipped to n, so that a caller appending to it cannot overwrite the
// bytes that follow. Zero bytes read as nil.
func (r *reader) bytes(field string, n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(r.remaining()) {
		r.fail(field, ErrTruncated)
		return nil
	}
	if n == 0 {
		return nil
	}
	end := r.off + int(n)
	p := r.b[r.off:end:end]
	r.off = end
	return p
}

// end fails with ErrMalformed unless the whole input has been read: a
// valid encoding ends exactly where its contents do.
func (r *reader) end() {
	if r.err == nil && r.remaining() != 0 {
		r.fail("trailing bytes", ErrMalformed)
	}
}

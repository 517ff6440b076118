package kv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"slices"

	"github.com/embraft/embraft/raft"
)

// SnapshotVersion is the snapshot format version written by Snapshot and
// the only one Restore accepts.
const SnapshotVersion = 1

// snapshotMagic opens every snapshot, followed by the version byte.
const snapshotMagic = "EKV"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot writes the store's complete state to w in the canonical format
// described in the package comment: equal states give equal bytes.
func (s *Store) Snapshot(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()

	sw := snapWriter{bw: bufio.NewWriterSize(w, 32<<10)}
	sw.write([]byte(snapshotMagic))
	sw.write([]byte{SnapshotVersion})
	sw.uvarint(uint64(s.applied))
	sw.uvarint(s.evictions)
	sw.uvarint(s.expirations)

	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sw.uvarint(uint64(len(keys)))
	for _, k := range keys {
		sw.uvarint(uint64(len(k)))
		sw.writeString(k)
		sw.bytes(s.data[k].val)
	}

	sw.uvarint(uint64(len(s.sessions)))
	for sess := s.lru.next; sess != &s.lru; sess = sess.next {
		sw.uvarint(sess.id)
		sw.uvarint(sess.seq)
		sw.uvarint(uint64(sess.lastActive))
		sw.bytes(sess.result)
	}

	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], sw.crc)
	if _, err := sw.bw.Write(sum[:]); err != nil {
		return err
	}
	return sw.bw.Flush()
}

type snapWriter struct {
	bw  *bufio.Writer // errors are sticky; Flush reports them
	crc uint32
	buf [binary.MaxVarintLen64]byte
}

func (sw *snapWriter) write(p []byte) {
	sw.crc = crc32.Update(sw.crc, castagnoli, p)
	sw.bw.Write(p)
}

func (sw *snapWriter) writeString(p string) {
	for len(p) > 0 {
		n := copy(sw.buf[:], p)
		sw.write(sw.buf[:n])
		p = p[n:]
	}
}

func (sw *snapWriter) uvarint(v uint64) {
	n := binary.PutUvarint(sw.buf[:], v)
	sw.write(sw.buf[:n])
}

func (sw *snapWriter) bytes(p []byte) {
	sw.uvarint(uint64(len(p)))
	sw.write(p)
}

// Restore replaces the store's state with a snapshot written by Snapshot,
// read from r up to its end (r must hold exactly one snapshot). It
// validates everything first (format, canonical order, the store's Options
// bounds, the checksum) and changes nothing if the snapshot is invalid:
// errors wrap ErrTruncated, ErrMalformed, ErrVersion, ErrChecksum or
// ErrLimit, or r's own error. Memory used while reading is bounded by the
// store's Options whatever the input.
func (s *Store) Restore(r io.Reader) error {
	sr := snapReader{r: bufio.NewReaderSize(r, 32<<10)}
	opts := s.opts

	var magic [len(snapshotMagic) + 1]byte
	if err := sr.full("magic", magic[:], true); err != nil {
		return err
	}
	if string(magic[:len(snapshotMagic)]) != snapshotMagic {
		return &DecodeError{Field: "magic", Offset: 0, Err: ErrMalformed}
	}
	if magic[len(snapshotMagic)] != SnapshotVersion {
		return &DecodeError{Field: "version", Offset: int64(len(snapshotMagic)), Err: ErrVersion}
	}
	applied, err := sr.uvarint("applied")
	if err != nil {
		return err
	}
	evictions, err := sr.uvarint("evictions")
	if err != nil {
		return err
	}
	expirations, err := sr.uvarint("expirations")
	if err != nil {
		return err
	}

	// Keys.
	at := sr.off
	nkeys, err := sr.uvarint("key count")
	if err != nil {
		return err
	}
	if nkeys > uint64(opts.MaxKeys) {
		return &DecodeError{Field: "key count", Offset: at, Err: ErrLimit}
	}
	data := make(map[string]*entry, min(nkeys, 1024))
	var prev string
	for i := uint64(0); i < nkeys; i++ {
		at := sr.off
		k, err := sr.bytes("key", "key length", opts.MaxKeyBytes)
		if err != nil {
			return err
		}
		key := string(k)
		if i > 0 && key <= prev {
			return &DecodeError{Field: "key order", Offset: at, Err: ErrMalformed}
		}
		v, err := sr.bytes("value", "value length", opts.MaxValueBytes)
		if err != nil {
			return err
		}
		data[key] = &entry{val: v}
		prev = key
	}

	// Sessions, oldest activity first.
	at = sr.off
	nsess, err := sr.uvarint("session count")
	if err != nil {
		return err
	}
	if nsess > uint64(opts.MaxSessions) {
		return &DecodeError{Field: "session count", Offset: at, Err: ErrLimit}
	}
	sessions := make(map[uint64]*session, nsess)
	list := make([]*session, 0, nsess)
	var lastActive uint64
	for i := uint64(0); i < nsess; i++ {
		at := sr.off
		id, err := sr.uvarint("session id")
		if err != nil {
			return err
		}
		seq, err := sr.uvarint("session seq")
		if err != nil {
			return err
		}
		active, err := sr.uvarint("session activity")
		if err != nil {
			return err
		}
		// IDs are register indexes: non-zero, at most the last activity,
		// which is at most the applied index and strictly increases along
		// the list (every entry touches at most one session).
		if id == 0 || id > active || active > applied || (i > 0 && active <= lastActive) || sessions[id] != nil {
			return &DecodeError{Field: "session", Offset: at, Err: ErrMalformed}
		}
		at = sr.off
		res, err := sr.bytes("session result", "session result length", maxResultOverhead+opts.MaxValueBytes)
		if err != nil {
			return err
		}
		// The cached result is the session's own: its register result or
		// that of a command applied between registration and last activity.
		var rr Result
		if DecodeResult(res, &rr) != nil || rr.ClientID != id || uint64(rr.Index) < id || uint64(rr.Index) > active {
			return &DecodeError{Field: "session result", Offset: at, Err: ErrMalformed}
		}
		sess := &session{id: id, seq: seq, lastActive: raft.Index(active), result: res}
		sessions[id] = sess
		list = append(list, sess)
		lastActive = active
	}

	// Checksum, then the end of the input.
	want := sr.crc
	at = sr.off
	var sum [4]byte
	if err := sr.full("checksum", sum[:], false); err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(sum[:]) != want {
		return &DecodeError{Field: "checksum", Offset: at, Err: ErrChecksum}
	}
	if _, err := sr.r.ReadByte(); err == nil {
		return &DecodeError{Field: "end", Offset: sr.off, Err: ErrMalformed}
	} else if err != io.EOF {
		return &DecodeError{Field: "end", Offset: sr.off, Err: err}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = data
	s.sessions = sessions
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	for _, sess := range list {
		s.pushBack(sess)
	}
	s.applied = raft.Index(applied)
	s.evictions = evictions
	s.expirations = expirations
	return nil
}

// snapReader reads a snapshot, tracking the offset and the CRC-32C of the
// bytes consumed so far.
type snapReader struct {
	r   *bufio.Reader
	off int64
	crc uint32
}

func (sr *snapReader) fail(field string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrTruncated
	}
	return &DecodeError{Field: field, Offset: sr.off, Err: err}
}

func (sr *snapReader) consume(p []byte) {
	sr.crc = crc32.Update(sr.crc, castagnoli, p)
	sr.off += int64(len(p))
}

// full reads exactly len(p) bytes into p. If sum, they count toward the
// checksum.
func (sr *snapReader) full(field string, p []byte, sum bool) error {
	if _, err := io.ReadFull(sr.r, p); err != nil {
		return sr.fail(field, err)
	}
	if sum {
		sr.crc = crc32.Update(sr.crc, castagnoli, p)
	}
	sr.off += int64(len(p))
	return nil
}

func (sr *snapReader) uvarint(field string) (uint64, error) {
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		b, err := sr.r.ReadByte()
		if err != nil {
			return 0, sr.fail(field, err)
		}
		buf[i] = b
		if b < 0x80 {
			v, n := binary.Uvarint(buf[:i+1])
			if n != i+1 || n != uvarintLen(v) {
				return 0, sr.fail(field, ErrMalformed)
			}
			sr.consume(buf[:n])
			return v, nil
		}
	}
	return 0, sr.fail(field, ErrMalformed)
}

// bytes reads a length-prefixed byte string of at most limit bytes.
func (sr *snapReader) bytes(field, lengthField string, limit int) ([]byte, error) {
	at := sr.off
	n, err := sr.uvarint(lengthField)
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, &DecodeError{Field: field, Offset: at, Err: ErrLimit}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(sr.r, p); err != nil {
		return nil, sr.fail(field, err)
	}
	sr.consume(p)
	return p, nil
}

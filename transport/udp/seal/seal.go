// Package seal authenticates and encrypts datagrams with a pre-shared
// cluster key (docs/SECURITY.md). It is used by transport/udp for peer
// datagrams and by package client for the client protocol.
//
// # Sealed datagram
//
//	magic    1 byte   0xE5 (sealed, format 1)
//	epoch    8 bytes  big-endian: the sender's start time in Unix nanoseconds
//	salt     8 bytes  random, chosen at the sender's start
//	counter  8 bytes  big-endian: 0, 1, 2, ... per (epoch, salt)
//	sealed   the frame encrypted with AES-256-GCM, then its 16-byte tag
//
// The AES key of a sender instance is derived from the cluster key with
// HKDF-SHA256 (info: "embraft seal v1", the cluster ID, epoch and salt),
// so every (epoch, salt) has its own key and the 12-byte GCM nonce — four
// zero bytes and the counter — is never reused under one key: the counter
// only grows, and a new start draws a new salt. The additional data is the
// 25-byte header and the cluster ID (8 bytes, big-endian), so a datagram
// of another cluster, or with a changed header, fails to open.
//
// # Replay
//
// A receiver keeps, per sender, a sliding window of the counters it
// accepted (WindowSize, like IPsec and WireGuard): a counter seen before,
// or older than the window, is a replay. Senders that the receiver can
// name (a peer, identified by its address) are Ordered: the newest epoch
// seen wins, and datagrams of an older epoch are refused, so datagrams
// captured before a peer restarted cannot be replayed after it did.
// Senders it cannot name (clients) are tracked per (epoch, salt) in a
// bounded table (Sessions), and epochs older than MaxSessionAge are
// refused, which bounds how old a replayed datagram can be.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/embraft/embraft/wire"
)

// Sizes of the sealed format.
const (
	KeySize    = 32
	HeaderSize = 1 + 8 + 8 + 8
	TagSize    = 16
	// Overhead is what sealing adds to a frame.
	Overhead = HeaderSize + TagSize
	// Magic is the first byte of a sealed datagram.
	Magic = 0xE5
	// WindowSize is the number of counters a replay window remembers
	// behind the highest one accepted.
	WindowSize = 1024
	// EnvKey is the environment variable that may hold the cluster key
	// (64 hex digits).
	EnvKey = "EMBRAFT_CLUSTER_KEY"
)

// Errors of Open (each error wraps exactly one).
var (
	// ErrFormat: the datagram is not a sealed datagram (too short, wrong
	// magic byte): e.g. sent by a node without the key.
	ErrFormat = errors.New("seal: not a sealed datagram")
	// ErrAuth: the datagram does not authenticate: forged, tampered, or
	// sealed with another key or for another cluster ID.
	ErrAuth = errors.New("seal: authentication failed")
	// ErrReplay: the counter was accepted before, or is older than the
	// replay window.
	ErrReplay = errors.New("seal: replayed datagram")
	// ErrStaleEpoch: the datagram's epoch is older than the newest seen
	// from its sender (or equal to it with another salt), or older than
	// MaxSessionAge. This is checked before authentication (deriving an
	// old epoch's key for every such datagram would be a cheap way to
	// make a receiver work), so a forged header naming an old epoch is
	// refused with ErrStaleEpoch too.
	ErrStaleEpoch = errors.New("seal: datagram from an old epoch")
	// ErrKey: a key could not be read or parsed.
	ErrKey = errors.New("seal: bad cluster key")
	// ErrExhausted: a sender's counter is used up (after 2^64 datagrams).
	ErrExhausted = errors.New("seal: counter exhausted")
)

// Key is a pre-shared cluster key.
type Key [KeySize]byte

// ParseKey reads a key written as 64 hex digits (surrounding white space
// is ignored).
func ParseKey(text string) (Key, error) {
	var k Key
	s := strings.TrimSpace(text)
	if len(s) != 2*KeySize {
		return k, errors.Join(ErrKey, errors.New("seal: a key is 64 hex digits (32 bytes)"))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return Key{}, errors.Join(ErrKey, err)
	}
	if k == (Key{}) {
		return k, errors.Join(ErrKey, errors.New("seal: the all-zero key is refused"))
	}
	return k, nil
}

// String returns the key as 64 hex digits. Do not log it.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// LoadKeyFile reads a key file: 64 hex digits, optionally followed by a
// newline. A file readable by group or others is accepted, but warn
// reports it.
func LoadKeyFile(path string) (k Key, warn string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return k, "", errors.Join(ErrKey, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		warn = "key file " + path + " is readable by group or others (chmod 600 it)"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return k, "", errors.Join(ErrKey, err)
	}
	k, err = ParseKey(string(b))
	if err != nil {
		return k, "", errors.Join(errors.New("seal: "+path), err)
	}
	return k, warn, nil
}

// Load returns the key from file if file is not empty, else from the
// environment variable EnvKey, else nil (no key: unauthenticated).
func Load(file string) (*Key, string, error) {
	if file != "" {
		k, warn, err := LoadKeyFile(file)
		if err != nil {
			return nil, "", err
		}
		return &k, warn, nil
	}
	if v, ok := os.LookupEnv(EnvKey); ok && v != "" {
		k, err := ParseKey(v)
		if err != nil {
			return nil, "", errors.Join(errors.New("seal: $"+EnvKey), err)
		}
		return &k, "", nil
	}
	return nil, "", nil
}

// NewKey returns a random key.
func NewKey() Key {
	var k Key
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return k
}

// derive returns the AEAD of sender instance (epoch, salt).
func derive(key *Key, cluster wire.ClusterID, epoch, salt uint64) cipher.AEAD {
	info := make([]byte, 0, 15+24)
	info = append(info, "embraft seal v1"...)
	info = binary.BigEndian.AppendUint64(info, uint64(cluster))
	info = binary.BigEndian.AppendUint64(info, epoch)
	info = binary.BigEndian.AppendUint64(info, salt)
	sub, err := hkdf.Key(sha256.New, key[:], nil, string(info), KeySize)
	if err != nil {
		panic("seal: hkdf: " + err.Error()) // only for lengths over 255*32 bytes
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		panic("seal: aes: " + err.Error()) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("seal: gcm: " + err.Error())
	}
	return aead
}

// additional returns the additional data of a datagram with header hdr.
func additional(buf *[HeaderSize + 8]byte, hdr []byte, cluster wire.ClusterID) []byte {
	copy(buf[:], hdr[:HeaderSize])
	binary.BigEndian.PutUint64(buf[HeaderSize:], uint64(cluster))
	return buf[:]
}

func nonce(buf *[12]byte, counter uint64) []byte {
	*buf = [12]byte{}
	binary.BigEndian.PutUint64(buf[4:], counter)
	return buf[:]
}

// Sealer seals the datagrams of one sender instance. It is safe for
// concurrent use.
type Sealer struct {
	cluster wire.ClusterID
	epoch   uint64
	salt    uint64
	created time.Time

	mu      sync.Mutex
	aead    cipher.AEAD
	counter uint64
}

// NewSealer starts a sender instance: its epoch is the current time (so a
// later start has a later epoch, which Ordered receivers require) and its
// salt is random.
func NewSealer(key *Key, cluster wire.ClusterID) *Sealer {
	now := time.Now()
	var r [8]byte
	_, _ = rand.Read(r[:])
	return newSealer(key, cluster, uint64(now.UnixNano()), binary.BigEndian.Uint64(r[:]), now)
}

func newSealer(key *Key, cluster wire.ClusterID, epoch, salt uint64, now time.Time) *Sealer {
	return &Sealer{cluster: cluster, epoch: epoch, salt: salt, created: now, aead: derive(key, cluster, epoch, salt)}
}

// Epoch returns the sender instance's epoch.
func (s *Sealer) Epoch() uint64 { return s.epoch }

// Age returns how long ago the sealer was created.
func (s *Sealer) Age() time.Duration { return time.Since(s.created) }

// Seal appends the sealed datagram of frame to dst and returns the
// extended buffer (len(frame)+Overhead bytes more).
func (s *Sealer) Seal(dst, frame []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counter == ^uint64(0) {
		return dst, ErrExhausted
	}
	c := s.counter
	s.counter++
	start := len(dst)
	dst = append(dst, Magic)
	dst = binary.BigEndian.AppendUint64(dst, s.epoch)
	dst = binary.BigEndian.AppendUint64(dst, s.salt)
	dst = binary.BigEndian.AppendUint64(dst, c)
	var ad [HeaderSize + 8]byte
	var n [12]byte
	return s.aead.Seal(dst, nonce(&n, c), frame, additional(&ad, dst[start:], s.cluster)), nil
}

// header is a parsed sealed-datagram header.
type header struct {
	epoch, salt, counter uint64
}

func parse(d []byte) (header, error) {
	if len(d) < Overhead || d[0] != Magic {
		return header{}, ErrFormat
	}
	return header{
		epoch:   binary.BigEndian.Uint64(d[1:]),
		salt:    binary.BigEndian.Uint64(d[9:]),
		counter: binary.BigEndian.Uint64(d[17:]),
	}, nil
}

// stream is the receive state of one sender instance.
type stream struct {
	epoch, salt uint64
	aead        cipher.AEAD
	win         window
}

// open authenticates d (whose header is h) with the stream's key and
// checks the replay window; on success it records the counter and
// appends the frame to dst.
//
// It authenticates before it consults the window, so that ErrReplay always
// means an authentic datagram seen before (or too old for the window),
// never a forged header.
func (st *stream) open(dst, d []byte, h header, cluster wire.ClusterID) ([]byte, error) {
	var ad [HeaderSize + 8]byte
	var n [12]byte
	out, err := st.aead.Open(dst, nonce(&n, h.counter), d[HeaderSize:], additional(&ad, d, cluster))
	if err != nil {
		return dst, ErrAuth
	}
	if !st.win.fresh(h.counter) {
		return dst, ErrReplay
	}
	st.win.accept(h.counter)
	return out, nil
}

// Ordered opens datagrams from senders the receiver identifies by a key K
// (a peer ID, an address): per sender, only the newest epoch is accepted.
// It is safe for concurrent use.
type Ordered[K comparable] struct {
	key     Key
	cluster wire.ClusterID
	mu      sync.Mutex
	streams map[K]*stream
}

// NewOrdered returns a receiver for identified senders.
func NewOrdered[K comparable](key *Key, cluster wire.ClusterID) *Ordered[K] {
	return &Ordered[K]{key: *key, cluster: cluster, streams: map[K]*stream{}}
}

// Open authenticates the datagram d from sender and appends its frame to
// dst. It fails with ErrFormat, ErrAuth, ErrReplay or ErrStaleEpoch, and
// changes no state unless d authenticates.
func (o *Ordered[K]) Open(dst []byte, sender K, d []byte) ([]byte, error) {
	h, err := parse(d)
	if err != nil {
		return dst, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	cur := o.streams[sender]
	if cur != nil && h.epoch == cur.epoch && h.salt == cur.salt {
		return cur.open(dst, d, h, o.cluster)
	}
	if cur != nil && h.epoch <= cur.epoch {
		// Older (or equal with another salt: a sender cannot start twice
		// in the same nanosecond; treat it as stale too).
		return dst, ErrStaleEpoch
	}
	// A newer epoch: the sender restarted (or it is a forgery, which the
	// key derivation and Open below reject without changing state).
	st := &stream{epoch: h.epoch, salt: h.salt, aead: derive(&o.key, o.cluster, h.epoch, h.salt)}
	out, err := st.open(dst, d, h, o.cluster)
	if err != nil {
		return dst, err
	}
	o.streams[sender] = st
	return out, nil
}

// Epoch returns the newest epoch accepted from sender (0: none).
func (o *Ordered[K]) Epoch(sender K) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if st := o.streams[sender]; st != nil {
		return st.epoch
	}
	return 0
}

// Default bounds of Sessions.
const (
	DefaultMaxSessions   = 4096
	DefaultMaxSessionAge = 10 * time.Minute
	// SessionRotate is how often a long-lived client should start a new
	// Sealer so that its epoch stays within MaxSessionAge.
	SessionRotate = time.Minute
)

// Sessions opens datagrams from senders the receiver cannot identify
// (clients): it keeps the replay windows of the MaxSessions most recently
// active sender instances and refuses epochs older than MaxSessionAge. It
// is safe for concurrent use.
type Sessions struct {
	key     Key
	cluster wire.ClusterID
	max     int
	maxAge  time.Duration
	now     func() time.Time

	mu    sync.Mutex
	byID  map[[2]uint64]*sessionEntry
	lru   sessionEntry // sentinel: lru.next is the least recently used
	count int
}

type sessionEntry struct {
	stream
	prev, next *sessionEntry
}

// NewSessions returns a receiver for unidentified senders; non-positive
// bounds select the defaults.
func NewSessions(key *Key, cluster wire.ClusterID, maxSessions int, maxAge time.Duration) *Sessions {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxSessionAge
	}
	s := &Sessions{key: *key, cluster: cluster, max: maxSessions, maxAge: maxAge, now: time.Now,
		byID: map[[2]uint64]*sessionEntry{}}
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	return s
}

// Open authenticates d and appends its frame to dst. It fails with
// ErrFormat, ErrAuth, ErrReplay or ErrStaleEpoch (an epoch older than
// MaxSessionAge), and changes no state unless d authenticates.
func (s *Sessions) Open(dst, d []byte) ([]byte, error) {
	h, err := parse(d)
	if err != nil {
		return dst, err
	}
	if int64(h.epoch) < s.now().Add(-s.maxAge).UnixNano() {
		return dst, ErrStaleEpoch
	}
	id := [2]uint64{h.epoch, h.salt}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byID[id]; e != nil {
		out, err := e.open(dst, d, h, s.cluster)
		if err == nil {
			s.unlink(e)
			s.pushBack(e)
		}
		return out, err
	}
	e := &sessionEntry{stream: stream{epoch: h.epoch, salt: h.salt, aead: derive(&s.key, s.cluster, h.epoch, h.salt)}}
	out, err := e.open(dst, d, h, s.cluster)
	if err != nil {
		return dst, err
	}
	if s.count >= s.max {
		old := s.lru.next
		s.unlink(old)
		delete(s.byID, [2]uint64{old.epoch, old.salt})
		s.count--
	}
	s.byID[id] = e
	s.pushBack(e)
	s.count++
	return out, nil
}

// Len returns the number of sender instances tracked.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

func (s *Sessions) unlink(e *sessionEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *Sessions) pushBack(e *sessionEntry) {
	last := s.lru.prev
	e.prev, e.next = last, &s.lru
	last.next = e
	s.lru.prev = e
}

// window is a sliding replay window over counters: top is the highest
// counter accepted, and bit i of bits records whether top-i was.
type window struct {
	any  bool
	top  uint64
	bits [WindowSize / 64]uint64
}

// fresh reports whether counter c may be accepted (it does not record it).
func (w *window) fresh(c uint64) bool {
	if !w.any || c > w.top {
		return true
	}
	d := w.top - c
	if d >= WindowSize {
		return false // too old to tell: refuse
	}
	return w.bits[d/64]&(1<<(d%64)) == 0
}

// accept records counter c, which fresh approved.
func (w *window) accept(c uint64) {
	if !w.any {
		w.any, w.top = true, c
		w.bits[0] = 1
		return
	}
	if c > w.top {
		w.shift(c - w.top)
		w.top = c
		w.bits[0] |= 1
		return
	}
	d := w.top - c
	w.bits[d/64] |= 1 << (d % 64)
}

// shift moves the window n counters forward (bit i becomes bit i+n).
func (w *window) shift(n uint64) {
	if n >= WindowSize {
		w.bits = [WindowSize / 64]uint64{}
		return
	}
	words, bitsN := int(n/64), uint(n%64)
	for i := len(w.bits) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = w.bits[j] << bitsN
			if bitsN > 0 && j-1 >= 0 {
				v |= w.bits[j-1] >> (64 - bitsN)
			}
		}
		w.bits[i] = v
	}
}

package kv

import (
	"bytes"
	"hash/fnv"
	"sync"

	"github.com/embraft/embraft/raft"
)

// Default bounds, used for Options fields left at zero (or negative).
const (
	DefaultMaxSessions   = 1024
	DefaultMaxKeyBytes   = 256
	DefaultMaxValueBytes = 64 << 10
	DefaultMaxKeys       = 1 << 20
)

// Options bound the store's memory. Every replica of one cluster must use
// the same Options: they decide results (StatusTooLarge, StatusFull) and
// which sessions are evicted, so replicas with different Options diverge.
type Options struct {
	// MaxSessions is the number of live client sessions; registering one
	// more evicts the least recently active session. Default 1024.
	MaxSessions int
	// MaxKeyBytes bounds a key's length. Default 256.
	MaxKeyBytes int
	// MaxValueBytes bounds a value's length (and a CAS's expected value).
	// Default 64 KiB.
	MaxValueBytes int
	// MaxKeys bounds the number of keys. Default 1<<20.
	MaxKeys int
	// SessionTTLEntries, if non-zero, expires a session once the log has
	// advanced more than SessionTTLEntries indexes past the session's last
	// activity. Zero disables idle expiry (sessions then leave only by
	// eviction).
	SessionTTLEntries uint64
}

func (o Options) withDefaults() Options {
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.MaxKeyBytes <= 0 {
		o.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	return o
}

// Stats describes a store's contents.
type Stats struct {
	Keys        int        // keys held
	Sessions    int        // live sessions
	Evictions   uint64     // sessions evicted to make room for a registration
	Expirations uint64     // sessions expired by SessionTTLEntries
	Applied     raft.Index // index of the last entry applied (0: none)
}

// Store is the replicated key-value state machine. It implements the
// node package's StateMachine interface (Apply, Snapshot, Restore).
//
// A Store is safe for concurrent use: Apply and Restore are serialized
// against everything else, and the read-only methods (Get, Len, Stats,
// Digest, Snapshot) may run concurrently with each other. Snapshot holds
// the read lock while it writes, so a slow writer delays Apply.
type Store struct {
	opts Options

	mu          sync.RWMutex
	data        map[string]*entry
	sessions    map[uint64]*session
	lru         session // sentinel of the activity list: lru.next is the oldest
	applied     raft.Index
	evictions   uint64
	expirations uint64
}

type entry struct {
	val []byte
}

// session is a live client session. Sessions sit on a doubly linked list
// ordered by lastActive, oldest first: Apply sees strictly increasing
// indexes, so moving a touched session to the back keeps the order.
type session struct {
	id         uint64
	seq        uint64     // last applied Seq (0: only registered)
	lastActive raft.Index // log index of the last command naming the session
	result     []byte     // encoded result of seq
	prev, next *session
}

// New returns an empty store bounded by opts (zero fields take the
// defaults).
func New(opts Options) *Store {
	s := &Store{opts: opts.withDefaults()}
	s.data = make(map[string]*entry)
	s.sessions = make(map[uint64]*session)
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	return s
}

// Options returns the store's effective options (defaults filled in).
func (s *Store) Options() Options { return s.opts }

// Apply applies the command cmd, the payload of the committed log entry at
// index, and returns its encoded Result in a new slice. Indexes must
// increase from call to call; an index not above the last one applied is
// answered StatusBadCommand and changes nothing. cmd is not retained.
func (s *Store) Apply(index raft.Index, cmd []byte) []byte {
	return s.ApplyTo(nil, index, cmd)
}

// ApplyTo is Apply appending the encoded Result to dst, in the style of
// strconv.AppendInt. Applying a Put to an existing key with a value that
// fits the old one's buffer, into a dst with room, allocates nothing.
func (s *Store) ApplyTo(dst []byte, index raft.Index, cmd []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apply(dst, index, cmd)
}

func (s *Store) apply(dst []byte, index raft.Index, cmd []byte) []byte {
	if index == 0 || index <= s.applied {
		r := Result{Status: StatusBadCommand, Index: index}
		return r.AppendBinary(dst)
	}
	s.applied = index
	s.expireIdle(index)

	var c Command
	if DecodeCommand(cmd, &c) != nil {
		r := Result{Status: StatusBadCommand, Index: index}
		return r.AppendBinary(dst)
	}
	if c.Op == OpRegister {
		return append(dst, s.register(index).result...)
	}
	sess := s.sessions[c.ClientID]
	if sess == nil {
		r := Result{Status: StatusSessionExpired, ClientID: c.ClientID, Index: index}
		return r.AppendBinary(dst)
	}
	s.touch(sess, index)
	switch {
	case c.Seq == sess.seq:
		// A retry: answer from the cache, do not apply again.
		return append(dst, sess.result...)
	case c.Seq < sess.seq:
		r := Result{Status: StatusStaleSequence, ClientID: c.ClientID, Index: index}
		return r.AppendBinary(dst)
	}
	r := s.execute(&c)
	r.ClientID, r.Index = c.ClientID, index
	sess.seq = c.Seq
	sess.result = r.AppendBinary(sess.result[:0])
	return append(dst, sess.result...)
}

// execute performs a decoded non-register command on the data. The
// returned Value may alias the store's value; the caller encodes it at
// once.
func (s *Store) execute(c *Command) Result {
	if len(c.Key) > s.opts.MaxKeyBytes || len(c.Value) > s.opts.MaxValueBytes ||
		len(c.Expected) > s.opts.MaxValueBytes {
		return Result{Status: StatusTooLarge}
	}
	e := s.data[string(c.Key)]
	switch c.Op {
	case OpPut:
		if e != nil {
			e.set(c.Value)
			return Result{Status: StatusOK}
		}
		if len(s.data) >= s.opts.MaxKeys {
			return Result{Status: StatusFull}
		}
		e = &entry{}
		e.set(c.Value)
		s.data[string(c.Key)] = e
		return Result{Status: StatusOK}
	case OpGet:
		if e == nil {
			return Result{Status: StatusNotFound}
		}
		return Result{Status: StatusOK, Value: e.val}
	case OpDelete:
		if e == nil {
			return Result{Status: StatusNotFound}
		}
		delete(s.data, string(c.Key))
		return Result{Status: StatusOK}
	case OpCAS:
		if e == nil {
			return Result{Status: StatusNotFound}
		}
		if !bytes.Equal(e.val, c.Expected) {
			return Result{Status: StatusCASMismatch, Value: e.val}
		}
		e.set(c.Value)
		return Result{Status: StatusOK}
	}
	panic("kv: execute: unexpected op " + c.Op.String()) // DecodeCommand admits no other op
}

// set copies v into the entry, reusing its buffer when that buffer is not
// much larger than v (so a shrunk value does not pin a large buffer).
func (e *entry) set(v []byte) {
	if cap(e.val) >= len(v) && cap(e.val) <= 2*len(v)+64 {
		e.val = append(e.val[:0], v...)
		return
	}
	e.val = append(make([]byte, 0, len(v)), v...)
}

// register opens a session whose ClientID is index, evicting the least
// recently active session if MaxSessions are live.
func (s *Store) register(index raft.Index) *session {
	for len(s.sessions) >= s.opts.MaxSessions {
		s.drop(s.lru.next)
		s.evictions++
	}
	sess := &session{id: uint64(index), lastActive: index}
	r := Result{Status: StatusOK, ClientID: sess.id, Index: index}
	sess.result = r.AppendBinary(make([]byte, 0, 24))
	s.sessions[sess.id] = sess
	s.pushBack(sess)
	return sess
}

// expireIdle drops the sessions idle for more than SessionTTLEntries log
// indexes as of index.
func (s *Store) expireIdle(index raft.Index) {
	ttl := s.opts.SessionTTLEntries
	if ttl == 0 {
		return
	}
	for old := s.lru.next; old != &s.lru && uint64(index-old.lastActive) > ttl; old = s.lru.next {
		s.drop(old)
		s.expirations++
	}
}

func (s *Store) touch(sess *session, index raft.Index) {
	sess.lastActive = index
	s.unlink(sess)
	s.pushBack(sess)
}

func (s *Store) drop(sess *session) {
	s.unlink(sess)
	delete(s.sessions, sess.id)
}

func (s *Store) unlink(sess *session) {
	sess.prev.next = sess.next
	sess.next.prev = sess.prev
	sess.prev, sess.next = nil, nil
}

func (s *Store) pushBack(sess *session) {
	last := s.lru.prev
	sess.prev, sess.next = last, &s.lru
	last.next = sess
	s.lru.prev = sess
}

// Get returns a copy of key's value and whether key exists. It reads the
// local replica: it is not linearizable (submit an OpGet for that).
func (s *Store) Get(key []byte) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.data[string(key)]
	if e == nil {
		return nil, false
	}
	return append([]byte{}, e.val...), true
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.data)
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stats{
		Keys:        len(s.data),
		Sessions:    len(s.sessions),
		Evictions:   s.evictions,
		Expirations: s.expirations,
		Applied:     s.applied,
	}
}

// Digest returns a 64-bit FNV-1a hash of the store's snapshot encoding,
// which is canonical (keys sorted, sessions in activity order). Two
// replicas that applied the same log prefix have equal digests; a
// difference in any key, value, session, cached result, counter or applied
// index changes the digest (barring hash collisions).
func (s *Store) Digest() uint64 {
	h := fnv.New64a()
	_ = s.Snapshot(h) // hash writes never fail
	return h.Sum64()
}

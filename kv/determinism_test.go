package kv_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

// model is a deliberately naive reference implementation of the store's
// documented rules: linear scans instead of the store's activity list.
type model struct {
	opts    kv.Options
	data    map[string]string
	sess    map[uint64]*modelSession
	applied raft.Index
}

type modelSession struct {
	seq    uint64
	active raft.Index
	result []byte
}

func newModel(opts kv.Options) *model {
	return &model{opts: kv.New(opts).Options(), data: map[string]string{}, sess: map[uint64]*modelSession{}}
}

func (m *model) apply(index raft.Index, cmd []byte) []byte {
	res := func(st kv.Status, client uint64, v []byte) []byte {
		r := kv.Result{Status: st, ClientID: client, Index: index, Value: v}
		return r.AppendBinary(nil)
	}
	if index <= m.applied {
		return res(kv.StatusBadCommand, 0, nil)
	}
	m.applied = index
	if ttl := m.opts.SessionTTLEntries; ttl > 0 {
		for id, s := range m.sess {
			if uint64(index-s.active) > ttl {
				delete(m.sess, id)
			}
		}
	}
	var c kv.Command
	if kv.DecodeCommand(cmd, &c) != nil {
		return res(kv.StatusBadCommand, 0, nil)
	}
	if c.Op == kv.OpRegister {
		for len(m.sess) >= m.opts.MaxSessions {
			var victim uint64
			var found bool
			for id, s := range m.sess {
				if !found || s.active < m.sess[victim].active || s.active == m.sess[victim].active && id < victim {
					victim, found = id, true
				}
			}
			delete(m.sess, victim)
		}
		out := res(kv.StatusOK, uint64(index), nil)
		m.sess[uint64(index)] = &modelSession{active: index, result: out}
		return out
	}
	s := m.sess[c.ClientID]
	if s == nil {
		return res(kv.StatusSessionExpired, c.ClientID, nil)
	}
	s.active = index
	if c.Seq == s.seq {
		return s.result
	}
	if c.Seq < s.seq {
		return res(kv.StatusStaleSequence, c.ClientID, nil)
	}
	s.seq = c.Seq
	key := string(c.Key)
	old, exists := m.data[key]
	st, v := kv.StatusOK, []byte(nil)
	switch {
	case len(c.Key) > m.opts.MaxKeyBytes || len(c.Value) > m.opts.MaxValueBytes || len(c.Expected) > m.opts.MaxValueBytes:
		st = kv.StatusTooLarge
	case c.Op == kv.OpPut && !exists && len(m.data) >= m.opts.MaxKeys:
		st = kv.StatusFull
	case c.Op == kv.OpPut:
		m.data[key] = string(c.Value)
	case !exists:
		st = kv.StatusNotFound
	case c.Op == kv.OpGet:
		v = []byte(old)
	case c.Op == kv.OpDelete:
		delete(m.data, key)
	case c.Op == kv.OpCAS && old != string(c.Expected):
		st, v = kv.StatusCASMismatch, []byte(old)
	case c.Op == kv.OpCAS:
		m.data[key] = string(c.Value)
	}
	s.result = res(st, c.ClientID, v)
	return s.result
}

// workload generates a random but plausible entry stream: several
// clients, retries, stale duplicates, garbage, unknown sessions, index
// gaps, registrations beyond MaxSessions.
type workload struct {
	rng     *rand.Rand
	idx     raft.Index
	clients []*kv.Session
	sent    [][]byte // every encoded command so far, for duplicates
}

func (w *workload) next() (raft.Index, []byte) {
	w.idx += 1 + raft.Index(w.rng.IntN(3)/2) // sometimes skip an index (a no-op entry)
	key := func() []byte {
		n := 1 + w.rng.IntN(2)
		if w.rng.IntN(10) == 0 {
			n = 5 // over MaxKeyBytes
		}
		return bytes.Repeat([]byte{'a' + byte(w.rng.IntN(6))}, n)
	}
	val := func() []byte { return bytes.Repeat([]byte{'0' + byte(w.rng.IntN(2))}, w.rng.IntN(4)) }
	big := func() []byte { return bytes.Repeat([]byte{'z'}, 8+w.rng.IntN(2)) }
	var cmd []byte
	switch p := w.rng.IntN(100); {
	case p < 4 || len(w.clients) == 0:
		cmd = enc(kv.Register())
		w.clients = append(w.clients, nil) // filled in by the caller from the result
	case p < 20 && len(w.sent) > 0: // duplicate of an earlier command (retry or stale)
		cmd = w.sent[len(w.sent)-1-w.rng.IntN(min(len(w.sent), 8))]
	case p < 23:
		cmd = make([]byte, w.rng.IntN(12))
		for i := range cmd {
			cmd[i] = byte(w.rng.UintN(256))
		}
	case p < 25:
		s := kv.Session{ClientID: uint64(w.rng.IntN(int(w.idx) + 5))}
		cmd = enc(s.Get(key()))
	default:
		s := w.clients[len(w.clients)-1-w.rng.IntN(min(len(w.clients), 5))] // mostly live sessions
		var c kv.Command
		switch w.rng.IntN(9) {
		case 0, 1, 2:
			c = s.Put(key(), val())
		case 3:
			c = s.Put(key(), big())
		case 4, 5:
			c = s.Get(key())
		case 6:
			c = s.Delete(key())
		default:
			c = s.CAS(key(), val(), val())
		}
		cmd = enc(c)
	}
	w.sent = append(w.sent, cmd)
	return w.idx, cmd
}

func TestDeterminism(t *testing.T) {
	seeds := []uint64{1, 2, 3, 42, uint64(time.Now().UnixNano())}
	for _, seed := range seeds {
		runDeterminism(t, seed, 4000)
	}
}

func runDeterminism(t *testing.T, seed uint64, n int) {
	t.Helper()
	opts := kv.Options{MaxSessions: 4, MaxKeyBytes: 4, MaxValueBytes: 8, MaxKeys: 5, SessionTTLEntries: 60}
	a, b := kv.New(opts), kv.New(opts)
	m := newModel(opts)
	var c *kv.Store // restored from a's snapshot midway
	w := &workload{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	restoreAt := n/3 + w.rng.IntN(n/3)
	for i := range n {
		idx, cmd := w.next()
		outA := a.Apply(idx, cmd)
		outB := b.Apply(idx, cmd)
		want := m.apply(idx, cmd)
		if !bytes.Equal(outA, outB) || !bytes.Equal(outA, want) {
			t.Fatalf("seed %d, entry %d (index %d, cmd %x): store A %x, store B %x, model %x",
				seed, i, idx, cmd, outA, outB, want)
		}
		if c != nil {
			if outC := c.Apply(idx, cmd); !bytes.Equal(outC, outA) {
				t.Fatalf("seed %d, entry %d: restored store %x, original %x", seed, i, outC, outA)
			}
		}
		var r kv.Result
		kv.DecodeResult(outA, &r)
		if last := len(w.clients) - 1; last >= 0 && w.clients[last] == nil && r.Status == kv.StatusOK && r.ClientID == uint64(idx) {
			w.clients[last] = &kv.Session{ClientID: r.ClientID}
		}
		if i == restoreAt {
			c = kv.New(opts)
			if err := c.Restore(bytes.NewReader(snapshotBytes(t, a))); err != nil {
				t.Fatalf("seed %d: Restore: %v", seed, err)
			}
		}
		if a.Len() != len(m.data) || a.Stats().Sessions != len(m.sess) {
			t.Fatalf("seed %d, entry %d: store has %d keys %d sessions, model %d and %d",
				seed, i, a.Len(), a.Stats().Sessions, len(m.data), len(m.sess))
		}
	}
	sa, sb, sc := snapshotBytes(t, a), snapshotBytes(t, b), snapshotBytes(t, c)
	if !bytes.Equal(sa, sb) || !bytes.Equal(sa, sc) {
		t.Fatalf("seed %d: snapshots differ", seed)
	}
	if a.Digest() != b.Digest() || a.Digest() != c.Digest() {
		t.Fatalf("seed %d: digests differ", seed)
	}
	for k, v := range m.data {
		if got, ok := a.Get([]byte(k)); !ok || string(got) != v {
			t.Fatalf("seed %d: key %q = %q, %v; model %q", seed, k, got, ok, v)
		}
	}
	st := a.Stats()
	if st.Evictions == 0 || st.Expirations == 0 {
		t.Logf("seed %d: workload did not exercise both expiry rules: %+v", seed, st)
	}
}

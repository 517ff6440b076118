package kv_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/raft"
)

func TestPutGetDelete(t *testing.T) {
	h := newHarness(t, kv.Options{})
	c := h.register()

	h.want(h.do(c.Get(b("a"))), kv.StatusNotFound, "")
	h.want(h.do(c.Put(b("a"), b("1"))), kv.StatusOK, "")
	h.want(h.do(c.Get(b("a"))), kv.StatusOK, "1")
	h.want(h.do(c.Put(b("a"), b("22"))), kv.StatusOK, "")
	h.want(h.do(c.Get(b("a"))), kv.StatusOK, "22")
	h.want(h.do(c.Put(b(""), b(""))), kv.StatusOK, "") // empty key and value are fine
	if v, ok := h.s.Get(b("")); !ok || len(v) != 0 {
		t.Fatalf("Get(empty) = %q, %v", v, ok)
	}
	if v, ok := h.s.Get(b("a")); !ok || string(v) != "22" {
		t.Fatalf("Get(a) = %q, %v", v, ok)
	}
	if h.s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", h.s.Len())
	}
	h.want(h.do(c.Delete(b("a"))), kv.StatusOK, "")
	h.want(h.do(c.Delete(b("a"))), kv.StatusNotFound, "")
	h.want(h.do(c.Get(b("a"))), kv.StatusNotFound, "")
	if _, ok := h.s.Get(b("a")); ok {
		t.Fatal("a still present")
	}
	st := h.s.Stats()
	if st.Keys != 1 || st.Sessions != 1 || st.Applied != h.idx {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestGetReturnsCopy(t *testing.T) {
	h := newHarness(t, kv.Options{})
	c := h.register()
	val := b("value")
	h.do(c.Put(b("k"), val))
	val[0] = 'X' // the store copied the command's bytes
	v, _ := h.s.Get(b("k"))
	v[0] = 'Y' // and Get returns a copy
	if w, _ := h.s.Get(b("k")); string(w) != "value" {
		t.Fatalf("value changed to %q", w)
	}
}

func TestCAS(t *testing.T) {
	h := newHarness(t, kv.Options{})
	c := h.register()
	h.want(h.do(c.CAS(b("k"), b(""), b("x"))), kv.StatusNotFound, "") // missing key never matches
	h.want(h.do(c.Put(b("k"), b("1"))), kv.StatusOK, "")
	h.want(h.do(c.CAS(b("k"), b("2"), b("3"))), kv.StatusCASMismatch, "1")
	h.want(h.do(c.Get(b("k"))), kv.StatusOK, "1")
	h.want(h.do(c.CAS(b("k"), b("1"), b("3"))), kv.StatusOK, "")
	h.want(h.do(c.Get(b("k"))), kv.StatusOK, "3")
	h.want(h.do(c.CAS(b("k"), b("1"), b("4"))), kv.StatusCASMismatch, "3")
	// Empty values compare like any other.
	h.want(h.do(c.Put(b("e"), nil)), kv.StatusOK, "")
	h.want(h.do(c.CAS(b("e"), nil, b("full"))), kv.StatusOK, "")
	h.want(h.do(c.CAS(b("e"), nil, b("again"))), kv.StatusCASMismatch, "full")
}

func TestRetryAppliedOnce(t *testing.T) {
	h := newHarness(t, kv.Options{})
	a := h.register()
	other := h.register()

	h.want(h.do(a.Put(b("x"), b("1"))), kv.StatusOK, "")
	casBytes := enc(a.CAS(b("x"), b("1"), b("2")))
	r1, out1 := h.raw(casBytes)
	h.want(r1, kv.StatusOK, "")
	firstIndex := h.idx

	// Another client changes x; a duplicate of a's CAS must not apply again
	// (it would now mismatch) and must not undo the other write.
	h.want(h.do(other.Put(b("x"), b("9"))), kv.StatusOK, "")
	r2, out2 := h.raw(casBytes)
	if !bytes.Equal(out1, out2) {
		t.Fatalf("retry result %x differs from first %x", out2, out1)
	}
	if r2.Index != firstIndex || r2.ClientID != a.ClientID {
		t.Fatalf("retry result %+v, want index %d client %d", r2, firstIndex, a.ClientID)
	}
	if v, _ := h.s.Get(b("x")); string(v) != "9" {
		t.Fatalf("x = %q, want 9 (retry re-applied)", v)
	}
	// The next new command applies normally.
	h.want(h.do(a.Get(b("x"))), kv.StatusOK, "9")
}

func TestRetryOfGetReturnsCachedValue(t *testing.T) {
	h := newHarness(t, kv.Options{})
	a := h.register()
	h.do(a.Put(b("k"), b("old")))
	get := enc(a.Get(b("k")))
	_, out1 := h.raw(get)
	h.do(h.register().Put(b("k"), b("new")))
	r, out2 := h.raw(get)
	if !bytes.Equal(out1, out2) || string(r.Value) != "old" {
		t.Fatalf("retried Get: %+v (bytes equal: %v)", r, bytes.Equal(out1, out2))
	}
}

func TestStaleSequence(t *testing.T) {
	h := newHarness(t, kv.Options{})
	a := h.register()
	first := enc(a.Put(b("k"), b("1")))
	h.raw(first)
	h.do(a.Put(b("k"), b("2")))
	r, _ := h.raw(first) // seq 1 < last 2
	if r.Status != kv.StatusStaleSequence || r.ClientID != a.ClientID || r.Index != h.idx {
		t.Fatalf("stale duplicate: %+v", r)
	}
	if v, _ := h.s.Get(b("k")); string(v) != "2" {
		t.Fatalf("k = %q, want 2", v)
	}
	// A sequence gap is tolerated: Seq > last applies.
	a.Seq += 5
	h.want(h.do(a.Put(b("k"), b("3"))), kv.StatusOK, "")
}

func TestUnknownClient(t *testing.T) {
	h := newHarness(t, kv.Options{})
	h.register()
	ghost := &kv.Session{ClientID: 12345}
	r := h.do(ghost.Put(b("k"), b("v")))
	if r.Status != kv.StatusSessionExpired || r.ClientID != 12345 || r.Index != h.idx {
		t.Fatalf("unknown client: %+v", r)
	}
	if h.s.Len() != 0 {
		t.Fatal("unknown client's put applied")
	}
	// A session ID is an index: one that was not a register entry is
	// unknown even though it is a real index.
	r = h.do((&kv.Session{ClientID: uint64(h.idx)}).Get(b("k")))
	if r.Status != kv.StatusSessionExpired {
		t.Fatalf("non-register index as client: %+v", r)
	}
}

func TestEvictionAtMaxSessions(t *testing.T) {
	const max = 3
	h := newHarness(t, kv.Options{MaxSessions: max})
	var ss []*kv.Session
	for range max {
		ss = append(ss, h.register())
	}
	// Exactly MaxSessions fit.
	for _, s := range ss {
		h.want(h.do(s.Put(b("k"), b("v"))), kv.StatusOK, "")
	}
	if st := h.s.Stats(); st.Sessions != max || st.Evictions != 0 {
		t.Fatalf("after %d registrations: %+v", max, st)
	}
	// Activity now: ss[0] oldest, then ss[1], ss[2]. Touch ss[0] so ss[1]
	// becomes the least recently active.
	h.want(h.do(ss[0].Get(b("k"))), kv.StatusOK, "v")
	d := h.register()
	if st := h.s.Stats(); st.Sessions != max || st.Evictions != 1 {
		t.Fatalf("after the extra registration: %+v", st)
	}
	// The evicted client's commands, and retries of them, are refused.
	evicted := enc(ss[1].Put(b("k"), b("evicted")))
	for range 2 {
		r, _ := h.raw(evicted)
		h.want(r, kv.StatusSessionExpired, "")
	}
	if v, _ := h.s.Get(b("k")); string(v) != "v" {
		t.Fatalf("k = %q", v)
	}
	for _, s := range []*kv.Session{ss[0], ss[2], d} {
		h.want(h.do(s.Get(b("k"))), kv.StatusOK, "v")
	}
	// Without other activity, registrations evict in activity order:
	// ss[0] was touched before ss[2] and d in the loop above.
	h.register()
	h.want(h.do(ss[0].Get(b("k"))), kv.StatusSessionExpired, "")
	h.want(h.do(ss[2].Get(b("k"))), kv.StatusOK, "v")
}

func TestSessionTTL(t *testing.T) {
	const ttl = 3
	h := newHarness(t, kv.Options{SessionTTLEntries: ttl})
	idle := h.register()           // index 1
	busy := h.register()           // index 2
	h.do(busy.Put(b("k"), b("v"))) // index 3
	// Index 4: 4-1 = 3 is not > ttl, so idle is still live.
	h.want(h.do(busy.Get(b("k"))), kv.StatusOK, "v")
	if st := h.s.Stats(); st.Sessions != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Index 5: 5-1 = 4 > ttl, so idle expires before index 5 applies.
	h.want(h.do(idle.Get(b("k"))), kv.StatusSessionExpired, "")
	if st := h.s.Stats(); st.Sessions != 1 || st.Expirations != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Exactly ttl indexes of silence keep a session (gaps count as
	// distance); one more expires it.
	busyLast := h.idx - 1 // busy's Get at index 4
	h.idx = busyLast + ttl - 1
	h.want(h.do(busy.Get(b("k"))), kv.StatusOK, "v") // at busyLast+ttl
	h.idx += ttl                                     // next index: ttl+1 after busy's last
	h.want(h.do(busy.Get(b("k"))), kv.StatusSessionExpired, "")
	if st := h.s.Stats(); st.Sessions != 0 || st.Expirations != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBoundsAtTheEdge(t *testing.T) {
	opts := kv.Options{MaxKeyBytes: 4, MaxValueBytes: 8, MaxKeys: 3}
	h := newHarness(t, opts)
	c := h.register()
	h.want(h.do(c.Put(b("kkkk"), b("vvvvvvvv"))), kv.StatusOK, "")
	h.want(h.do(c.Put(b("kkkkk"), b("v"))), kv.StatusTooLarge, "")
	h.want(h.do(c.Put(b("k"), b("vvvvvvvvv"))), kv.StatusTooLarge, "")
	h.want(h.do(c.Get(b("kkkkk"))), kv.StatusTooLarge, "")
	h.want(h.do(c.Delete(b("kkkkk"))), kv.StatusTooLarge, "")
	h.want(h.do(c.CAS(b("kkkk"), b("vvvvvvvvv"), b("v"))), kv.StatusTooLarge, "")
	h.want(h.do(c.CAS(b("kkkk"), b("v"), b("vvvvvvvvv"))), kv.StatusTooLarge, "")
	h.want(h.do(c.Put(b("a"), nil)), kv.StatusOK, "")
	h.want(h.do(c.Put(b("b"), nil)), kv.StatusOK, "") // 3 keys: full
	h.want(h.do(c.Put(b("c"), nil)), kv.StatusFull, "")
	h.want(h.do(c.Put(b("a"), b("over"))), kv.StatusOK, "") // overwriting is fine
	h.want(h.do(c.Delete(b("b"))), kv.StatusOK, "")
	h.want(h.do(c.Put(b("c"), nil)), kv.StatusOK, "")
	if h.s.Len() != 3 {
		t.Fatalf("Len = %d", h.s.Len())
	}
	if v, _ := h.s.Get(b("kkkk")); string(v) != "vvvvvvvv" {
		t.Fatalf("kkkk = %q", v)
	}
	// A refused command's result is cached like any other.
	tooBig := enc(c.Put(b("kkkkk"), nil))
	r1, _ := h.raw(tooBig)
	r2, _ := h.raw(tooBig)
	if r1.Status != kv.StatusTooLarge || r2.Index != r1.Index {
		t.Fatalf("retry of TooLarge: %+v then %+v", r1, r2)
	}
}

func TestDefaults(t *testing.T) {
	got := kv.New(kv.Options{MaxKeys: -1}).Options()
	want := kv.Options{MaxSessions: kv.DefaultMaxSessions, MaxKeyBytes: kv.DefaultMaxKeyBytes,
		MaxValueBytes: kv.DefaultMaxValueBytes, MaxKeys: kv.DefaultMaxKeys}
	if got != want {
		t.Fatalf("Options() = %+v, want %+v", got, want)
	}
}

func TestBadCommand(t *testing.T) {
	h := newHarness(t, kv.Options{})
	c := h.register()
	h.do(c.Put(b("k"), b("v")))
	before := h.s.Stats()
	good := enc(c.Put(b("k"), b("w")))
	c.Seq-- // the bad variants below are never applied
	inputs := [][]byte{
		nil,
		{},
		{0},
		{99},
		{byte(kv.OpRegister), 0}, // trailing byte
		good[:len(good)-1],       // truncated
		append(append([]byte{}, good...), 0),
		{byte(kv.OpPut), 0x81, 0x00, 1, 0, 0},    // non-minimal varint
		{byte(kv.OpPut), 0, 1, 0, 0},             // client 0
		{byte(kv.OpGet), byte(c.ClientID), 0, 0}, // seq 0
		{byte(kv.OpGet), byte(c.ClientID), 9, 0xff, 0xff, 0xff}, // huge length
		b(strings.Repeat("\xff", 40)),
	}
	for i, in := range inputs {
		r, _ := h.raw(in)
		if r.Status != kv.StatusBadCommand || r.ClientID != 0 || r.Index != h.idx || len(r.Value) != 0 {
			t.Errorf("input %d (%x): %+v", i, in, r)
		}
	}
	after := h.s.Stats()
	before.Applied = after.Applied
	if before != after {
		t.Fatalf("stats changed: %+v -> %+v", before, after)
	}
	if v, _ := h.s.Get(b("k")); string(v) != "v" {
		t.Fatalf("k = %q", v)
	}
}

func TestIndexMustIncrease(t *testing.T) {
	s := kv.New(kv.Options{})
	var r kv.Result
	if err := kv.DecodeResult(s.Apply(0, enc(kv.Register())), &r); err != nil || r.Status != kv.StatusBadCommand {
		t.Fatalf("index 0: %+v %v", r, err)
	}
	kv.DecodeResult(s.Apply(5, enc(kv.Register())), &r)
	if r.Status != kv.StatusOK || r.ClientID != 5 {
		t.Fatalf("register at 5: %+v", r)
	}
	for _, idx := range []raft.Index{5, 4, 1} {
		kv.DecodeResult(s.Apply(idx, enc(kv.Register())), &r)
		if r.Status != kv.StatusBadCommand {
			t.Fatalf("index %d after 5: %+v", idx, r)
		}
	}
	if st := s.Stats(); st.Sessions != 1 || st.Applied != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestConcurrentReads runs the local read methods against Apply; run with
// -race.
func TestConcurrentReads(t *testing.T) {
	h := newHarness(t, kv.Options{})
	c := h.register()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			h.s.Get(b("k"))
			h.s.Len()
			h.s.Stats()
			h.s.Digest()
		}
	}()
	for i := range 500 {
		h.do(c.Put(b("k"), []byte{byte(i)}))
	}
	close(stop)
	wg.Wait()
}

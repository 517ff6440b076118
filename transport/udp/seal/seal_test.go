package seal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const cid = 7

func testKey(b byte) *Key {
	var k Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return &k
}

func TestSealOpen(t *testing.T) {
	k := testKey(1)
	s := NewSealer(k, cid)
	o := NewOrdered[int](k, cid)
	frame := []byte("a raft frame")
	d, err := s.Seal(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != len(frame)+Overhead || d[0] != Magic {
		t.Fatalf("sealed %d bytes: %x", len(d), d)
	}
	if bytes.Contains(d, frame) {
		t.Fatal("frame travels in clear")
	}
	got, err := o.Open([]byte("x"), 1, d)
	if err != nil || string(got) != "x"+string(frame) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// The same datagram again is a replay.
	if _, err := o.Open(nil, 1, d); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// But another sender key has its own window.
	if _, err := o.Open(nil, 2, d); err != nil {
		t.Fatalf("other sender: %v", err)
	}
}

func TestForgeries(t *testing.T) {
	k := testKey(1)
	s := NewSealer(k, cid)
	frame := []byte("heartbeat frame bytes")
	good, _ := s.Seal(nil, frame)
	other, _ := NewSealer(testKey(2), cid).Seal(nil, frame)
	foreign, _ := NewSealer(k, cid+1).Seal(nil, frame)
	cases := map[string]struct {
		d   []byte
		err error
	}{
		"empty":         {nil, ErrFormat},
		"clear frame":   {frame, ErrFormat},
		"short":         {good[:Overhead-1], ErrFormat},
		"other key":     {other, ErrAuth},
		"other cluster": {foreign, ErrAuth},
		"random":        {append([]byte{Magic}, bytes.Repeat([]byte{0x5a}, 60)...), ErrAuth},
	}
	for name, c := range cases {
		o := NewOrdered[int](k, cid)
		if _, err := o.Open(nil, 1, c.d); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", name, err, c.err)
		}
	}
	// Every single-bit flip is refused, and refusals change no state: the
	// genuine datagram still opens afterwards.
	o := NewOrdered[int](k, cid)
	for i := 0; i < len(good)*8; i++ {
		d := append([]byte(nil), good...)
		d[i/8] ^= 1 << (i % 8)
		if _, err := o.Open(nil, 1, d); err == nil {
			t.Fatalf("bit %d flipped: accepted", i)
		}
	}
	if _, err := o.Open(nil, 1, good); err != nil {
		t.Fatalf("genuine after forgeries: %v", err)
	}
}

func TestOrderedEpochs(t *testing.T) {
	k := testKey(1)
	now := time.Now()
	old := newSealer(k, cid, 100, 1, now)
	cur := newSealer(k, cid, 200, 2, now)
	o := NewOrdered[string](k, cid)
	dOld, _ := old.Seal(nil, []byte("old"))
	dCur, _ := cur.Seal(nil, []byte("cur"))
	dOld2, _ := old.Seal(nil, []byte("old2"))
	if _, err := o.Open(nil, "p", dOld); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open(nil, "p", dCur); err != nil {
		t.Fatal(err)
	}
	if o.Epoch("p") != 200 {
		t.Fatalf("epoch %d", o.Epoch("p"))
	}
	// The restarted sender's old epoch is refused from now on.
	if _, err := o.Open(nil, "p", dOld2); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("old epoch after newer: %v", err)
	}
	// Same epoch, other salt: stale too.
	twin := newSealer(k, cid, 200, 3, now)
	d, _ := twin.Seal(nil, []byte("twin"))
	if _, err := o.Open(nil, "p", d); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("twin: %v", err)
	}
	// A forged datagram claiming a newer epoch does not move the epoch.
	forged, _ := newSealer(testKey(9), cid, 300, 4, now).Seal(nil, []byte("forged"))
	if _, err := o.Open(nil, "p", forged); !errors.Is(err, ErrAuth) {
		t.Fatalf("forged newer epoch: %v", err)
	}
	if o.Epoch("p") != 200 {
		t.Fatalf("epoch moved to %d", o.Epoch("p"))
	}
}

func TestSessions(t *testing.T) {
	k := testKey(1)
	now := time.Now()
	s := NewSessions(k, cid, 2, time.Minute)
	s.now = func() time.Time { return now }
	a := newSealer(k, cid, uint64(now.UnixNano()), 1, now)
	b := newSealer(k, cid, uint64(now.UnixNano()), 2, now)
	c := newSealer(k, cid, uint64(now.UnixNano()), 3, now)
	a1, _ := a.Seal(nil, []byte("a1"))
	b1, _ := b.Seal(nil, []byte("b1"))
	c1, _ := c.Seal(nil, []byte("c1"))
	for _, d := range [][]byte{a1, b1} {
		if _, err := s.Open(nil, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Open(nil, a1); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// c evicts a, the least recently used instance.
	if _, err := s.Open(nil, c1); err != nil || s.Len() != 2 {
		t.Fatalf("c: %v, len %d", err, s.Len())
	}
	if _, err := s.Open(nil, b1); !errors.Is(err, ErrReplay) {
		t.Fatalf("b kept: %v", err)
	}
	// The documented residual: an evicted instance's datagram is accepted
	// once more (and then remembered again).
	if _, err := s.Open(nil, a1); err != nil {
		t.Fatalf("evicted a: %v", err)
	}
	if _, err := s.Open(nil, a1); !errors.Is(err, ErrReplay) {
		t.Fatalf("a again: %v", err)
	}
	// Too old an epoch is refused outright.
	stale := newSealer(k, cid, uint64(now.Add(-2*time.Minute).UnixNano()), 4, now)
	d, _ := stale.Seal(nil, []byte("stale"))
	if _, err := s.Open(nil, d); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale: %v", err)
	}
	if _, err := s.Open(nil, []byte("junk")); !errors.Is(err, ErrFormat) {
		t.Fatalf("junk: %v", err)
	}
}

// TestWindow compares the sliding window with a set of accepted counters.
func TestWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var w window
	seen := map[uint64]bool{}
	var top uint64
	for i := 0; i < 200000; i++ {
		var c uint64
		switch rng.IntN(4) {
		case 0:
			c = top + uint64(rng.IntN(3*WindowSize)) // jumps ahead, sometimes far
		default:
			c = top - uint64(rng.IntN(WindowSize+64)) // recent, sometimes out of the window
			if c > top {
				c = 0
			}
		}
		want := !seen[c] && (len(seen) == 0 || c > top || top-c < WindowSize)
		if got := w.fresh(c); got != want {
			t.Fatalf("step %d: fresh(%d) = %v, want %v (top %d)", i, c, got, want, top)
		}
		if want {
			w.accept(c)
			seen[c] = true
			if c > top {
				top = c
			}
		}
	}
}

func TestWindowShift(t *testing.T) {
	for _, n := range []uint64{1, 63, 64, 65, 127, 128, 500, WindowSize - 1, WindowSize, WindowSize + 1} {
		var w window
		w.accept(10)
		w.accept(10 + n)
		if w.fresh(10) { // seen, or too old to tell
			t.Errorf("shift %d: fresh(10) = %v", n, w.fresh(10))
		}
		if w.fresh(10 + n) {
			t.Errorf("shift %d: top fresh", n)
		}
		if n > 1 && !w.fresh(11) && n < WindowSize {
			t.Errorf("shift %d: 11 not fresh", n)
		}
	}
}

func TestKeys(t *testing.T) {
	k := NewKey()
	p, err := ParseKey(" " + k.String() + "\n")
	if err != nil || p != k {
		t.Fatalf("ParseKey: %v", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("00", 32), strings.Repeat("ab", 33)} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrKey) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "key")
	if err := os.WriteFile(f, []byte(k.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, warn, err := Load(f)
	if err != nil || *got != k || warn == "" {
		t.Fatalf("Load file: %v %q", err, warn)
	}
	_ = os.Chmod(f, 0o600)
	if _, warn, _ := Load(f); warn != "" {
		t.Fatalf("warn for 0600: %q", warn)
	}
	if _, _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, ErrKey) {
		t.Fatalf("missing: %v", err)
	}
	t.Setenv(EnvKey, k.String())
	if got, _, err := Load(""); err != nil || got == nil || *got != k {
		t.Fatalf("Load env: %v", err)
	}
	t.Setenv(EnvKey, "nothex")
	if _, _, err := Load(""); !errors.Is(err, ErrKey) {
		t.Fatalf("bad env: %v", err)
	}
	t.Setenv(EnvKey, "")
	if got, _, err := Load(""); got != nil || err != nil {
		t.Fatalf("no key: %v %v", got, err)
	}
}

func TestExhausted(t *testing.T) {
	s := NewSealer(testKey(1), cid)
	s.counter = ^uint64(0)
	if _, err := s.Seal(nil, []byte("x")); !errors.Is(err, ErrExhausted) {
		t.Fatal(err)
	}
}

func BenchmarkSealOpen(b *testing.B) {
	k := testKey(1)
	s := NewSealer(k, cid)
	o := NewOrdered[int](k, cid)
	frame := make([]byte, 1100)
	buf := make([]byte, 0, 1200)
	out := make([]byte, 0, 1200)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		d, _ := s.Seal(buf[:0], frame)
		if _, err := o.Open(out[:0], 1, d); err != nil {
			b.Fatal(err)
		}
	}
}

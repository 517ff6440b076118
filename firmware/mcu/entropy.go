package mcu

import (
	"crypto/rand"

	"github.com/embraft/embraft/firmware/semihost"
)

// InstallEntropy gives crypto/rand a Reader where it has none. TinyGo's
// crypto/rand has a Reader only on chips with a hardware RNG (nrf, stm32,
// sam, esp32c3...); elsewhere rand.Read panics "no rng", and package node
// draws each start's incarnation from it (node/node.go, randomIncarnation).
// On the emulated MPS2 the host's /dev/urandom is read through
// semihosting; failing that, a generator seeded from the host clock. It
// returns where the entropy comes from ("" if crypto/rand had a Reader).
func InstallEntropy() string {
	if rand.Reader != nil {
		return ""
	}
	if f, err := semihost.Open("/dev/urandom", semihost.ModeRead); err == nil {
		rand.Reader = &fileReader{f}
		return "host /dev/urandom via semihosting"
	}
	rand.Reader = &clockReader{x: uint64(semihost.Centiseconds())*0x9E3779B97F4A7C15 | 1}
	return "host clock (SYS_CLOCK) — not cryptographic"
}

type fileReader struct{ f *semihost.File }

func (r *fileReader) Read(b []byte) (int, error) {
	n, err := r.f.ReadAt(b, 0) // a character device: the offset is ignored
	if err == nil && n == 0 {
		err = semihost.ErrIO
	}
	return n, err
}

// clockReader is SplitMix64 over a clock-derived seed: unique enough for
// node incarnations, useless for cryptography.
type clockReader struct{ x uint64 }

func (r *clockReader) Read(b []byte) (int, error) {
	for i := range b {
		r.x += 0x9E3779B97F4A7C15
		z := r.x
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		b[i] = byte(z ^ z>>31)
	}
	return len(b), nil
}

package file_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/embraft/embraft/raft"
	"github.com/embraft/embraft/storage/file"
)

// BenchmarkFileAppend measures group commit: each op appends a batch of
// 128-byte entries and syncs it, as the runtime does once per Ready.
func BenchmarkFileAppend(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			s := mustOpen(b, b.TempDir(), file.Options{ClusterID: 1, NodeID: 1, MaxEntries: 1 << 30})
			defer mustClose(b, s)
			data := make([]byte, 128)
			ents := make([]raft.Entry, batch)
			next := raft.Index(1)
			b.SetBytes(int64(batch * len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for k := range ents {
					ents[k] = raft.Entry{Index: next, Term: 1, Data: data}
					next++
				}
				if err := s.Append(ents); err != nil {
					b.Fatal(err)
				}
				if err := s.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(b.N * batch)
			b.ReportMetric(n/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(s.Stats().Fsyncs)/n, "fsyncs/entry")
		})
	}
}

// BenchmarkFsync is the floor: one 4 KiB write and fsync on this machine.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(buf)))
	for i := range b.N {
		if _, err := f.WriteAt(buf, int64(i%1024)*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEntries reads entries back: from the tail cache and from files.
func BenchmarkEntries(b *testing.B) {
	for _, cache := range []int{0, -1} {
		name := map[int]string{0: "cache", -1: "file"}[cache]
		b.Run(name, func(b *testing.B) {
			s := mustOpen(b, b.TempDir(), file.Options{ClusterID: 1, NodeID: 1, CacheBytes: cache})
			defer mustClose(b, s)
			mustAppendSync(b, s, mkEnts(1, 1000, 1, 0))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				lo := raft.Index(1 + i%990)
				if _, err := s.Entries(lo, lo+8, 1024); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen measures recovery: open (validate every record, build the
// index) a log of 100k entries of 128 bytes, about 14 MB in 4 segments.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	o := file.Options{ClusterID: 1, NodeID: 1}
	s := mustOpen(b, dir, o)
	data := make([]byte, 128)
	for i := raft.Index(1); i <= 100000; i += 1000 {
		ents := make([]raft.Entry, 1000)
		for k := range ents {
			ents[k] = raft.Entry{Index: i + raft.Index(k), Term: 1, Data: data}
		}
		mustAppendSync(b, s, ents)
	}
	mustClose(b, s)
	b.ResetTimer()
	for range b.N {
		s := mustOpen(b, dir, o)
		b.StopTimer()
		mustClose(b, s)
		b.StartTimer()
	}
	b.ReportMetric(100000*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

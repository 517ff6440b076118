package file_test

import (
	"io"
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

// BenchmarkOpenWithSnapshot measures a restart after snapshots: a 1 MB
// snapshot at index 10000 (configuration: three voters) and a tail of 256 entries of 128 bytes after it,
// default options. In "tail", the segment holds only the tail (the log
// restarted at the snapshot, as after InstallSnapshot, or a segment that
// began at it); in "segment", the 10000 compacted entries (1.5 MB) share
// the tail's 4 MiB segment and Open still validates them. "open" is Open
// alone (SNAPSHOT's header and configuration, the segment); "read" adds reading the snapshot
// to the end through OpenSnapshot with its CRC check, as a restore does.
func BenchmarkOpenWithSnapshot(b *testing.B) {
	const snapAt, tail = 10000, 256
	o := file.Options{ClusterID: 1, NodeID: 1}
	dirs := map[string]string{"tail": b.TempDir(), "segment": b.TempDir()}
	s := mustOpen(b, dirs["tail"], o)
	meta := raft.SnapshotMeta{Index: snapAt, Term: 1, Conf: plainConf()}
	if err := s.InstallSnapshot(sendSnapshotConf(b, s, meta, snapData(1, 1<<20), 64<<10)); err != nil {
		b.Fatal(err)
	}
	benchAppend(b, s, snapAt+1, snapAt+tail)
	mustClose(b, s)
	s = mustOpen(b, dirs["segment"], o)
	benchAppend(b, s, 1, snapAt+tail)
	mustSnapshotConf(b, s, snapAt, plainConf(), snapData(1, 1<<20))
	if err := s.Compact(snapAt); err != nil {
		b.Fatal(err)
	}
	mustClose(b, s)
	for _, name := range []string{"tail", "segment"} {
		for _, read := range []bool{false, true} {
			b.Run(name+map[bool]string{false: "/open", true: "/open+read"}[read], func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					s := mustOpen(b, dirs[name], o)
					if read {
						readAll(b, s)
					}
					b.StopTimer()
					if f, _ := s.FirstIndex(); f != snapAt+1 {
						b.Fatalf("first index %d", f)
					}
					mustClose(b, s)
					b.StartTimer()
				}
			})
		}
	}
}

// benchAppend appends entries lo..hi of 128 bytes in batches of 64.
func benchAppend(b *testing.B, s *file.Storage, lo, hi raft.Index) {
	data := make([]byte, 128)
	for i := lo; i <= hi; i += 64 {
		ents := make([]raft.Entry, min(64, hi+1-i))
		for k := range ents {
			ents[k] = raft.Entry{Index: i + raft.Index(k), Term: 1, Data: data}
		}
		mustAppendSync(b, s, ents)
	}
}

func readAll(b *testing.B, s *file.Storage) {
	_, rc, err := s.OpenSnapshot()
	if err != nil {
		b.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, rc); err != nil || n != 1<<20 {
		b.Fatalf("read %d bytes: %v", n, err)
	}
	_ = rc.Close()
}

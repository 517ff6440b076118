package mcu

import (
	"strconv"
)

// Summary returns the closing lines of a run; the last one is
// "FIRMWARE OK: leader=L terms=T committed=N on all K nodes" or
// "FIRMWARE FAIL: reason" (what CI looks for).
func Summary(cfg Config, rep Report) []string {
	cfg.defaults()
	if !rep.OK {
		why := "unknown failure"
		if rep.Err != nil {
			why = rep.Err.Error()
		}
		return []string{"FIRMWARE FAIL: " + why}
	}
	var out []string
	out = append(out, "summary: "+itoa(rep.Committed)+" client commands committed ("+itoa(rep.CAS)+
		" compare-and-swaps, the rest puts), "+u64(rep.Retries)+" retried; exactly once: every node's "+
		"counters equal the clients' CAS counts; "+itoa(rep.Keys)+" keys in the store")
	out = append(out, "summary: every node applied index "+u64(uint64(rep.Index))+
		", kv digest "+hex64(rep.Digest)+"; first leader in term "+u64(uint64(rep.FirstLeaderTerm))+
		" ("+u64(uint64(rep.FirstLeaderTerm-rep.StartTerm))+" election term(s) after start), "+
		itoa(rep.Elections)+" leader election(s)")
	if rep.FailedLeader != 0 {
		out = append(out, "failover: Node "+u64(uint64(rep.FailedLeader))+" stopped as leader; Node "+
			u64(uint64(rep.NewLeader))+" elected "+strconv.FormatInt(rep.Reelection.Milliseconds(), 10)+
			" ms later (runtime clock); Node "+u64(uint64(rep.FailedLeader))+" restarted from its storage and caught up")
	}
	if rep.CommitCentis > 0 {
		rate := int64(rep.Committed) * 100 / rep.CommitCentis
		out = append(out, "timing: "+itoa(rep.Committed)+" commands in "+centis(rep.CommitCentis)+
			" s of host time = "+strconv.FormatInt(rate, 10)+" commands/s")
	}
	if rep.HeapSamples > 0 {
		out = append(out, "memory: live heap after GC at most "+kib(rep.LiveHeapPeak)+" ("+
			itoa(rep.HeapSamples)+" samples) of a "+kib(rep.HeapSize)+" heap; "+kib(rep.TotalAlloc)+
			" allocated in "+u64(rep.Mallocs)+" allocations")
	}
	out = append(out, "FIRMWARE OK: leader="+u64(uint64(rep.Leader))+" terms="+u64(uint64(rep.Term))+
		" committed="+itoa(rep.Committed)+" on all "+itoa(cfg.Nodes)+" nodes")
	return out
}

func centis(c int64) string {
	return strconv.FormatInt(c/100, 10) + "." + string(rune('0'+c/10%10)) + string(rune('0'+c%10))
}

func kib(b uint64) string { return u64((b+512)/1024) + " KiB" }

func hex64(v uint64) string {
	s := strconv.FormatUint(v, 16)
	return "0x" + "0000000000000000"[len(s):] + s
}

package sim

import (
	"errors"
	"testing"
)

// FuzzCluster drives a short simulation whose crash, restart, partition
// and clock-skew schedule comes from the script bytes (one action every
// few steps, see the Action constants); message faults stay random. Any
// violation — safety, linearizability or liveness once the script's faults
// heal — fails the target. Run it with
//
//	go test -run XXX -fuzz FuzzCluster ./sim/
//
// and replay a finding with the CLI line its violation prints.
func FuzzCluster(f *testing.F) {
	f.Add(uint64(1), []byte{})
	f.Add(uint64(2), []byte{ActionCrash, ActionCrash | 1<<3, ActionRestart, ActionRestart | 1<<3})
	f.Add(uint64(3), []byte{ActionIsolateLeader, ActionHeal, ActionIsolateLeader, ActionHeal, ActionBridge, ActionHeal})
	f.Fuzz(func(t *testing.T, seed uint64, script []byte) {
		if len(script) > 256 {
			script = script[:256]
		}
		cfg := Config{Seed: seed, Steps: 1500, Script: script, ScriptEvery: 10}
		if len(script) == 0 {
			cfg.Script = []byte{ActionSkew} // still scripted: no random crashes
		}
		_, err := Run(cfg)
		var v *Violation
		if errors.As(err, &v) {
			t.Fatal(v)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
}

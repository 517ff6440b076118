#!/usr/bin/env bash
# firmware-check.sh — build the TinyGo firmware for the emulated Cortex-M4
# (QEMU mps2-an386), run it, and fail unless it ends cleanly. Run from
# anywhere after scripts/tinygo-setup.sh; see docs/EMBEDDED.md.
#
#   scripts/firmware-check.sh            the firmware runs (memory, semihosting x2, host check)
#   scripts/firmware-check.sh --tests    also `tinygo test` of raft and wire on the emulator
#
# Environment: EMBRAFT_FW_COMMANDS (default 200) commands per run;
# EMBRAFT_FW_TIMEOUT (default 120) seconds allowed per QEMU run;
# EMBRAFT_FW_OUT (default $TMPDIR/embraft-firmware) where images, logs and data go.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TG="$ROOT/scripts/tinygo.sh"
TARGET=firmware/targets/mps2-an386.json
QEMU="$ROOT/firmware/targets/qemu-mps2-an386.sh"
N=${EMBRAFT_FW_COMMANDS:-200}
TIMEOUT=${EMBRAFT_FW_TIMEOUT:-120}
OUT=${EMBRAFT_FW_OUT:-${TMPDIR:-/tmp}/embraft-firmware}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
t0=$(date +%s)
stamp() { echo "[firmware-check $(($(date +%s) - t0))s] $*"; }

# The final line a good run prints: a leader, N commands on all 5 nodes.
OK_RE="^FIRMWARE OK: leader=[1-5] terms=[0-9]+ committed=$N on all 5 nodes\$"

run_fw() { # run_fw NAME ELF [qemu -append words]
  local name=$1 elf=$2 args=${3:-}
  stamp "run $name: $(basename "$elf") commands=$N $args"
  local rc=0
  (cd "$OUT" && timeout "$TIMEOUT" bash "$QEMU" "$elf" -append "commands=$N $args") >"$OUT/$name.log" 2>&1 || rc=$?
  grep -E '^(Leader elected|FAILOVER|RESTART|Resumed|summary|failover|timing|memory|FIRMWARE)' "$OUT/$name.log" || true
  if [ $rc -ne 0 ] || ! grep -qE "$OK_RE" "$OUT/$name.log"; then
    stamp "FAIL: $name (exit $rc; 124 = timeout); last lines of $OUT/$name.log:"
    tail -n 30 "$OUT/$name.log"
    exit 1
  fi
}

stamp "build (tinygo $("$TG" version | awk '{print $3}'), target $TARGET)"
"$TG" build -target="$TARGET" -o "$OUT/firmware.elf" ./firmware
"$TG" build -target="$TARGET" -tags embraft_semihosting -o "$OUT/firmware-semihosting.elf" ./firmware
llvm-size-19 "$OUT/firmware.elf" "$OUT/firmware-semihosting.elf"

run_fw memory "$OUT/firmware.elf"

rm -rf "$OUT/data"
mkdir -p "$OUT"/data/node-{1,2,3,4,5}
run_fw semihosting-1 "$OUT/firmware-semihosting.elf" "data=data"
if grep -q '^Resumed from persisted state' "$OUT/semihosting-1.log"; then
  stamp "FAIL: the first semihosting run claims to resume"; exit 1
fi
run_fw semihosting-2 "$OUT/firmware-semihosting.elf" "data=data"
grep -qE '^Resumed from persisted state: term [1-9][0-9]*, last index [1-9][0-9]*' "$OUT/semihosting-2.log" ||
  { stamp "FAIL: the second semihosting run did not resume"; exit 1; }
stamp "host check: storage/file opens the firmware's directories"
(cd "$ROOT" && GOTOOLCHAIN=local go run ./firmware/mcucheck "$OUT/data")

if [ "${1:-}" = --tests ]; then
  # What does not run on the emulator: tests that read files (testdata,
  # source for the import fence); see docs/EMBEDDED.md.
  stamp "tinygo test ./wire/ on mps2-an386"
  timeout 600 "$TG" test -target="$TARGET" -skip 'TestImportFence|TestGolden|TestClientGolden' ./wire/
  # raft's tests outgrew the 4 MiB board's heap (docs/EMBEDDED.md): they
  # run on the same board with its 16 MiB PSRAM as RAM.
  stamp "tinygo test ./raft/ on mps2-an386 (16 MiB PSRAM as RAM)"
  timeout 600 "$TG" test -target=firmware/targets/mps2-an386-psram.json -skip "$(cat "$ROOT/firmware/targets/raft-tinygo-skip.txt")" ./raft/
fi
stamp "firmware checks passed"

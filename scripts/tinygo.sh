#!/usr/bin/env bash
# tinygo.sh — run the TinyGo assembled by scripts/tinygo-setup.sh with the
# environment it needs: TINYGOROOT, GOTOOLCHAIN (TinyGo 0.39 compiles against
# Go 1.19-1.25; the go command fetches that toolchain through the module proxy).
#   scripts/tinygo.sh build -target=firmware/targets/mps2-an386.json ...
set -euo pipefail
ROOT=${EMBRAFT_TINYGOROOT:-/opt/embraft-tinygo}
if [ ! -x "$ROOT/build/tinygo" ]; then
  echo "tinygo.sh: $ROOT/build/tinygo not found; run scripts/tinygo-setup.sh (as root) first" >&2
  exit 127
fi
export TINYGOROOT=$ROOT
export GOTOOLCHAIN=${EMBRAFT_TINYGO_GO:-go1.25.14}
exec "$ROOT/build/tinygo" "$@"

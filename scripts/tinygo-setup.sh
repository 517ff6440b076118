#!/usr/bin/env bash
# tinygo-setup.sh — assemble a TinyGo 0.39.0 toolchain for bare-metal Cortex-M
# (and QEMU to run it) from Debian's packages and the Go module proxy only.
# See docs/EMBEDDED.md and /work/shared/design/TINYGO-NOTES.md.
#
# Run as root on Debian 12. Idempotent: every step leaves a marker under
# $EMBRAFT_TINYGOROOT/.embraft-setup/ and is skipped when its marker is there,
# so a second run is a no-op (a few dpkg queries). Exits non-zero on failure.
#
# Environment (all optional):
#   EMBRAFT_TINYGOROOT   where TinyGo is assembled (default /opt/embraft-tinygo);
#                        the compiler is $EMBRAFT_TINYGOROOT/build/tinygo
#   EMBRAFT_TINYGO_GO    Go toolchain TinyGo compiles against (default go1.25.14;
#                        TinyGo 0.39 accepts go1.19 .. go1.25)
#   EMBRAFT_SKIP_APT=1   do not touch apt (the packages must be installed)
#
# Use the result through scripts/tinygo.sh, which sets TINYGOROOT, GOTOOLCHAIN
# and PATH for it.
set -euo pipefail

TINYGO_VERSION=v0.39.0
ROOT=${EMBRAFT_TINYGOROOT:-/opt/embraft-tinygo}
GO_FOR_TINYGO=${EMBRAFT_TINYGO_GO:-go1.25.14}
LLVM=19
APT_PACKAGES=(llvm-$LLVM-dev libclang-$LLVM-dev clang-$LLVM lld-$LLVM qemu-system-arm)
PICOLIBC_TARBALL=picolibc_1.8.10.orig.tar.gz
PICOLIBC_SHA256=d1fc2a20f217472f8d9da084a519a25678e8d91852a41c7f3f1840d3508f7163
SRC_LIST=/etc/apt/sources.list.d/embraft-tinygo-src.sources
MARK=$ROOT/.embraft-setup

t0=$(date +%s)
step=start
log() { printf '[tinygo-setup %3ss] %s\n' "$(($(date +%s) - t0))" "$*"; }
die() { log "FAILED: $*"; exit 1; }
trap 'rc=$?; if [ $rc -ne 0 ]; then log "FAILED in step \"$step\" (exit $rc)"; fi' EXIT

[ "$(id -u)" = 0 ] || die "run as root (apt-get install, $ROOT)"
command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$MARK"
done_mark() { [ -f "$MARK/$1" ]; }
set_mark() { date -u +%FT%TZ >"$MARK/$1"; }

# ---------------------------------------------------------------- apt sources
# The Debian mirror and suite this machine already uses, from its apt sources
# (deb822 *.sources and one-line *.list files): the first "deb" entry for the
# release's codename. Nothing is hard-coded: a deb-src entry and the picolibc
# download both use this mirror.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "cannot read VERSION_CODENAME from /etc/os-release"

find_mirror() {
  local f
  # deb822 stanzas: Types / URIs / Suites / Signed-By / Enabled.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$SRC_LIST" ] && continue
    awk -v cn="$codename" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "") {
          n = split(suites, s, " ")
          for (i = 1; i <= n; i++) if (s[i] == cn) { split(uris, u, " "); print u[1] "\t" signed; found = 1; exit }
        }
        types = ""; uris = ""; suites = ""; signed = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
        if (key == "types") types = val; else if (key == "uris") uris = val
        else if (key == "suites") suites = val; else if (key == "signed-by") signed = val
        else if (key == "enabled") enabled = tolower(val)
      }
      END { if (!found) flush() }' "$f" | head -n1 | grep . && return 0
  done
  # One-line format: deb [options] URI suite component...
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v cn="$codename" '
      $1 == "deb" {
        i = 2; opts = ""
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
        if ($(i + 1) == cn) {
          signed = ""
          if (match(opts, /signed-by=[^] ]*/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
          print $i "\t" signed; exit
        }
      }' "$f" | head -n1 | grep . && return 0
  done
  return 1
}

step="find the Debian mirror"
mirror_line=$(find_mirror) || die "no 'deb' entry for $codename in /etc/apt/sources.list{,.d/*.sources,.d/*.list}"
MIRROR=${mirror_line%%$'\t'*}
MIRROR=${MIRROR%/}
SIGNED_BY=${mirror_line#*$'\t'}

apt_updated=0
apt_update() {
  if [ $apt_updated = 0 ]; then
    log "apt-get update"
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
}

if [ "${EMBRAFT_SKIP_APT:-0}" != 1 ]; then
  step="deb-src entry"
  want_src="Types: deb-src
URIs: $MIRROR
Suites: $codename
Components: main${SIGNED_BY:+
Signed-By: $SIGNED_BY}"
  if [ ! -f "$SRC_LIST" ] || [ "$(cat "$SRC_LIST")" != "$want_src" ]; then
    log "adding deb-src for $MIRROR $codename main ($SRC_LIST)"
    printf '%s\n' "$want_src" >"$SRC_LIST"
    rm -f "$MARK/apt-src-index"
  fi

  step="apt packages"
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update
    set_mark apt-src-index
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
for tool in clang-$LLVM ld.lld-$LLVM llvm-config-$LLVM qemu-system-arm; do
  command -v "$tool" >/dev/null || die "$tool not found (install ${APT_PACKAGES[*]})"
done

# ------------------------------------------------------------ TinyGo source
step="TinyGo $TINYGO_VERSION source"
if ! done_mark "source-$TINYGO_VERSION"; then
  log "go mod download github.com/tinygo-org/tinygo@$TINYGO_VERSION"
  tmpmod=$(mktemp -d)
  dir=$(cd "$tmpmod" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "github.com/tinygo-org/tinygo@$TINYGO_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$tmpmod"
  [ -n "$dir" ] && [ -f "$dir/main.go" ] || die "module download gave no directory"
  log "copying $dir to $ROOT"
  # Keep the markers, replace everything else.
  find "$ROOT" -mindepth 1 -maxdepth 1 ! -name .embraft-setup -exec rm -rf {} +
  cp -a "$dir/." "$ROOT/"
  chmod -R u+w "$ROOT"
  rm -f "$MARK"/build-* "$MARK"/lib-* "$MARK/complete"
  set_mark "source-$TINYGO_VERSION"
fi

# ----------------------------------------- downloads that can run in parallel
# The Go toolchain for TinyGo, compiler-rt's builtins (from Debian's LLVM
# source package) and picolibc download and unpack while TinyGo compiles.
fetch_go() {
  log "fetching $GO_FOR_TINYGO through the module proxy (GOTOOLCHAIN)"
  v=$(cd / && GOTOOLCHAIN=$GO_FOR_TINYGO go env GOVERSION)
  [ "$v" = "$GO_FOR_TINYGO" ] || die "GOTOOLCHAIN=$GO_FOR_TINYGO go env GOVERSION printed '$v'"
  set_mark "go-$GO_FOR_TINYGO"
}

fetch_compiler_rt() {
  dl=$(mktemp -d /var/tmp/embraft-llvm-src.XXXXXX)
  log "apt-get source --download-only llvm-toolchain-$LLVM (~164 MB)"
  (cd "$dl" && apt-get source -qq --download-only "llvm-toolchain-$LLVM" >/dev/null 2>"$dl/apt.err") ||
    { cat "$dl/apt.err" >&2; die "apt-get source llvm-toolchain-$LLVM"; }
  orig=$(ls "$dl"/llvm-toolchain-"$LLVM"_*.orig.tar.* 2>/dev/null | grep -v -- '-[a-z]*\.tar' | head -n1 || true)
  [ -n "$orig" ] || orig=$(ls "$dl"/llvm-toolchain-"$LLVM"_*.orig.tar.* | head -n1)
  log "extracting compiler-rt/lib/builtins from $(basename "$orig")"
  rm -rf "$ROOT/lib/compiler-rt-builtins" "$dl/x"
  mkdir -p "$dl/x"
  tar -xf "$orig" -C "$dl/x" --wildcards '*/compiler-rt/lib/builtins/*'
  src=$(find "$dl/x" -type d -path '*/compiler-rt/lib/builtins' | head -n1)
  [ -n "$src" ] && [ -f "$src/udivsi3.c" ] || die "compiler-rt/lib/builtins not found in $orig"
  mv "$src" "$ROOT/lib/compiler-rt-builtins"
  rm -rf "$dl"
  set_mark "lib-compiler-rt"
}

fetch_picolibc() {
  url="$MIRROR/pool/main/p/picolibc/$PICOLIBC_TARBALL"
  dl=$(mktemp -d /var/tmp/embraft-picolibc.XXXXXX)
  log "downloading $url"
  curl -fsSL --retry 3 -o "$dl/$PICOLIBC_TARBALL" "$url" || die "download $url"
  echo "$PICOLIBC_SHA256  $dl/$PICOLIBC_TARBALL" | sha256sum -c --quiet - || die "sha256 mismatch for $PICOLIBC_TARBALL"
  P=$ROOT/lib/picolibc
  rm -rf "$P"
  mkdir -p "$P"
  tar -xzf "$dl/$PICOLIBC_TARBALL" -C "$P" --strip-components=1
  rm -rf "$dl"
  # TinyGo 0.39 pins picolibc 1.7.9; five shims make 1.8.10 build with its
  # file list (TINYGO-NOTES.md).
  N=$P/newlib
  [ -f "$N/libc/tinystdio/vffprintf.c" ] && [ -f "$N/libc/tinystdio/vffscanf.c" ] || die "unexpected picolibc layout"
  echo '#include "vffprintf.c"' >"$N/libc/tinystdio/vfprintff.c"
  echo '#include "vffscanf.c"' >"$N/libc/tinystdio/vfscanff.c"
  for f in libc/string/u_strerr.c libm/common/sf_isinff.c libm/common/sf_isnanf.c \
    libm/common/s_isinfd.c libm/common/s_isnand.c; do
    : >"$N/$f"
  done
  ln -sfn ../locale/locale_private.h "$N/libc/tinystdio/locale_private.h"
  cat >"$N/libc/tinystdio/picolibc.h" <<'EOF'
/* Written by embraft's scripts/tinygo-setup.sh: the configuration header
 * picolibc's meson build would generate, for TinyGo's file list. */
#ifndef _PICOLIBC_H_
#define _PICOLIBC_H_
#define __PICOLIBC__ 1
#define __PICOLIBC_MINOR__ 8
#define __PICOLIBC_PATCHLEVEL__ 10
#define __PICOLIBC_VERSION__ "1.8.10"
#define __TINY_STDIO 1
#define __IO_DEFAULT 'i'
#define __IO_C99_FORMATS 1
#define __IEEE_LIBM 1
#define __PICO_EXIT 1
#endif
EOF
  set_mark "lib-picolibc"
}

jobs_dir=$(mktemp -d)
job_pids=()
job_names=()
start_job() { # start_job MARK FUNCTION
  done_mark "$1" && return 0
  ( set -euo pipefail; trap - EXIT; "$2" ) >"$jobs_dir/$2.log" 2>&1 &
  job_pids+=($!)
  job_names+=("$2")
}
wait_jobs() {
  local i failed=0
  for i in "${!job_pids[@]}"; do
    if ! wait "${job_pids[$i]}"; then
      echo "---- ${job_names[$i]} failed:" >&2
      cat "$jobs_dir/${job_names[$i]}.log" >&2
      failed=1
    else
      grep -v '^go: downloading' "$jobs_dir/${job_names[$i]}.log" || true
    fi
  done
  rm -rf "$jobs_dir"
  [ $failed = 0 ] || die "a download step failed"
}

step="downloads"
[ "${EMBRAFT_SKIP_APT:-0}" != 1 ] || done_mark lib-compiler-rt || die "lib/compiler-rt-builtins missing and EMBRAFT_SKIP_APT=1"
if ! done_mark lib-compiler-rt && ! done_mark apt-src-index; then
  apt_update # the deb-src index, before the job needs it
  set_mark apt-src-index
fi
start_job "go-$GO_FOR_TINYGO" fetch_go
start_job lib-compiler-rt fetch_compiler_rt
start_job lib-picolibc fetch_picolibc

# ------------------------------------------------------------- TinyGo binary
step="build TinyGo"
if ! done_mark "build-$TINYGO_VERSION" || [ ! -x "$ROOT/build/tinygo" ]; then
  log "go build -tags llvm$LLVM -o build/tinygo . (in $ROOT)"
  (cd "$ROOT" && GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=1 go build -tags "llvm$LLVM" -o build/tinygo .)
  set_mark "build-$TINYGO_VERSION"
fi

step="downloads"
wait_jobs

# ------------------------------------------------ src/net (a git submodule)
step="src/net"
mkdir -p "$ROOT/src/net"

# -------------------------------------------------------------- smoke test
# Build (and, with the project's target, run on QEMU) a hello world: this
# checks the toolchain end to end and fills TinyGo's cache with compiler-rt
# and picolibc for the target, so later builds do not pay for them.
step="smoke test"
export TINYGOROOT=$ROOT GOTOOLCHAIN=$GO_FOR_TINYGO
REPO=$(cd "$(dirname "$0")/.." && pwd)
if ! done_mark complete; then
  sm=$(mktemp -d)
  printf 'package main\n\nfunc main() { println("tinygo ok") }\n' >"$sm/main.go"
  printf 'module smoke\n\ngo 1.22\n' >"$sm/go.mod"
  if [ -f "$REPO/firmware/targets/mps2-an386.json" ]; then
    log "smoke test: tinygo run -target=firmware/targets/mps2-an386.json (Cortex-M4 on QEMU mps2-an386)"
    mkdir -p "$sm/firmware" && ln -s "$REPO/firmware/targets" "$sm/firmware/targets"
    out=$(cd "$sm" && timeout 300 "$ROOT/build/tinygo" run -target=firmware/targets/mps2-an386.json . | tr -d "\r") ||
      die "tinygo run on mps2-an386 failed: $out"
    [ "$out" = "tinygo ok" ] || die "smoke test printed '$out', want 'tinygo ok'"
  else
    log "smoke test: tinygo build -target=cortex-m-qemu"
    (cd "$sm" && "$ROOT/build/tinygo" build -target=cortex-m-qemu -o "$sm/smoke.elf" .) || die "tinygo build failed"
  fi
  rm -rf "$sm"
  set_mark complete
fi

ver=$("$ROOT/build/tinygo" version) || die "tinygo version failed"
log "ok: $ver"
echo "tinygo: $ROOT/build/tinygo"
echo "TINYGOROOT=$ROOT GOTOOLCHAIN=$GO_FOR_TINYGO (scripts/tinygo.sh sets both)"

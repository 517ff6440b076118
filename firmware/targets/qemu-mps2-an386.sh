#!/usr/bin/env bash
# qemu-mps2-an386.sh ELF [QEMU args...] — run a program built for
# firmware/targets/mps2-an386.json on QEMU's Arm MPS2 AN386 (Cortex-M4) and
# exit with the program's status (semihosting SYS_EXIT: 0, or 1 on failure).
#
# Two output channels reach the host's stdout:
#  - the semihosting console (the firmware's own output, package semihost);
#  - TinyGo's runtime output (println, panic messages, `tinygo test`'s
#    report). TinyGo's QEMU runtime writes those bytes to 0x4000C000, the
#    LM3S6965's UART, which is an unimplemented device on mps2-an386; QEMU
#    logs every such write with -d unimp, and this script turns the log back
#    into characters. Any other QEMU diagnostics go to stderr.
# It is the "emulator" of the target, so `tinygo run|test` use it too.
set -uo pipefail
elf=${1:?usage: qemu-mps2-an386.sh ELF [QEMU args...]}
shift
exec 3>&1
qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native -kernel "$elf" -d unimp -D /dev/stderr "$@" 2>&1 1>&3 3>&- |
  perl -ne 'BEGIN { $| = 1 }
    if (/unimplemented device write \(size \d+, offset 0xc000, value 0x([0-9a-f]+)\)/) { print chr(hex($1)) }
    elsif (!/unimplemented device/) { print STDERR $_ }'
exit "${PIPESTATUS[0]}"

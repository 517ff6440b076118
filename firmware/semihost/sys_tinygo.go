//go:build tinygo && cortexm

package semihost

import (
	"device/arm"
	"unsafe"
)

var consoleHandle = -1

func call(op int, args unsafe.Pointer) int {
	return arm.SemihostingCall(op, uintptr(args))
}

func errno() int { return arm.SemihostingCall(arm.SemihostingErrno, 0) }

// cstring returns name as a NUL-terminated byte array.
func cstring(name string) []byte {
	b := make([]byte, len(name)+1)
	copy(b, name)
	return b
}

func sysOpen(name string, mode int) (int, int) {
	c := cstring(name)
	args := [3]uintptr{uintptr(unsafe.Pointer(&c[0])), uintptr(mode), uintptr(len(name))}
	h := call(arm.SemihostingOpen, unsafe.Pointer(&args))
	if h < 0 {
		return -1, errno()
	}
	return h, 0
}

func sysClose(h int) int {
	args := [1]uintptr{uintptr(h)}
	if call(arm.SemihostingClose, unsafe.Pointer(&args)) != 0 {
		return errno()
	}
	return 0
}

func sysSeek(h int, off int64) int {
	args := [2]uintptr{uintptr(h), uintptr(off)}
	if off < 0 || off > 1<<31-1 || call(arm.SemihostingSeek, unsafe.Pointer(&args)) != 0 {
		return errno() | 1<<16
	}
	return 0
}

// sysWrite returns 0 or an errno; SYS_WRITE answers the bytes NOT written.
func sysWrite(h int, b []byte) int {
	args := [3]uintptr{uintptr(h), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))}
	if call(arm.SemihostingWrite, unsafe.Pointer(&args)) != 0 {
		return errno() | 1<<16
	}
	return 0
}

func sysRead(h int, b []byte) (int, int) {
	if len(b) == 0 {
		return 0, 0
	}
	args := [3]uintptr{uintptr(h), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))}
	left := call(arm.SemihostingRead, unsafe.Pointer(&args))
	if left < 0 || left > len(b) {
		return 0, errno() | 1<<16
	}
	return len(b) - left, 0
}

func sysFlen(h int) (int64, int) {
	args := [1]uintptr{uintptr(h)}
	n := call(arm.SemihostingFileLen, unsafe.Pointer(&args))
	if n < 0 {
		return -1, errno()
	}
	return int64(n), 0
}

func sysRemove(name string) int {
	c := cstring(name)
	args := [2]uintptr{uintptr(unsafe.Pointer(&c[0])), uintptr(len(name))}
	if call(arm.SemihostingRemove, unsafe.Pointer(&args)) != 0 {
		return errno() | 1<<16
	}
	return 0
}

func sysRename(oldName, newName string) int {
	o, n := cstring(oldName), cstring(newName)
	args := [4]uintptr{uintptr(unsafe.Pointer(&o[0])), uintptr(len(oldName)),
		uintptr(unsafe.Pointer(&n[0])), uintptr(len(newName))}
	if call(arm.SemihostingRename, unsafe.Pointer(&args)) != 0 {
		return errno() | 1<<16
	}
	return 0
}

func consoleWrite(b []byte) {
	if len(b) == 0 {
		return
	}
	if consoleHandle < 0 {
		h, _ := sysOpen(semihostTTYName, modeConsoleOut)
		if h < 0 {
			return
		}
		consoleHandle = h
	}
	sysWrite(consoleHandle, b)
}

func sysClock() int64 { return int64(call(arm.SemihostingClock, nil)) }

func sysCmdline() string {
	buf := make([]byte, 512)
	args := [2]uintptr{uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf))}
	if call(arm.SemihostingGetCmdline, unsafe.Pointer(&args)) != 0 {
		return ""
	}
	n := int(args[1])
	if n > len(buf) {
		n = len(buf)
	}
	for i := 0; i < n; i++ {
		if buf[i] == 0 {
			n = i
			break
		}
	}
	return string(buf[:n])
}

func sysExit(code int) {
	reason := uintptr(arm.SemihostingApplicationExit)
	if code != 0 {
		reason = arm.SemihostingRunTimeErrorUnknown
	}
	arm.SemihostingCall(arm.SemihostingReportException, reason)
	for {
		arm.Asm("wfi")
	}
}

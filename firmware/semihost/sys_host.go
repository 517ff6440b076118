//go:build !(tinygo && cortexm)

package semihost

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The host implementation: the same calls on package os, so that the
// firmware's logic runs under `go test`. Handles are small integers as on
// a semihosting host.

var (
	mu      sync.Mutex
	files   = map[int]*os.File{}
	nextH   = 3
	started = time.Now()
)

func hostErrno(err error) int {
	var e syscall.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return 5 // EIO
}

func sysOpen(name string, mode int) (int, int) {
	var flag int
	switch mode {
	case 0, 1:
		flag = os.O_RDONLY
	case 2, 3:
		flag = os.O_RDWR
	case 4, 5:
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	case 6, 7:
		flag = os.O_RDWR | os.O_CREATE | os.O_TRUNC
	case 8, 9:
		flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	default:
		flag = os.O_RDWR | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		return -1, hostErrno(err)
	}
	mu.Lock()
	defer mu.Unlock()
	h := nextH
	nextH++
	files[h] = f
	return h, 0
}

func file(h int) *os.File {
	mu.Lock()
	defer mu.Unlock()
	return files[h]
}

func sysClose(h int) int {
	mu.Lock()
	f := files[h]
	delete(files, h)
	mu.Unlock()
	if f == nil {
		return 9 // EBADF
	}
	if err := f.Close(); err != nil {
		return hostErrno(err)
	}
	return 0
}

func sysSeek(h int, off int64) int {
	f := file(h)
	if f == nil {
		return 9
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return hostErrno(err)
	}
	return 0
}

func sysWrite(h int, b []byte) int {
	f := file(h)
	if f == nil {
		return 9
	}
	if _, err := f.Write(b); err != nil {
		return hostErrno(err)
	}
	return 0
}

func sysRead(h int, b []byte) (int, int) {
	f := file(h)
	if f == nil {
		return 0, 9
	}
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return 0, hostErrno(err)
	}
	return n, 0
}

func sysFlen(h int) (int64, int) {
	f := file(h)
	if f == nil {
		return -1, 9
	}
	st, err := f.Stat()
	if err != nil {
		return -1, hostErrno(err)
	}
	return st.Size(), 0
}

func sysRemove(name string) int {
	if err := os.Remove(name); err != nil {
		return hostErrno(err)
	}
	return 0
}

func sysRename(oldName, newName string) int {
	if err := os.Rename(oldName, newName); err != nil {
		return hostErrno(err)
	}
	return 0
}

// ConsoleOutput is where the console writes on the host (tests capture it).
var ConsoleOutput io.Writer = os.Stdout

func consoleWrite(b []byte) { _, _ = ConsoleOutput.Write(b) }

func sysClock() int64 { return int64(time.Since(started) / (10 * time.Millisecond)) }

func sysCmdline() string { return strings.Join(os.Args, " ") }

func sysExit(code int) { os.Exit(code) }

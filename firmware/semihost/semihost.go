// Package semihost is the firmware's only door to the outside world: Arm
// semihosting, which QEMU (-semihosting-config enable=on,target=native)
// serves from the host: a console, files, a clock, the command line and
// the exit status.
//
// Under TinyGo on Cortex-M every function is a BKPT 0xAB call
// (device/arm.SemihostingCall). Under the host's Go the same API is
// implemented with package os, so the firmware's logic runs, and is
// tested, with `go test` on the host as well.
//
// Semihosting has no fsync and no truncate: a write returns when QEMU's
// write(2) to the host file has returned, so it survives the emulator being
// killed but not the host losing power; files are shortened by copying a
// prefix to a new file and renaming it over the old one.
package semihost

import "errors"

// Open modes (the ISO C fopen modes, as semihosting numbers them).
const (
	ModeRead        = 1 // "rb": read an existing file
	ModeReadWrite   = 3 // "r+b": read and write an existing file, no truncation
	ModeWrite       = 5 // "wb": create or truncate, write only
	ModeCreateRW    = 7 // "w+b": create or truncate, read and write
	ModeAppend      = 9 // "ab": create if needed, every write appends
	modeConsoleOut  = 4 // ":tt" opened for writing is the console's stdout
	semihostTTYName = ":tt"
)

// ErrIO is returned (wrapped in an *Error) by every failed file call.
var ErrIO = errors.New("semihosting I/O error")

// Error describes a failed semihosting call: the operation, the file
// name if any, and the host's errno (SYS_ERRNO).
type Error struct {
	Op    string
	Name  string
	Errno int
}

func (e *Error) Error() string {
	s := "semihost: " + e.Op
	if e.Name != "" {
		s += " " + e.Name
	}
	return s + ": host errno " + itoa(e.Errno)
}

// Unwrap makes errors.Is(err, ErrIO) true.
func (e *Error) Unwrap() error { return ErrIO }

// IsNotExist reports whether err is a failed open of a missing file
// (host errno ENOENT).
func IsNotExist(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Errno == 2
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// File is an open host file.
type File struct {
	h    int
	name string
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.name }

// Open opens a host file (relative names are relative to QEMU's working
// directory) with one of the Mode constants.
func Open(name string, mode int) (*File, error) {
	h, errno := sysOpen(name, mode)
	if h < 0 {
		return nil, &Error{"open", name, errno}
	}
	return &File{h: h, name: name}, nil
}

// WriteAt writes b at offset off (SYS_SEEK, then SYS_WRITE).
func (f *File) WriteAt(b []byte, off int64) error {
	if errno := sysSeek(f.h, off); errno != 0 {
		return &Error{"seek", f.name, errno}
	}
	return f.Write(b)
}

// Write writes b at the current position.
func (f *File) Write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if errno := sysWrite(f.h, b); errno != 0 {
		return &Error{"write", f.name, errno}
	}
	return nil
}

// ReadAt reads up to len(b) bytes at offset off and returns how many it
// read (fewer only at the end of the file).
func (f *File) ReadAt(b []byte, off int64) (int, error) {
	if errno := sysSeek(f.h, off); errno != 0 {
		return 0, &Error{"seek", f.name, errno}
	}
	n, errno := sysRead(f.h, b)
	if errno != 0 {
		return 0, &Error{"read", f.name, errno}
	}
	return n, nil
}

// Len returns the file's length (SYS_FLEN).
func (f *File) Len() (int64, error) {
	n, errno := sysFlen(f.h)
	if n < 0 {
		return 0, &Error{"flen", f.name, errno}
	}
	return n, nil
}

// Close closes the file.
func (f *File) Close() error {
	if f == nil || f.h < 0 {
		return nil
	}
	errno := sysClose(f.h)
	f.h = -1
	if errno != 0 {
		return &Error{"close", f.name, errno}
	}
	return nil
}

// Remove deletes a host file.
func Remove(name string) error {
	if errno := sysRemove(name); errno != 0 {
		return &Error{"remove", name, errno}
	}
	return nil
}

// Rename renames a host file, replacing newName if it exists (the host's
// rename(2): atomic on POSIX file systems).
func Rename(oldName, newName string) error {
	if errno := sysRename(oldName, newName); errno != 0 {
		return &Error{"rename", oldName + " -> " + newName, errno}
	}
	return nil
}

// Console writes to the host's standard output.
type Console struct{}

// Write implements io.Writer on the semihosting console.
func (Console) Write(b []byte) (int, error) {
	consoleWrite(b)
	return len(b), nil
}

// WriteString writes s to the console.
func (Console) WriteString(s string) (int, error) {
	consoleWrite([]byte(s))
	return len(s), nil
}

// Centiseconds returns the host's time since the program started, in
// hundredths of a second (SYS_CLOCK).
func Centiseconds() int64 { return sysClock() }

// Cmdline returns the command line QEMU was started with: the kernel's
// name followed by -append's text (SYS_GET_CMDLINE). On the host: os.Args.
func Cmdline() string { return sysCmdline() }

// Exit ends the program: QEMU exits with status 0 for code 0 and 1
// otherwise (SYS_EXIT with ADP_Stopped_ApplicationExit or
// ADP_Stopped_RunTimeErrorUnknown).
func Exit(code int) { sysExit(code) }

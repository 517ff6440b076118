//go:build unix

package cluster

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on path (created if missing),
// so that two processes never run one member's storage. The kernel drops
// the lock when the process dies, SIGKILL included.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("cluster: " + path + " is locked: another process runs this member")
		}
		return nil, err
	}
	return f, nil
}

func unlockDir(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	_ = f.Close()
}

//go:build !unix

package cluster

import "os"

// lockDir only creates the lock file where flock is not available: the
// operator must keep a second process off the directory.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
}

func unlockDir(f *os.File) { _ = f.Close() }

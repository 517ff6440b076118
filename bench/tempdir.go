package bench

import "os"

func mkTemp(parent, prefix string) (string, error) {
	return os.MkdirTemp(parent, "embraft-bench-"+prefix+"-")
}

func removeAll(dir string) { _ = os.RemoveAll(dir) }

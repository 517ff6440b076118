//go:build race

package cluster_test

func init() { snapshotCatchUpEntries = 2000 }

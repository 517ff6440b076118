//go:build !embraft_semihosting

package main

import "github.com/embraft/embraft/firmware/mcu"

// storageKind is chosen at build time: in-memory unless built with
// -tags embraft_semihosting.
const storageKind = mcu.Memory

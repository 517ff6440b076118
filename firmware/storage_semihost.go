//go:build embraft_semihosting

package main

import "github.com/embraft/embraft/firmware/mcu"

// storageKind: semihosting files (built with -tags embraft_semihosting).
const storageKind = mcu.Semihosting

//go:build mps2_an386

package main

const board = "Cortex-M4, QEMU mps2-an386"

//go:build !mps2_an386

package main

const board = "unknown board"

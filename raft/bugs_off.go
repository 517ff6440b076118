//go:build !embraft_bugs

package raft

// Deliberate safety bugs, used only to prove that the simulator's checkers
// catch them, exist only in builds with the embraft_bugs tag. In every
// other build these are constant false and the compiler removes the code.
const (
	bugCommitOldTerm  = false
	bugVoteIgnoresLog = false
)

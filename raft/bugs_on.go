//go:build embraft_bugs

package raft

// Deliberate safety bugs for checking the checkers (build tag embraft_bugs
// only; production builds cannot enable them).
var (
	// bugCommitOldTerm commits entries of earlier terms by counting
	// replicas, the unsafe rule of Figure 8 (§5.4.2).
	bugCommitOldTerm bool
	// bugVoteIgnoresLog grants votes without the up-to-date check (§5.4.1).
	bugVoteIgnoresLog bool
)

// InjectBugs turns the deliberate bugs on or off for the whole process.
func InjectBugs(commitOldTerm, voteIgnoresLog bool) {
	bugCommitOldTerm, bugVoteIgnoresLog = commitOldTerm, voteIgnoresLog
}

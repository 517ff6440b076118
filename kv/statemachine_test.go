package kv_test

import (
	"github.com/embraft/embraft/kv"
	"github.com/embraft/embraft/node"
)

// Store is the node's StateMachine.
var _ node.StateMachine = (*kv.Store)(nil)

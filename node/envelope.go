package node

import (
	"encoding/binary"
	"errors"

	"github.com/embraft/embraft/raft"
)

// An envelope wraps each command in the log with the proposing node and a
// request ID, so the proposer recognises its own entry when it applies it,
// whichever node the leader was. Layout: uvarint node ID, uvarint request
// ID, then the command bytes.
//
// Request IDs are 64-bit: the high 32 bits are random per node start
// (an incarnation), the low 32 count proposals, so that entries proposed
// before a restart never answer a waiter of the new incarnation.

// envelopeMaxBytes is the worst-case envelope header.
const envelopeMaxBytes = 2 * binary.MaxVarintLen64

var errBadEnvelope = errors.New("node: malformed envelope")

func appendEnvelope(b []byte, origin raft.NodeID, req uint64, cmd []byte) []byte {
	b = binary.AppendUvarint(b, uint64(origin))
	b = binary.AppendUvarint(b, req)
	return append(b, cmd...)
}

func parseEnvelope(b []byte) (origin raft.NodeID, req uint64, cmd []byte, err error) {
	o, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, nil, errBadEnvelope
	}
	r, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return 0, 0, nil, errBadEnvelope
	}
	return raft.NodeID(o), r, b[n+m:], nil
}

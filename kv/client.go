package kv

// Register returns the command that opens a session. Submit it, and build
// the client's Session from the result: Session{ClientID: res.ClientID}.
//
// Registration is not deduplicated (there is no session yet to remember
// it): if a register is retried and both copies commit, two sessions open.
// The unused one holds one of the MaxSessions slots until it is evicted or
// expires; nothing else goes wrong.
func Register() Command { return Command{Op: OpRegister} }

// Session is the client side of an exactly-once session. It knows nothing
// of transports: it only numbers commands.
//
// # Protocol
//
//  1. Submit Register() and set ClientID from the result (Seq stays 0).
//  2. For each new operation call Next, encode the command once with
//     AppendBinary, and submit the bytes. Keep at most one command
//     outstanding: do not call Next again until the previous command's
//     result has arrived.
//  3. Retry: if the outcome of a submission is unknown (timeout, lost
//     connection, leader change), resubmit the SAME encoded bytes, as many
//     times as needed, without calling Next. However many copies commit,
//     the store applies the command once and answers every copy with the
//     same cached result (Result.Index tells where it took effect).
//  4. StatusSessionExpired means the store no longer knows the session
//     (evicted or idle-expired): the copy that got this answer was not
//     applied, but if earlier copies of the same command were in flight,
//     their outcome stays unknown. Register again and, if it matters,
//     find out with a read whether the operation took effect.
//  5. StatusStaleSequence answers a command older than the session's
//     last one: a delayed duplicate. It was not applied (again) and its
//     first result is no longer available.
//
// The zero Session is not registered; commands it builds are answered
// StatusBadCommand (ClientID 0 does not decode).
type Session struct {
	ClientID uint64
	Seq      uint64 // Seq of the last command built by Next
}

// Next increments Seq and returns the session's next command. Value is
// used by OpPut and OpCAS, Expected by OpCAS only; arguments an operation
// does not use are not encoded. The command aliases key, value and
// expected. If op is OpRegister, Next returns Register() and leaves Seq
// unchanged.
func (s *Session) Next(op Op, key, value, expected []byte) Command {
	if op == OpRegister {
		return Register()
	}
	s.Seq++
	return Command{Op: op, ClientID: s.ClientID, Seq: s.Seq, Key: key, Value: value, Expected: expected}
}

// Put returns the next command setting key to value.
func (s *Session) Put(key, value []byte) Command { return s.Next(OpPut, key, value, nil) }

// Get returns the next command reading key.
func (s *Session) Get(key []byte) Command { return s.Next(OpGet, key, nil, nil) }

// Delete returns the next command removing key.
func (s *Session) Delete(key []byte) Command { return s.Next(OpDelete, key, nil, nil) }

// CAS returns the next command setting key to value if it holds expected.
func (s *Session) CAS(key, expected, value []byte) Command {
	return s.Next(OpCAS, key, value, expected)
}

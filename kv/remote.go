package kv

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/embraft/embraft/raft"
)

// Proposer submits one encoded command to a replica and returns the
// encoded Result once the command is applied there. *node.Node is one.
type Proposer interface {
	Propose(ctx context.Context, cmd []byte) ([]byte, error)
}

// ClientOptions bounds a Client's retries.
type ClientOptions struct {
	// AttemptTimeout bounds one submission (default 1 s).
	AttemptTimeout time.Duration
	// MaxAttempts bounds submissions of one command (default 50); each
	// retry resubmits the same bytes, so it is applied at most once.
	MaxAttempts int
	// Backoff is the pause between attempts (default 10 ms).
	Backoff time.Duration
	// Seed picks replicas at random.
	Seed uint64
}

// ErrGaveUp: MaxAttempts submissions all ended without an outcome. The
// command may or may not have been applied.
var ErrGaveUp = errors.New("kv: gave up after the maximum number of attempts")

// Client runs one exactly-once session against a set of replicas, sending
// each command to a replica picked at random (followers forward to the
// leader) and retrying the same bytes until an outcome is known. It is not
// safe for concurrent use: a session has one command outstanding.
type Client struct {
	replicas []Proposer
	opts     ClientOptions
	rng      *rand.Rand
	session  Session
	buf      []byte
	// Retries counts resubmissions of a command after an unknown outcome.
	Retries uint64
}

// NewClient registers a session through the replicas.
func NewClient(ctx context.Context, replicas []Proposer, opts ClientOptions) (*Client, error) {
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 50
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 10 * time.Millisecond
	}
	c := &Client{replicas: replicas, opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 1))}
	reg := Register()
	res, err := c.submit(ctx, &reg)
	if err != nil {
		return nil, err
	}
	c.session.ClientID = res.ClientID
	return c, nil
}

// ClientID returns the registered session's ID.
func (c *Client) ClientID() uint64 { return c.session.ClientID }

// Do runs one command built from the session (see Session.Next) and
// returns its result.
func (c *Client) Do(ctx context.Context, op Op, key, value, expected []byte) (Result, error) {
	cmd := c.session.Next(op, key, value, expected)
	return c.submit(ctx, &cmd)
}

// submit encodes cmd once and submits those bytes until an outcome is
// known: an applied result, or an error that says the command cannot run.
func (c *Client) submit(ctx context.Context, cmd *Command) (Result, error) {
	c.buf = cmd.AppendBinary(c.buf[:0])
	var lastErr error
	for attempt := 0; attempt < c.opts.MaxAttempts; attempt++ {
		if attempt > 0 {
			c.Retries++
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(c.opts.Backoff):
			}
		}
		r := c.replicas[c.rng.IntN(len(c.replicas))]
		actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
		out, err := r.Propose(actx, c.buf)
		cancel()
		if err == nil {
			var res Result
			if derr := DecodeResult(out, &res); derr != nil {
				return Result{}, derr
			}
			res.Value = append([]byte(nil), res.Value...) // out may be reused
			return res, nil
		}
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		if errors.Is(err, raft.ErrTooLarge) {
			return Result{}, err // no replica will ever take it
		}
		lastErr = err // unknown outcome (or refused): retry the same bytes
	}
	return Result{}, errors.Join(ErrGaveUp, lastErr)
}

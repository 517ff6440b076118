package mcu

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
)

// Console prints the firmware's progress, one line per event, in the
// seed's words ("Node 3 starting election (term 1)"). It is safe for
// concurrent use.
type Console struct {
	mu sync.Mutex
	w  io.Writer
	// Verbose also prints pre-vote rounds and followers' role changes.
	Verbose bool
	// OnLeader, if set, is called (outside the lock) when a node reports
	// that it became leader.
	OnLeader func(id, term uint64)
}

// NewConsole returns a Console writing to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Println writes one line.
func (c *Console) Println(parts ...string) {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	b = append(b, '\n')
	c.mu.Lock()
	_, _ = c.w.Write(b)
	c.mu.Unlock()
}

// Logger returns a slog.Logger for the node runtime whose events the
// console turns into seed-style lines.
func (c *Console) Logger() *slog.Logger { return slog.New(&nodeHandler{c: c}) }

// nodeHandler is a slog.Handler for package node's events. It reads the
// attributes it knows (no reflection, no fmt) and drops debug events.
type nodeHandler struct {
	c    *Console
	node uint64
}

func (h *nodeHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *nodeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	for _, a := range as {
		if a.Key == "node" {
			h2.node = attrUint(a.Value)
		}
	}
	return &h2
}

func (h *nodeHandler) WithGroup(string) slog.Handler { return h }

func attrUint(v slog.Value) uint64 {
	switch v.Kind() {
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindInt64:
		return uint64(v.Int64())
	}
	return 0
}

func attrString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindUint64:
		return strconv.FormatUint(v.Uint64(), 10)
	case slog.KindInt64:
		return strconv.FormatInt(v.Int64(), 10)
	case slog.KindBool:
		return strconv.FormatBool(v.Bool())
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
	}
	return v.Kind().String()
}

func (h *nodeHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]slog.Value{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value
		return true
	})
	u := func(k string) string { return strconv.FormatUint(attrUint(attrs[k]), 10) }
	node := "Node " + strconv.FormatUint(h.node, 10)
	c := h.c
	switch r.Message {
	case "node started":
		c.Println(node, " started (term ", u("term"), ", commit ", u("commit"), ")")
	case "election timeout: pre-vote started":
		if c.Verbose {
			c.Println(node, " election timeout: pre-vote for term ", u("for_term"))
		}
	case "election started":
		c.Println(node, " starting election (term ", u("term"), ")")
	case "became leader":
		c.Println(node, " became Leader for term ", u("term"))
		if c.OnLeader != nil {
			c.OnLeader(h.node, attrUint(attrs["term"]))
		}
	case "became follower":
		if c.Verbose {
			c.Println(node, " follows Node ", u("leader"), " (term ", u("term"), ")")
		}
	case "frames dropped":
		// Mostly frames to a stopped peer; the counts are in the status.
		if c.Verbose {
			c.Println(node, " dropped ", u("since_last"), " frames (inbox full ", u("inbox_full"),
				", peer down ", u("faults"), ", malformed ", u("malformed"), ")")
		}
	case "node stopped":
		c.Println(node, " stopped (term ", u("term"), ", applied ", u("applied"), ")")
	default:
		line := node + " " + r.Message
		r.Attrs(func(a slog.Attr) bool {
			line += " " + a.Key + "=" + attrString(a.Value)
			return true
		})
		c.Println(line)
	}
	return nil
}

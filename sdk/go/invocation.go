package sluice

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// invocation is one Invoke in flight, and the context.Context its handler gets: its
// Value(ctxKey{}) is itself, its Deadline is the Invoke's timeout_ms from when the
// Invoke was read. The standard context behind Done, Err and every other Value (a
// context.WithDeadline, or WithCancel without a timeout) is made on first use only,
// so a handler that never waits on ctx costs no timer and no allocation for it.
// Contexts derived from it (context.WithCancel(ctx), ...) see that standard context
// through Value and register with it directly, as with any standard parent.
type invocation struct {
	w        *worker
	id       uint64
	function string
	ev       *Event
	begin    time.Time     // when the Invoke was read
	timeout  time.Duration // 0: none

	mu        sync.Mutex
	std       context.Context
	stop      context.CancelFunc
	cancelled bool // sluice cancelled it, or it is answered: std is born cancelled

	answered bool // guarded by w.mu: its Result is out (it leaves w.inflight)
	held     bool // guarded by w.wmu: it runs inline, its Log frames wait for its Result
}

var _ context.Context = (*invocation)(nil)

func (c *invocation) ctx() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.std == nil {
		if c.timeout > 0 {
			c.std, c.stop = context.WithDeadline(context.Background(), c.begin.Add(c.timeout))
		} else {
			c.std, c.stop = context.WithCancel(context.Background())
		}
		if c.cancelled {
			c.stop()
		}
	}
	return c.std
}

// cancel cancels the handler's context (now, or when it is made).
func (c *invocation) cancel() {
	c.mu.Lock()
	c.cancelled = true
	if c.stop != nil {
		c.stop()
	}
	c.mu.Unlock()
}

func (c *invocation) Deadline() (time.Time, bool) {
	if c.timeout > 0 {
		return c.begin.Add(c.timeout), true
	}
	return time.Time{}, false
}

func (c *invocation) Done() <-chan struct{} { return c.ctx().Done() }

func (c *invocation) Err() error { return c.ctx().Err() }

func (c *invocation) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.ctx().Value(key)
}

func (c *invocation) String() string {
	return "sluice.invocation(" + strconv.FormatUint(c.id, 10) + ")"
}

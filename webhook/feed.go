package webhook

import (
	"context"
	"sync"
)

// Lookup finds the current webhook of a workspace. The control plane's Registry
// implements it; Fixed is a set that never changes. Lookup is called on every
// event and every delivery, so implementations answer from memory.
type Lookup interface {
	Lookup(workspace string) (Webhook, bool)
}

// Change is one workspace's webhook before and after a control record (or a
// restore of the materialised state). OldOK (NewOK) is false when the workspace
// had (has) no webhook.
type Change struct {
	Old, New     Webhook
	OldOK, NewOK bool
}

// Workspace is the workspace that changed.
func (c Change) Workspace() string {
	if c.OldOK {
		return c.Old.Workspace
	}
	return c.New.Workspace
}

// Disabled reports whether the change turned an enabled webhook off, by a
// disable, an auto-disable, a configure with enabled=false or a delete.
func (c Change) Disabled() bool {
	return c.OldOK && c.Old.Enabled && !(c.NewOK && c.New.Enabled)
}

// Feed is an unbounded FIFO of changes with one producer and one consumer. The
// producer (the control reader) never waits on Push, so a slow subscriber cannot
// hold up the control topic; the subscriber takes changes with Next on its own
// goroutine, in the order they were made. Changes are rare (operator actions and
// auto-disables), so the queue stays short.
type Feed struct {
	mu      sync.Mutex
	pending []Change
	ready   chan struct{} // holds a token while pending may be non-empty
}

// NewFeed returns an empty feed.
func NewFeed() *Feed { return &Feed{ready: make(chan struct{}, 1)} }

// Push appends c without waiting.
func (f *Feed) Push(c Change) {
	f.mu.Lock()
	f.pending = append(f.pending, c)
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// Next returns the oldest change, waiting for one until ctx ends.
func (f *Feed) Next(ctx context.Context) (Change, error) {
	for {
		f.mu.Lock()
		if len(f.pending) > 0 {
			c := f.pending[0]
			f.pending[0] = Change{}
			f.pending = f.pending[1:]
			f.mu.Unlock()
			return c, nil
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return Change{}, ctx.Err()
		case <-f.ready:
		}
	}
}

// Package redisbatch sends the pipelines of concurrent callers as one: group
// commit for Redis, so that many deliveries settling at once cost one round
// trip (one write and one read on each side) instead of one each.
package redisbatch

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultMax is the default cap on how many callers share one pipeline.
const DefaultMax = 128

// Batcher sends what concurrent callers queue as one pipeline. There is no
// linger: a caller that finds no pipeline in flight sends at once; callers
// that arrive meanwhile wait, and when it returns the first of them sends all
// that are waiting (up to the cap) in the next one, as a Kafka producer's
// batches form. No goroutine of its own: nothing to start or to drain, since
// every caller's commands are sent before its Do returns.
type Batcher struct {
	rdb redis.UniversalClient
	max int

	mu      sync.Mutex
	waiting []*call
	sending bool // a caller is sending a batch; waiting is empty otherwise
}

type call struct {
	ctx   context.Context
	queue func(redis.Pipeliner)
	wake  chan struct{}
	lead  bool  // woken to send the next batch, not because it was sent
	err   error // of the call's own commands
}

// New returns a Batcher on rdb that puts at most max callers (DefaultMax
// when max <= 0) in one pipeline.
func New(rdb redis.UniversalClient, max int) *Batcher {
	if max <= 0 {
		max = DefaultMax
	}
	return &Batcher{rdb: rdb, max: max}
}

// Do queues commands on a pipeline shared with concurrent callers and
// returns once it was sent, with the first error among the commands queue
// added (as Pipeliner.Exec does for a pipeline of its own): another caller's
// failure is not ours. queue runs on whichever goroutine sends the batch, before
// Do returns. The batch is sent under its callers' latest deadline, so ctx
// bounds the wait only as much as the other callers' contexts allow; callers
// here bound theirs by the same grace.
func (b *Batcher) Do(ctx context.Context, queue func(redis.Pipeliner)) error {
	c := &call{ctx: ctx, queue: queue, wake: make(chan struct{})}
	b.mu.Lock()
	b.waiting = append(b.waiting, c)
	lead := !b.sending
	b.sending = true
	b.mu.Unlock()
	if !lead {
		<-c.wake
		if !c.lead {
			return c.err
		}
	}
	// c heads the queue: it sends the next batch, itself first.
	b.mu.Lock()
	n := min(len(b.waiting), b.max)
	batch := b.waiting[:n:n]
	b.waiting = b.waiting[n:]
	b.mu.Unlock()
	b.send(batch)
	b.mu.Lock()
	if len(b.waiting) == 0 {
		b.sending = false
		b.waiting = nil
	} else {
		next := b.waiting[0]
		next.lead = true
		close(next.wake)
	}
	b.mu.Unlock()
	return c.err
}

// send sends batch as one pipeline and wakes every call but the first (the
// sender) with the error of its own commands.
func (b *Batcher) send(batch []*call) {
	pipe := b.rdb.Pipeline()
	ends := make([]int, len(batch))
	for i, c := range batch {
		c.queue(pipe)
		ends[i] = pipe.Len()
	}
	ctx, cancel := batchContext(batch)
	defer cancel()
	// A failed send sets its error on every command it did not get a reply
	// for, on a cluster per node: each call reads its own.
	cmds, _ := pipe.Exec(ctx)
	start := 0
	for i, c := range batch {
		c.err = firstErr(cmds[start:ends[i]])
		start = ends[i]
		if i > 0 {
			close(c.wake)
		}
	}
}

// batchContext is the context that sends a batch: the first call's values,
// no cancellation (a call cancelled while others wait must not fail them),
// and the latest of the calls' deadlines, or none if one has none.
func batchContext(batch []*call) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.WithoutCancel(batch[0].ctx), func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].ctx), latest)
}

func firstErr(cmds []redis.Cmder) error {
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return err
		}
	}
	return nil
}

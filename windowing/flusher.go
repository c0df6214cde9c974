package windowing

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Progress is what the owner of a partition knows about its consumption.
type Progress interface {
	// CaughtUpTo is the instant up to which the partition's records have all been
	// appended: now when the consumer has no lag, else the record time of the
	// last appended record.
	CaughtUpTo() time.Time
	// Appended signals (without blocking the sender) that messages were
	// appended, so granularity none is delivered without waiting for a poll.
	Appended() <-chan struct{}
}

// FlusherConfig configures a Flusher.
type FlusherConfig struct {
	Store     *Store
	Deliverer Deliverer
	Logger    *zap.Logger
	// Concurrency caps deliveries in flight across all partitions of this worker
	// (default 64). A slow webhook cannot take them all: the Deliverer refuses
	// (with a RetryAt) beyond its own per-webhook cap.
	Concurrency int
	// Lease is how long a claimed chat stays hidden from other workers (default
	// 30s). It must exceed the delivery timeout: a worker that dies mid-delivery
	// is replaced when its lease ends. Not time-scaled.
	Lease time.Duration
	// PollInterval is how often due windows and chats are looked for (default
	// 100ms); appends of granularity none wake the flusher at once.
	PollInterval time.Duration
	// Batch bounds one seal or claim script (default 256).
	Batch int
}

// Flusher seals due windows and delivers bundles of the partitions this worker
// owns. Delivery is at-least-once: a bundle is acknowledged only after the
// Deliverer is done with it, and a lost lease hands it to another worker.
type Flusher struct {
	cfg   FlusherConfig
	slots chan struct{}
}

// NewFlusher validates cfg and fills defaults.
func NewFlusher(cfg FlusherConfig) (*Flusher, error) {
	if cfg.Store == nil || cfg.Deliverer == nil {
		return nil, errors.New("windowing: FlusherConfig needs Store and Deliverer")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	return &Flusher{cfg: cfg, slots: make(chan struct{}, cfg.Concurrency)}, nil
}

// RunPartition seals and delivers the partition's due work until ctx ends. It
// returns only after its in-flight deliveries are finished, so a revoked
// partition is handed over with no delivery of ours still running.
func (f *Flusher) RunPartition(ctx context.Context, partition int, progress Progress) error {
	var inflight sync.WaitGroup
	defer inflight.Wait()
	tick := time.NewTicker(f.cfg.PollInterval)
	defer tick.Stop()
	// A finished delivery frees a slot and may have made the chat's next
	// bundle due: claim again at once instead of waiting for the next tick.
	done := make(chan struct{}, 1)
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-progress.Appended():
		case <-done:
		}
		err := f.pass(ctx, partition, progress, &inflight, done)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Logged once per failure streak; the next tick retries.
			f.cfg.Logger.Warn("flushing partition", zap.Int("partition", partition), zap.Error(err))
			failing = true
		case err == nil && failing:
			f.cfg.Logger.Info("flushing partition recovered", zap.Int("partition", partition))
			failing = false
		}
	}
}

// pass seals what is due, then claims as many chats as there are free delivery
// slots, repeating while the batches come back full.
func (f *Flusher) pass(ctx context.Context, partition int, progress Progress, inflight *sync.WaitGroup, done chan<- struct{}) error {
	now := f.cfg.Store.cfg.Now()
	upTo := progress.CaughtUpTo()
	if upTo.After(now) {
		upTo = now
	}
	for {
		n, err := f.cfg.Store.Seal(ctx, partition, upTo, f.cfg.Batch)
		if err != nil {
			return err
		}
		if n < f.cfg.Batch {
			break
		}
	}
	for {
		free := f.acquire(f.cfg.Batch)
		if free == 0 {
			return nil
		}
		perWorkspace, remaining := f.headroom()
		claimed, err := f.cfg.Store.Claim(ctx, partition, free, f.cfg.Lease, perWorkspace, remaining)
		f.release(free - len(claimed))
		if err != nil {
			return err
		}
		for _, c := range claimed {
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				f.deliver(ctx, c)
				f.release(1)
				select {
				case done <- struct{}{}:
				default:
				}
			}()
		}
		if len(claimed) < free {
			return nil
		}
	}
}

// Admission is implemented by a Deliverer that limits deliveries per
// workspace. The flusher then claims no more of a workspace's chats than it can
// take now: a chat claimed beyond that would only be put back, at the cost of
// two scripts and a delay.
type Admission interface {
	// Headroom returns how many deliveries one workspace may have in flight,
	// and, for workspaces with deliveries in flight, how many more they may
	// take now.
	Headroom() (perWorkspace int, remaining map[string]int)
}

func (f *Flusher) headroom() (int, map[string]int) {
	if a, ok := f.cfg.Deliverer.(Admission); ok {
		return a.Headroom()
	}
	return 0, nil
}

// acquire takes up to n free delivery slots without waiting.
func (f *Flusher) acquire(n int) int {
	got := 0
	for got < n {
		select {
		case f.slots <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

func (f *Flusher) release(n int) {
	for range n {
		<-f.slots
	}
}

func (f *Flusher) deliver(ctx context.Context, c Claimed) {
	// A delivery in flight finishes even when the partition is revoked or the
	// worker shuts down: cancelling it would waste the attempt, and the lease
	// bounds how long it may take.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Lease)
	defer cancel()
	out := f.cfg.Deliverer.Deliver(dctx, c.Bundle)
	var err error
	if out.Done {
		err = f.cfg.Store.Ack(dctx, c)
	} else {
		err = f.cfg.Store.Retry(dctx, c, out.RetryAt)
	}
	if err != nil {
		// The lease runs out and the bundle is delivered again: at-least-once.
		f.cfg.Logger.Warn("recording delivery outcome", zap.String("bundle_id", c.ID), zap.Error(err))
	}
}

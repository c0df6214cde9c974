package console

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/windowing"
)

// partitionsTTL is how long the console trusts the events topic's partition
// count: partitions are only ever added, and a new one's counts show after it.
// partitionsTimeout bounds asking Kafka, so that a broker that does not answer
// delays a page view by that much at most.
const (
	partitionsTTL     = time.Minute
	partitionsTimeout = 2 * time.Second
)

// partitionCount caches Config.Partitions, which asks Kafka, so that a page
// view costs Redis reads only.
type partitionCount struct {
	mu sync.Mutex
	n  int
	at time.Time
}

// waiting reads what ws has waiting over every events partition: nil when
// the number of partitions was never known (Kafka did not answer), and the
// page says so.
func (c *Console) waiting(ctx context.Context, ws string) (*windowing.Waiting, error) {
	n := c.partitionCount(ctx)
	if n == 0 {
		return nil, nil
	}
	w, err := c.cfg.Store.Waiting(ctx, n, ws)
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// partitionCount is the events topic's partition count, asked of Kafka at
// most once per partitionsTTL; when Kafka does not answer, the last count
// known (0 if none), since partitions are never removed.
func (c *Console) partitionCount(ctx context.Context) int {
	p := &c.partitions
	p.mu.Lock()
	defer p.mu.Unlock()
	now := c.cfg.Now()
	if p.n > 0 && now.Sub(p.at) < partitionsTTL {
		return p.n
	}
	ctx, cancel := context.WithTimeout(ctx, partitionsTimeout)
	defer cancel()
	n, err := c.cfg.Partitions(ctx)
	if err != nil {
		c.cfg.Logger.Warn("counting the events topic's partitions", zap.Error(err))
		return p.n
	}
	p.n, p.at = n, now
	return n
}

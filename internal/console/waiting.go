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
const partitionsTTL = time.Minute

// partitionCount caches Config.Partitions, which asks Kafka, so that a page
// view costs Redis reads only.
type partitionCount struct {
	mu sync.Mutex
	n  int
	at time.Time
}

// waiting reads what ws has waiting over every events partition: nil when
// Kafka did not say how many partitions there are, and the page says so.
func (c *Console) waiting(ctx context.Context, ws string) (*windowing.Waiting, error) {
	n, err := c.partitionCount(ctx)
	if err != nil {
		c.cfg.Logger.Warn("counting the events topic's partitions", zap.Error(err))
		return nil, nil
	}
	w, err := c.cfg.Store.Waiting(ctx, n, ws)
	if err != nil {
		return nil, err
	}
	return &w, nil
}

func (c *Console) partitionCount(ctx context.Context) (int, error) {
	p := &c.partitions
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := c.cfg.Now(); p.n == 0 || now.Sub(p.at) >= partitionsTTL {
		n, err := c.cfg.Partitions(ctx)
		if err != nil {
			return 0, err
		}
		p.n, p.at = n, now
	}
	return p.n, nil
}

package sink

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Health is what the sink keeps about one webhook epoch's deliveries, as people
// read it (the console). The gate and failure scripts and the success reset
// (Sink.Deliver) own the fields.
type Health struct {
	// ConsecutiveErrors counts failed attempts since the last success.
	ConsecutiveErrors int
	// BackoffUntil is when the next attempt may start after a failure; zero
	// when the webhook never failed or succeeded since.
	BackoffUntil time.Time
	// LastError is the last failure's reason in words; kept after a success.
	LastError string
	// Disabled is true once the sink auto-disabled this epoch.
	Disabled bool
}

// ReadHealth reads the health of workspace's webhook at epoch in one round
// trip. A webhook with no attempts yet has the zero Health.
func ReadHealth(ctx context.Context, rdb redis.Cmdable, prefix, workspace string, epoch int64) (Health, error) {
	v, err := rdb.HMGet(ctx, HealthKey(prefix, workspace, epoch), "errors", "next", "last_error", "disabled").Result()
	if err != nil {
		return Health{}, fmt.Errorf("reading webhook health of %s: %w", workspace, err)
	}
	field := func(i int) string { s, _ := v[i].(string); return s }
	var h Health
	h.ConsecutiveErrors, _ = strconv.Atoi(field(0))
	if ms, _ := strconv.ParseInt(field(1), 10, 64); ms > 0 {
		h.BackoffUntil = time.UnixMilli(ms).UTC()
	}
	h.LastError = field(2)
	h.Disabled = field(3) == "1"
	return h, nil
}

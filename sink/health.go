package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/redis/go-redis/v9"
)

// ConsecutiveErrorsOf reads the consecutive-error counts of many webhooks, each
// at its Epoch, in one pipelined round trip, so that a metrics scrape costs one
// round trip however many webhooks there are. Webhooks whose count is zero or
// absent are left out.
func ConsecutiveErrorsOf(ctx context.Context, rdb redis.UniversalClient, prefix string, hooks []webhook.Webhook) (map[string]int, error) {
	out := make(map[string]int)
	if len(hooks) == 0 {
		return out, nil
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(hooks))
	for i, w := range hooks {
		cmds[i] = pipe.HGet(ctx, HealthKey(prefix, w.Workspace, w.Epoch), "errors")
	}
	// Exec reports the first failed command, and a missing count is redis.Nil.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading consecutive errors: %w", err)
	}
	for i, c := range cmds {
		n, err := c.Int()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("reading consecutive errors of %s: %w", hooks[i].Workspace, err)
		case n > 0:
			out[hooks[i].Workspace] = n
		}
	}
	return out, nil
}

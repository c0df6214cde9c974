package retry

import (
	"context"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// Policy is a retry schedule: Initial after the first failure, doubling up to
// Max, each wait drawn within ±20% of its nominal value. Initial and Max must be
// positive.
type Policy struct {
	Initial, Max time.Duration
	// Attempts bounds the calls Do makes; 0 retries until success or the end of
	// the context.
	Attempts int
}

const (
	multiplier = 2
	jitter     = 0.2
)

// exponential is the policy as a backoff.ExponentialBackOff, the one place the
// schedule is configured. It has no elapsed-time limit: Attempts and the
// context bound Do.
func (p Policy) exponential() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.Initial),
		backoff.WithMaxInterval(p.Max),
		backoff.WithMultiplier(multiplier),
		backoff.WithRandomizationFactor(jitter),
		backoff.WithMaxElapsedTime(0),
	)
}

// Do calls op until it succeeds and returns nil, or returns the error that
// ended it: ctx's error once ctx ends, the error inside Permanent at once, or
// op's last error after Attempts failed calls. Each failed attempt that is
// retried is logged at Warn with the message what; a success after failures is
// logged at Info.
func (p Policy) Do(ctx context.Context, log *zap.Logger, what string, op func() error) error {
	var b backoff.BackOff = p.exponential()
	if p.Attempts > 0 {
		b = backoff.WithMaxRetries(b, uint64(p.Attempts-1))
	}
	failures, since := 0, time.Time{}
	err := backoff.RetryNotify(op, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		failures++
		if failures == 1 {
			since = time.Now()
		}
		log.Warn(what, zap.Int("attempt", failures), zap.Duration("retry_in", wait), zap.Error(err))
	})
	if err == nil && failures > 0 {
		log.Info("recovered", zap.String("after", what), zap.Int("failures", failures),
			zap.Duration("took", time.Since(since)))
	}
	return err
}

// Permanent marks err as an error that retrying cannot fix: Do returns err at
// once instead of calling op again.
func Permanent(err error) error { return backoff.Permanent(err) }

// Delay is the wait after n consecutive failures (n below 1 counts as 1):
// Initial·2^(n-1), capped at Max, within ±20%. It is computed directly, not by
// stepping a backoff n times: backoff's ExponentialBackOff, configured as Do's
// is, starts at the nominal wait and draws the jitter around it.
func (p Policy) Delay(n int) time.Duration {
	nominal := min(math.Ldexp(float64(p.Initial), max(n, 1)-1), float64(p.Max))
	b := p.exponential()
	b.InitialInterval = time.Duration(nominal)
	b.Reset()
	return b.NextBackOff()
}

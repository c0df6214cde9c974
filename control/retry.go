package control

import (
	"context"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// streak logs the first failure of a run of failures and the recovery that ends
// it, not every failure between: a broker that is down for a minute produces two
// log lines per partition, not six hundred.
type streak struct {
	log *zap.Logger
	msg string

	mu       sync.Mutex
	failures int
	since    time.Time
}

func newStreak(log *zap.Logger, msg string) *streak { return &streak{log: log, msg: msg} }

func (s *streak) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	if s.failures == 1 {
		s.since = time.Now()
		s.log.Warn(s.msg, zap.Error(err))
	}
}

func (s *streak) ok() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.log.Info("recovered", zap.String("after", s.msg), zap.Int("failures", s.failures),
			zap.Duration("took", time.Since(s.since)))
		s.failures = 0
	}
}

// newBackOff returns an exponential backoff without an elapsed-time limit: the
// callers retry transient failures for as long as their context lives.
func newBackOff(minDelay, maxDelay time.Duration) backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = minDelay
	b.MaxInterval = maxDelay
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// retry calls fn until it succeeds or ctx ends, sleeping b's delays between calls
// and reporting failures to s. It returns ctx's error if ctx ended first.
func retry(ctx context.Context, s *streak, b backoff.BackOff, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			s.ok()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.fail(err)
		if err := sleep(ctx, b.NextBackOff()); err != nil {
			return err
		}
	}
}

// sleep waits d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fetchNext fetches kr's next record, retrying failures with backoff b and
// logging them once per streak; ok is false once ctx has ended.
func fetchNext(ctx context.Context, kr *kafka.Reader, b backoff.BackOff, failures *streak) (m kafka.Message, ok bool) {
	for {
		m, err := kr.FetchMessage(ctx)
		if err == nil {
			b.Reset()
			failures.ok()
			return m, true
		}
		if ctx.Err() != nil {
			return m, false
		}
		failures.fail(err)
		if sleep(ctx, b.NextBackOff()) != nil {
			return m, false
		}
	}
}

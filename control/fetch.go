package control

import (
	"context"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/internal/retry"
)

// streak logs the first failure of a run of failures and the recovery that ends
// it, not every failure between. kafka-go reports every retry it makes inside a
// reader through its ErrorLogger: a broker that is down for a minute produces
// two log lines per partition, not six hundred.
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

// fetchNext fetches kr's next record, retrying failures with policy p; ok is
// false once ctx has ended. A fetched record ends the streak of kr's own
// failures, which kr reports to s.
func fetchNext(ctx context.Context, log *zap.Logger, kr *kafka.Reader, p retry.Policy, s *streak) (m kafka.Message, ok bool) {
	err := p.Do(ctx, log, "fetching control records", func() (err error) {
		m, err = kr.FetchMessage(ctx)
		return err
	})
	if err != nil {
		return m, false
	}
	s.ok()
	return m, true
}

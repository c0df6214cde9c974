package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/outbound-webhooks/outbound/internal/retry"
)

var errDown = errors.New("redis is down")

func TestDo(t *testing.T) {
	fast := retry.Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond}
	tests := []struct {
		name      string
		policy    retry.Policy
		failures  int   // op fails this many times before it succeeds (-1: always)
		fail      error // what op returns while failing
		cancelAt  int   // cancel the context during this call (0: never)
		wantErr   error
		wantCalls int
		wantWarns int
		wantInfos int // "recovered" lines
	}{
		{name: "first call succeeds", policy: fast, wantCalls: 1},
		{name: "succeeds after two failures", policy: fast, failures: 2, fail: errDown,
			wantCalls: 3, wantWarns: 2, wantInfos: 1},
		{name: "a permanent error is not retried", policy: fast, failures: -1, fail: retry.Permanent(errDown),
			wantErr: errDown, wantCalls: 1},
		{name: "attempts bound the calls", policy: retry.Policy{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 3},
			failures: -1, fail: errDown, wantErr: errDown, wantCalls: 3, wantWarns: 2},
		{name: "the end of the context ends it", policy: fast, failures: -1, fail: errDown, cancelAt: 4,
			wantErr: context.Canceled, wantCalls: 4, wantWarns: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			err := tc.policy.Do(ctx, zap.New(core), "writing to redis", func() error {
				calls++
				if calls == tc.cancelAt {
					cancel()
				}
				if tc.failures < 0 || calls <= tc.failures {
					return tc.fail
				}
				return nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Do = %v, want %v", err, tc.wantErr)
			}
			if calls != tc.wantCalls {
				t.Errorf("op called %d times, want %d", calls, tc.wantCalls)
			}
			warns := logs.FilterMessage("writing to redis").FilterLevelExact(zapcore.WarnLevel).All()
			if len(warns) != tc.wantWarns {
				t.Errorf("logged %d failed attempts, want %d: %v", len(warns), tc.wantWarns, logs.All())
			}
			for i, w := range warns {
				if got := w.ContextMap()["attempt"]; got != int64(i+1) {
					t.Errorf("warning %d: attempt = %v, want %d", i, got, i+1)
				}
				if w.ContextMap()["error"] != errDown.Error() {
					t.Errorf("warning %d: error = %v, want %q", i, w.ContextMap()["error"], errDown)
				}
			}
			if n := logs.FilterMessage("recovered").Len(); n != tc.wantInfos {
				t.Errorf("logged %d recoveries, want %d", n, tc.wantInfos)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	p := retry.Policy{Initial: 5 * time.Second, Max: 30 * time.Minute}
	tests := []struct {
		name     string
		failures int
		nominal  time.Duration
	}{
		{name: "first failure", failures: 1, nominal: 5 * time.Second},
		{name: "no failure counts as one", failures: 0, nominal: 5 * time.Second},
		{name: "doubles", failures: 2, nominal: 10 * time.Second},
		{name: "doubles again", failures: 5, nominal: 80 * time.Second},
		{name: "just below the cap", failures: 9, nominal: 1280 * time.Second},
		{name: "capped", failures: 10, nominal: 30 * time.Minute},
		{name: "far past the cap does not overflow", failures: 5000, nominal: 30 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := time.Duration(float64(tc.nominal)*0.8), time.Duration(float64(tc.nominal)*1.2)
			seen := map[time.Duration]bool{}
			for range 50 {
				got := p.Delay(tc.failures)
				if got < lo || got > hi {
					t.Fatalf("Delay(%d) = %s, want %s ±20%%", tc.failures, got, tc.nominal)
				}
				seen[got] = true
			}
			if len(seen) < 2 {
				t.Errorf("Delay(%d) gave the same wait 50 times: no jitter", tc.failures)
			}
		})
	}
}

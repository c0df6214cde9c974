package sink

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoffDoublesWithJitterUpToTheCap(t *testing.T) {
	s := &Sink{cfg: Config{BackoffInitial: 5 * time.Second, BackoffMax: 30 * time.Minute, RetryAfterMax: time.Hour, TimeScale: 1}}
	cases := []struct {
		failures int
		nominal  time.Duration
	}{
		{1, 5 * time.Second}, {2, 10 * time.Second}, {3, 20 * time.Second}, {5, 80 * time.Second},
		{9, 1280 * time.Second}, {10, 30 * time.Minute}, {40, 30 * time.Minute},
	}
	for _, tc := range cases {
		for range 20 { // jitter: every draw stays within ±20%
			got := s.backoff(tc.failures, 0, false)
			lo, hi := time.Duration(float64(tc.nominal)*0.8), time.Duration(float64(tc.nominal)*1.2)
			if got < lo || got > hi {
				t.Fatalf("backoff after %d failures = %s, want %s ±20%%", tc.failures, got, tc.nominal)
			}
		}
	}
}

func TestRetryAfterIsHonouredWithinAClamp(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := &Sink{cfg: Config{BackoffInitial: 5 * time.Second, BackoffMax: 30 * time.Minute, RetryAfterMax: time.Hour, TimeScale: 1}}
	cases := []struct {
		name   string
		header string
		want   time.Duration
	}{
		{"seconds", "120", 120 * time.Second},
		{"HTTP date", now.Add(10 * time.Minute).Format(http.TimeFormat), 10 * time.Minute},
		{"a date in the past still waits a second", now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{"too long is clamped", "86400", time.Hour},
		{"zero still waits a second", "0", time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ra, ok := parseRetryAfter(tc.header, now)
			if !ok {
				t.Fatalf("Retry-After %q not understood", tc.header)
			}
			if got := s.backoff(3, ra, true); got != tc.want {
				t.Fatalf("wait with Retry-After %q = %s, want %s", tc.header, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "soon", "-5", "1.5"} {
		if d, ok := parseRetryAfter(bad, now); ok {
			t.Errorf("parseRetryAfter(%q) = %s, want it ignored (the backoff applies)", bad, d)
		}
	}
}

func TestTimeScaleDividesTheBackoff(t *testing.T) {
	s := &Sink{cfg: Config{BackoffInitial: 5 * time.Second, BackoffMax: 30 * time.Minute, RetryAfterMax: time.Hour, TimeScale: 1000}}
	if got := s.backoff(1, 0, false); got < 4*time.Millisecond || got > 6*time.Millisecond {
		t.Fatalf("backoff at scale 1000 = %s, want 5ms ±20%%", got)
	}
}

package windowing

import (
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/webhook"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestWindowStart(t *testing.T) {
	cases := []struct {
		name string
		at   string
		g    webhook.Granularity
		want string
	}{
		{"1h mid-hour", "2021-02-24T16:25:29Z", webhook.H1, "2021-02-24T16:00:00Z"},
		{"1h exactly on the boundary belongs to the new window", "2021-02-24T16:00:00Z", webhook.H1, "2021-02-24T16:00:00Z"},
		{"1h one millisecond before the boundary", "2021-02-24T15:59:59.999Z", webhook.H1, "2021-02-24T15:00:00Z"},
		{"6h aligned to 00/06/12/18 UTC", "2021-02-24T11:59:59Z", webhook.H6, "2021-02-24T06:00:00Z"},
		{"12h afternoon", "2021-02-24T23:00:00Z", webhook.H12, "2021-02-24T12:00:00Z"},
		{"24h is the UTC day", "2021-02-24T23:59:59Z", webhook.H24, "2021-02-24T00:00:00Z"},
		{"24h on a leap day", "2024-02-29T13:00:00Z", webhook.H24, "2024-02-29T00:00:00Z"},
		{"6h across the leap day into March", "2024-03-01T01:00:00Z", webhook.H6, "2024-03-01T00:00:00Z"},
		{"24h at the turn of the year", "2024-12-31T23:59:59Z", webhook.H24, "2024-12-31T00:00:00Z"},
		{"offsets do not matter: a +02:00 time is windowed in UTC", "2021-03-28T02:30:00+02:00", webhook.H24, "2021-03-28T00:00:00Z"},
		{"a European DST change day is still 24 hours long in UTC", "2021-03-28T23:30:00Z", webhook.H24, "2021-03-28T00:00:00Z"},
		{"before the Unix epoch", "1969-12-31T23:30:00Z", webhook.H1, "1969-12-31T23:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := WindowStart(utc(tc.at), tc.g.Duration())
			if !got.Equal(utc(tc.want)) {
				t.Fatalf("WindowStart(%s, %s) = %s, want %s", tc.at, tc.g, got.Format(time.RFC3339), tc.want)
			}
		})
	}
}

func TestScaledWindows(t *testing.T) {
	s, err := NewStore(Config{Redis: nil})
	if err == nil || s != nil {
		t.Fatal("NewStore without Redis must fail")
	}
	s = &Store{cfg: Config{TimeScale: 3600}}
	cases := []struct {
		g    webhook.Granularity
		want time.Duration
	}{{webhook.None, 0}, {webhook.H1, time.Second}, {webhook.H6, 6 * time.Second}, {webhook.H12, 12 * time.Second}, {webhook.H24, 24 * time.Second}}
	for _, tc := range cases {
		if got := s.WindowLength(tc.g); got != tc.want {
			t.Errorf("WindowLength(%s) at scale 3600 = %s, want %s", tc.g, got, tc.want)
		}
	}
}

func TestAssignClampsFutureTimestamps(t *testing.T) {
	s := &Store{cfg: Config{TimeScale: 1, FutureSkew: 5 * time.Minute}}
	now := utc("2024-06-01T12:00:00Z")
	cases := []struct {
		name string
		ts   time.Time
		want time.Time
	}{
		{"past stays", now.Add(-48 * time.Hour), now.Add(-48 * time.Hour)},
		{"small skew stays", now.Add(4 * time.Minute), now.Add(4 * time.Minute)},
		{"a year ahead is clamped to now", now.AddDate(1, 0, 0), now},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Assign(tc.ts, now); !got.Equal(tc.want) {
				t.Fatalf("Assign = %s, want %s", got, tc.want)
			}
		})
	}
}

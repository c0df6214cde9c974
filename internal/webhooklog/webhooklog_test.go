package webhooklog_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
)

func TestLogsKeepTheNewestFirstAndAreBounded(t *testing.T) {
	ctx := context.Background()
	l := webhooklog.New(testenv.Redis(t), testenv.KeyPrefix())
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 130 {
		at := base.Add(time.Duration(i) * time.Second)
		if err := l.RecordActivity(ctx, "ws", webhooklog.Activity{At: at, Action: webhooklog.ActionDelivered, BundleID: fmt.Sprint("b", i)}); err != nil {
			t.Fatal(err)
		}
		if err := l.RecordRequest(ctx, "ws", webhooklog.Request{At: at, BundleID: fmt.Sprint("b", i), Attempt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.RecordActivity(ctx, "other", webhooklog.Activity{Action: webhooklog.ActionEnabled}); err != nil {
		t.Fatal(err)
	}
	activity, err := l.Activity(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	requests, err := l.Requests(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	if len(activity) != webhooklog.ActivitySize || activity[0].BundleID != "b129" || activity[9].BundleID != "b120" {
		t.Fatalf("activity: %d entries from %s to %s; want the 10 newest, newest first", len(activity), activity[0].BundleID, activity[len(activity)-1].BundleID)
	}
	if len(requests) != webhooklog.RequestsSize || requests[0].BundleID != "b129" || requests[99].BundleID != "b30" {
		t.Fatalf("requests: %d entries from %s to %s; want the 100 newest, newest first", len(requests), requests[0].BundleID, requests[len(requests)-1].BundleID)
	}
	if a, _ := l.Activity(ctx, "other"); len(a) != 1 {
		t.Fatal("workspaces share a log")
	}
}

// An entry keeps MaxBody of each body and says how much there was.
func TestRequestEntryKeepsABoundedBody(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	prefix := testenv.KeyPrefix()
	l := webhooklog.New(rdb, prefix)
	body := strings.Repeat("é", 200*32<<10) // 12.8 MB of two-byte runes
	err := l.RecordRequest(ctx, "ws", webhooklog.Request{BundleID: "b", Body: body,
		Response: &webhooklog.Response{Status: 200, Body: strings.Repeat("r", 100<<10)}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := l.Requests(ctx, "ws")
	if err != nil || len(q) != 1 {
		t.Fatalf("%d entries, %v", len(q), err)
	}
	r := q[0]
	if !r.BodyTruncated || r.BodySize != len(body) || len(r.Body) != webhooklog.MaxBody || !utf8.ValidString(r.Body) {
		t.Errorf("body kept %d bytes (valid UTF-8: %v), truncated %v, size %d; want %d, true, %d",
			len(r.Body), utf8.ValidString(r.Body), r.BodyTruncated, r.BodySize, webhooklog.MaxBody, len(body))
	}
	if !r.Response.Truncated || len(r.Response.Body) != webhooklog.MaxBody {
		t.Errorf("response body kept %d bytes, truncated %v; want %d, true", len(r.Response.Body), r.Response.Truncated, webhooklog.MaxBody)
	}
	raw, err := rdb.LIndex(ctx, webhooklog.WorkspaceKey(prefix, "ws", "requests"), 0).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"request_body_truncated":true`, fmt.Sprintf(`"request_body_size":%d`, len(body))} {
		if !strings.Contains(raw, field) {
			t.Errorf("stored entry lacks %s", field)
		}
	}
	if len(raw) > 2*webhooklog.MaxBody+2<<10 {
		t.Errorf("stored entry is %d bytes, want at most the two bodies and a little", len(raw))
	}
}

// A flood of large entries keeps the request log under its byte cap, with its
// counter true to the list, and both logs expire.
func TestRequestLogStaysUnderItsByteCap(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	const maxBytes = 1 << 20
	prefix := testenv.KeyPrefix()
	l := webhooklog.NewWithConfig(webhooklog.Config{Redis: rdb, Prefix: prefix, MaxRequestBytes: maxBytes, TTL: time.Hour})
	key := webhooklog.WorkspaceKey(prefix, "ws", "requests")
	for i := range 300 {
		if err := l.RecordRequest(ctx, "ws", webhooklog.Request{BundleID: fmt.Sprint("b", i), Body: strings.Repeat("<p>&amp;</p>", 10<<10)}); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := l.RecordActivity(ctx, "ws", webhooklog.Activity{Action: webhooklog.ActionDelivered, Detail: strings.Repeat("x", 5000)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := rdb.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, e := range entries {
		total += len(e)
	}
	counted, _ := rdb.Get(ctx, key+"_bytes").Int()
	if total > maxBytes || total < maxBytes-(80<<10) || counted != total {
		t.Errorf("%d entries of %d bytes in all (counter says %d); want at most %d, within one entry of it", len(entries), total, counted, maxBytes)
	}
	if mem, err := rdb.MemoryUsage(ctx, key).Result(); err != nil || mem > maxBytes*5/4 {
		t.Errorf("MEMORY USAGE of the request log = %d (%v), want %d and allocator overhead at most", mem, err, maxBytes)
	}
	q, _ := l.Requests(ctx, "ws")
	if len(q) == 0 || q[0].BundleID != "b299" {
		t.Fatal("the newest entry is not kept first")
	}
	a, _ := l.Activity(ctx, "ws")
	if len(a) == 0 || len(a[0].Detail) != webhooklog.MaxDetail {
		t.Errorf("activity detail kept %d bytes, want %d", len(a[0].Detail), webhooklog.MaxDetail)
	}
	for _, k := range []string{key, key + "_bytes", webhooklog.WorkspaceKey(prefix, "ws", "activity")} {
		if ttl, err := rdb.TTL(ctx, k).Result(); err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("TTL of %s = %s (%v), want up to an hour", k, ttl, err)
		}
	}
}

// Every attempt counts in its hour, far beyond the 100 the request log keeps,
// through the sink's path (Encode, Queue) as through RecordRequest, and the counts
// expire once the chart no longer draws their hour.
func TestEveryAttemptCountsInItsHour(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	prefix := testenv.KeyPrefix()
	l := webhooklog.New(rdb, prefix)
	now := time.Now()
	delivered := webhooklog.Request{At: now, Response: &webhooklog.Response{Status: 204}}
	for range 150 {
		q, err := l.Encode("ws", delivered, webhooklog.Activity{Action: webhooklog.ActionDelivered})
		if err != nil {
			t.Fatal(err)
		}
		pipe := rdb.Pipeline()
		q.Queue(ctx, pipe)
		// The first push meets NOSCRIPT (a pipeline cannot load the
		// script): Check runs it again.
		if _, err := pipe.Exec(ctx); err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			t.Fatal(err)
		}
		if err := q.Check(ctx, rdb); err != nil {
			t.Fatal(err)
		}
	}
	failures := []webhooklog.Request{
		{At: now.Add(-time.Hour), Response: &webhooklog.Response{Status: 500}, Error: "HTTP 500"},
		{At: now.Add(-time.Hour), Error: "connection refused"},
		{At: now.Add(-time.Hour), Response: &webhooklog.Response{Status: 302}, Error: "HTTP 302"},
		{At: now.Add(-30 * time.Hour), Error: "too old to be drawn"},
	}
	for _, r := range failures {
		if err := l.RecordRequest(ctx, "ws", r); err != nil {
			t.Fatal(err)
		}
	}
	hours, err := l.Hours(ctx, "ws", now, 24)
	if err != nil {
		t.Fatal(err)
	}
	last, before := hours[23], hours[22]
	if len(hours) != 24 || !last.Start.Equal(now.UTC().Truncate(time.Hour)) || last.Delivered != 150 || last.Failed != 0 ||
		before.Delivered != 0 || before.Failed != 3 {
		t.Fatalf("the last two of %d hours: %+v, %+v; want 150 delivered this hour, 3 failed the hour before", len(hours), before, last)
	}
	total := 0
	for _, h := range hours {
		total += h.Delivered + h.Failed
	}
	if total != 153 {
		t.Errorf("%d attempts over 24 hours, want 153", total)
	}
	if q, _ := l.Requests(ctx, "ws"); len(q) != webhooklog.RequestsSize {
		t.Errorf("the request log holds %d, want %d", len(q), webhooklog.RequestsSize)
	}
	hourKey := func(at time.Time) string {
		return webhooklog.WorkspaceKey(prefix, "ws", "hour:"+strconv.FormatInt(at.UTC().Truncate(time.Hour).Unix(), 10))
	}
	for _, k := range []string{hourKey(now), hourKey(now.Add(-time.Hour))} {
		if ttl, err := rdb.TTL(ctx, k).Result(); err != nil || ttl <= 23*time.Hour || ttl > webhooklog.HoursKept {
			t.Errorf("TTL of %s = %s (%v), want what is left of %s after its hour's start", k, ttl, err, webhooklog.HoursKept)
		}
	}
	if n, err := rdb.Exists(ctx, hourKey(now.Add(-30*time.Hour))).Result(); err != nil || n != 0 {
		t.Errorf("an attempt 30 hours old made a count (%d, %v)", n, err)
	}
}

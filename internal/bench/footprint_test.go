package bench

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/outbound-webhooks/outbound/internal/redistest"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// BenchmarkRedisFootprint measures what Redis holds for 24h windows, the
// figures docs/capacity.md builds on: a redis-server of its own (nothing else
// in it), used_memory read before and after each phase.
//
//	go test ./internal/bench -run '^$' -bench RedisFootprint -benchtime 1x
//
// Phases: 20 000 chats (200 workspaces, 12 partitions) get one message each,
// then nine more (the figures per message and per open window follow from
// the two), then every window is sealed into a bundle. Then 100 workspaces
// fill their request log (100 requests whose bodies are real renderings of
// those 10-message bundles) and activity log (10 entries).
func BenchmarkRedisFootprint(b *testing.B) {
	const (
		chats, workspaces, partitions, perChat = 20_000, 200, 12, 10
		logWorkspaces                          = 100
	)
	srv := redistest.Start(b)
	rdb := srv.Client()
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // inside one 24h window
	clock := clockwork.NewFakeClockAt(at)
	store, err := windowing.NewStore(windowing.Config{Redis: rdb, Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	k := corpus{workspaces: workspaces, chats: chats}
	offsets := make([]int64, partitions)
	var raw int64
	appendRound := func(round int) {
		batches := make([][]windowing.Entry, partitions)
		for c := range chats {
			i := round*chats + c
			ev := k.event(i, c, at.Add(time.Duration(round)*time.Minute))
			raw += int64(rawBytes(ev.Message))
			p := c % partitions
			batches[p] = append(batches[p], entry(ev, offsets[p], webhook.H24, 1))
			offsets[p]++
		}
		for p, es := range batches {
			for len(es) > 0 {
				n := min(500, len(es))
				if _, err := store.Append(ctx, p, es[:n], es[n-1].Offset, -1); err != nil {
					b.Fatal(err)
				}
				es = es[n:]
			}
		}
	}
	// Loads the scripts and creates the per-partition keys before the baseline.
	appendRound(0)
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	offsets, raw = make([]int64, partitions), 0
	m0 := usedMemory(b, rdb)
	appendRound(0)
	m1 := usedMemory(b, rdb)
	for round := 1; round < perChat; round++ {
		appendRound(round)
	}
	m2 := usedMemory(b, rdb)
	clock.Advance(48 * time.Hour) // past every close, grace and stagger
	var bundles []windowing.Bundle
	for p := range partitions {
		if _, err := store.Seal(ctx, p, clock.Now(), -1, chats); err != nil {
			b.Fatal(err)
		}
	}
	m3 := usedMemory(b, rdb)
	for p := range partitions { // bodies for the request log, without acking
		claimed, err := store.Claim(ctx, p, logWorkspaces, time.Hour, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range claimed {
			bundles = append(bundles, c.Bundle)
		}
	}
	logs := webhooklog.New(rdb, "")
	m4 := usedMemory(b, rdb)
	var bodies int64
	for w := range logWorkspaces {
		ws := fmt.Sprintf("ws_log_%03d", w)
		for i := range 100 {
			bu := bundles[(w*100+i)%len(bundles)]
			body, err := sink.Render(bu, "TimelinesAI")
			if err != nil {
				b.Fatal(err)
			}
			bodies += int64(len(body))
			h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"outbound/1.0"},
				"Webhook-Id": {bu.ID}, "Webhook-Timestamp": {"1772442000"}, "Webhook-Signature": {"<redacted>"}}
			if err := logs.RecordRequest(ctx, ws, webhooklog.Request{At: at, BundleID: bu.ID, ChatID: bu.ChatID,
				Attempt: 1, DurationMS: 120, Method: http.MethodPost, URL: "https://hooks.example.com/outbound/" + ws,
				Headers: h, Body: string(body), Response: &webhooklog.Response{Status: 200,
					Headers: http.Header{"Content-Type": {"application/json"}}, Body: `{"ok":true}`}}); err != nil {
				b.Fatal(err)
			}
		}
		for i := range 10 {
			if err := logs.RecordActivity(ctx, ws, webhooklog.Activity{At: at, Action: webhooklog.ActionDelivered,
				BundleID: bundles[i].ID, ChatID: bundles[i].ChatID, Messages: perChat, Status: 200, DurationMS: 120}); err != nil {
				b.Fatal(err)
			}
		}
	}
	m5 := usedMemory(b, rdb)

	n := float64(chats)
	perMsg := float64(m2-m1) / (n * (perChat - 1))
	b.ReportMetric(perMsg, "B/message")
	b.ReportMetric(float64(m1-m0)/n-perMsg, "B/open-window")
	b.ReportMetric(float64(m2-m0)/n, "B/10-message-window")
	b.ReportMetric(float64(m3-m0)/n, "B/10-message-bundle")
	b.ReportMetric(float64(raw)/(n*perChat), "raw-B/message")
	b.ReportMetric(float64(m5-m4)/logWorkspaces, "B/workspace-logs")
	b.ReportMetric(float64(bodies)/(logWorkspaces*100), "B/bundle-body")
	var keys int64
	if keys, err = rdb.DBSize(ctx).Result(); err != nil {
		b.Fatal(err)
	}
	b.Logf("used_memory: %d before, %d after 1 message per chat, %d after %d, %d sealed, %d with the logs of %d workspaces; %d keys",
		m0, m1, m2, perChat, m3, m5, logWorkspaces, keys)
}

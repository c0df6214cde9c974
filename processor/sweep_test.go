package processor_test

import (
	"context"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// A disable drops the workspace's open windows and says so in its activity
// log; a delete drops them too but writes nothing, since the delete purges
// that log and a line written after the purge would outlive it.
func TestSweepLogsADisableButNotADelete(t *testing.T) {
	hooks := webhook.Fixed{
		"ws_off": {Workspace: "ws_off", Enabled: true, Granularity: webhook.H24, Epoch: 1},
		"ws_del": {Workspace: "ws_del", Enabled: true, Granularity: webhook.H24, Epoch: 1},
	}
	p := startPipeline(t, hooks, 1)
	rdb := testenv.Redis(t)
	logs := webhooklog.New(rdb, testenv.KeyPrefix())
	testenv.Eventually(t, "partition 0 assigned", 30*time.Second, func() bool { return len(p.consumer.Owned()) == 1 })
	// Straight into the store: a 24h window lasts 2s here, less than Kafka
	// may take to hand records over, and the sweep must find it open.
	var es []windowing.Entry
	for i, ws := range []string{"ws_off", "ws_del"} {
		es = append(es, windowing.Entry{Offset: int64(i), Workspace: ws, Epoch: 1, Granularity: webhook.H24,
			Chat:    schemas.Chat{ChatID: ws, FullName: "Chat"},
			Message: windowing.Message{ID: ws, Direction: schemas.DirectionSent, At: time.Now(), Text: "hi"}})
	}
	if res, err := p.store.Append(context.Background(), 0, es, 1, -1); err != nil || res.Applied != 2 {
		t.Fatalf("Append: %+v, %v; want both applied", res, err)
	}

	feed := webhook.NewFeed()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.consumer.SweepDisabled(ctx, feed, logs) }()
	defer func() { cancel(); <-done }()
	off := hooks["ws_off"]
	off.Enabled = false
	feed.Push(webhook.Change{Old: hooks["ws_del"], OldOK: true})
	feed.Push(webhook.Change{Old: hooks["ws_off"], OldOK: true, New: off, NewOK: true})

	testenv.Eventually(t, "the disable logged", 10*time.Second, func() bool {
		a, _ := logs.Activity(context.Background(), "ws_off")
		return len(a) == 1 && a[0].Action == webhooklog.ActionDropped
	})
	// The feed is a FIFO: the delete was swept before the disable was logged.
	if n, err := rdb.Exists(context.Background(), webhooklog.WorkspaceKey("", "ws_del", "activity")).Result(); err != nil || n != 0 {
		t.Fatalf("the deleted workspace has an activity log (%d, %v)", n, err)
	}
	if n := p.got.count(); n != 0 {
		t.Fatalf("%d messages delivered, want the windows dropped", n)
	}
}

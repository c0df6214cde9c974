package webhooklog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
)

func TestLogsKeepTheNewestFirstAndAreBounded(t *testing.T) {
	ctx := context.Background()
	l := webhooklog.New(testenv.Redis(t), "")
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

package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/smtptest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
)

// startThreeWorkers starts the workers w1, w2 and w3 on c, configures the
// workspace "ws" to deliver to recv's path /ws in granularity, and returns a
// writer of events, closed when the test ends.
func (c *cluster) startThreeWorkers(recv *apptest.Receiver, granularity string) *kafka.Writer {
	for i := range 3 {
		c.startWorker(fmt.Sprint("w", i+1))
	}
	c.Publish(apptest.Configure("ws", recv.Srv.URL+"/ws", granularity))
	w := c.Writer()
	c.T.Cleanup(func() { w.Close() })
	return w
}

// TestControlTopicDrivesEveryWorker configures a webhook through the control
// topic on a three-worker group, disables it, and re-enables it. A message
// produced a second after the disable is delivered by no worker; after the
// enable, deliveries resume.
func TestControlTopicDrivesEveryWorker(t *testing.T) {
	c := newCluster(t, 6)
	recv := apptest.NewReceiver(t)
	w := c.startThreeWorkers(recv, "none")
	send := func(phase string, n int) map[string]bool {
		ids := map[string]bool{}
		for i := range n {
			id := fmt.Sprintf("%s-%03d", phase, i)
			ids[id] = true
			// 12 chats spread over 6 partitions, so every worker owns some.
			if err := w.WriteMessages(context.Background(), apptest.Event("ws", fmt.Sprint("chat-", i%12), id, time.Now())); err != nil {
				t.Fatal(err)
			}
		}
		return ids
	}
	deliveredOf := func(ids map[string]bool) int {
		n := 0
		for id := range recv.Unique() {
			if ids[id] {
				n++
			}
		}
		return n
	}

	before := send("enabled", 60)
	testenv.Eventually(t, "deliveries while enabled", 60*time.Second, func() bool { return deliveredOf(before) == len(before) })

	c.Publish(schemas.ControlMessage{Type: schemas.TypeDisable, WorkspaceID: "ws", Reason: "maintenance"})
	time.Sleep(time.Second) // the promise: every worker applies a change within a second
	during := send("disabled", 60)
	time.Sleep(3 * time.Second)
	if n := deliveredOf(during); n != 0 {
		t.Fatalf("%d messages produced a second after the disable were delivered", n)
	}

	c.Publish(schemas.ControlMessage{Type: schemas.TypeEnable, WorkspaceID: "ws"})
	time.Sleep(time.Second)
	after := send("re-enabled", 60)
	testenv.Eventually(t, "deliveries after re-enable", 60*time.Second, func() bool { return deliveredOf(after) == len(after) })
	if n := deliveredOf(during); n != 0 {
		t.Fatalf("%d messages produced while disabled were delivered after the re-enable", n)
	}
}

// TestAutoDisableEmailsTheOwnerOnce: a receiver that always fails gets exactly
// 11 attempts, the webhook is disabled on every worker, and the owner receives
// exactly one email, though three workers run a notifier each.
func TestAutoDisableEmailsTheOwnerOnce(t *testing.T) {
	mail := smtptest.Start(t)
	c := newCluster(t, 3)
	c.extraFlags = []string{"--smtp-url", mail.URL(), "--smtp-from", "outbound@example.com"}
	var attempts atomic.Int64
	recv := apptest.NewReceiver(t)
	recv.Status = func(string) int { attempts.Add(1); return http.StatusBadGateway }
	w := c.startThreeWorkers(recv, "none")
	url := recv.Srv.URL + "/ws"
	for i := range 20 {
		if err := w.WriteMessages(context.Background(), apptest.Event("ws", fmt.Sprint("chat-", i%5), fmt.Sprint("m", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := mail.WaitFor(ctx, 1); err != nil {
		t.Fatalf("no email: %v (receiver saw %d attempts)", err, attempts.Load())
	}
	time.Sleep(3 * time.Second) // a second email or a 12th attempt would show by now
	msgs := mail.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want exactly 1", len(msgs))
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "owner+ws@example.com" {
		t.Errorf("email to %v, want the owner owner+ws@example.com", m.To)
	}
	for _, want := range []string{url, "11 consecutive", "502 Bad Gateway", "turn the webhook back on in the workspace settings"} {
		if !strings.Contains(m.Subject+"\n"+m.Body, want) {
			t.Errorf("email lacks %q:\n%s\n%s", want, m.Subject, m.Body)
		}
	}
	if n := attempts.Load(); n != 11 {
		t.Errorf("receiver saw %d attempts, want 11", n)
	}
	wh, ok, err := control.LoadWebhook(context.Background(), c.OpenRedis(), control.Keys(c.KeyPrefix), "ws")
	if err != nil || !ok || wh.Enabled || !strings.Contains(wh.DisabledReason, "11 consecutive errors") {
		t.Errorf("materialised webhook = %+v, %v, %v; want disabled after 11 errors", wh, ok, err)
	}
}

// TestDisableDropsPendingWindowsAndSaysHowMany: with real 24h windows (no time
// scale) every message is pending; a disable drops them all, and the workers'
// activity entries add up to the number of open windows.
func TestDisableDropsPendingWindowsAndSaysHowMany(t *testing.T) {
	c := newCluster(t, 6)
	c.extraFlags = []string{"--time-scale", "1"}
	recv := apptest.NewReceiver(t)
	w := c.startThreeWorkers(recv, "24h")
	const chats = 9
	for i := range 3 * chats {
		if err := w.WriteMessages(context.Background(), apptest.Event("ws", fmt.Sprint("chat-", i%chats), fmt.Sprint("m", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	rdb := c.OpenRedis()
	logs := webhooklog.New(rdb, c.KeyPrefix)
	// Wait until every message is in a window: the partitions' watermarks cover them.
	testenv.Eventually(t, "27 messages buffered", 60*time.Second, func() bool {
		n := 0
		for p := range 6 {
			if v, err := rdb.Get(context.Background(), fmt.Sprintf("%s:{p%d}:wm", c.KeyPrefix, p)).Int(); err == nil {
				n += v + 1 // offsets start at 0
			}
		}
		return n >= 3*chats
	})
	c.Publish(schemas.ControlMessage{Type: schemas.TypeDisable, WorkspaceID: "ws"})
	dropped := func() int {
		entries, _ := logs.Activity(context.Background(), "ws")
		total := 0
		for _, e := range entries {
			var windows, bundles int
			if e.Action == webhooklog.ActionDropped {
				fmt.Sscanf(e.Detail, "dropped %d open windows and %d queued bundles", &windows, &bundles)
				total += windows + bundles
			}
		}
		return total
	}
	testenv.Eventually(t, "the drop to be logged", 30*time.Second, func() bool { return dropped() >= chats })
	time.Sleep(time.Second)
	if n := dropped(); n != chats {
		t.Fatalf("activity log says %d windows dropped, want %d (one per chat)", n, chats)
	}
	if len(recv.Snapshot()) != 0 {
		t.Fatalf("%d deliveries of a disabled webhook", len(recv.Snapshot()))
	}
}

package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/faults"
	"github.com/outbound-webhooks/outbound/internal/smtptest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
)

// crashAt starts a worker armed to SIGKILL itself at point, and waits until it
// did.
func (c *cluster) crashAt(point faults.Point) {
	c.T.Helper()
	c.env = []string{faults.Env + "=" + string(point)}
	doomed := c.startWorker("crashes " + string(point))
	c.env = nil
	select {
	case <-doomed.exited:
	case <-time.After(90 * time.Second):
		c.T.Fatalf("the worker never reached %s:\n%s", point, tail(doomed.log.String(), 3000))
	}
	ws, _ := doomed.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL || !strings.Contains(doomed.log.String(), "faults: crashing at "+string(point)) {
		c.T.Fatalf("the worker exited with %v, not by SIGKILL at %s:\n%s", doomed.cmd.ProcessState, point, tail(doomed.log.String(), 3000))
	}
}

// TestCrashAtEachDangerousPointLosesNothing kills a worker with SIGKILL at
// exactly one dangerous moment, then lets a fresh worker take over. Every
// message is delivered, none in two different bundles, and a bundle delivered
// again carries the same id and the same messages.
func TestCrashAtEachDangerousPointLosesNothing(t *testing.T) {
	cases := []struct {
		point       faults.Point
		granularity string
	}{
		{faults.AfterAppend, "none"},
		{faults.AfterAppend, "1h"},
		{faults.AfterSeal, "none"},
		{faults.AfterSeal, "1h"},
		{faults.AfterPost, "none"},
		{faults.AfterPost, "1h"},
	}
	for _, tc := range cases {
		t.Run(string(tc.point)+"/"+tc.granularity, func(t *testing.T) {
			c := newCluster(t, 2)
			recv := apptest.NewReceiver(t)
			c.Publish(apptest.Configure("ws", recv.Srv.URL+"/ws", tc.granularity))
			w := c.Writer()
			defer w.Close()
			const total = 40
			for i := range total {
				if err := w.WriteMessages(context.Background(), apptest.Event("ws", fmt.Sprint("chat-", i%4), fmt.Sprintf("m%02d", i), time.Now())); err != nil {
					t.Fatal(err)
				}
			}
			c.crashAt(tc.point)
			c.startWorker("successor")
			testenv.Eventually(t, "every message delivered", 90*time.Second, func() bool { return len(recv.Unique()) >= total })
			// again counts the deliveries that came again, and checks that
			// each carried the same messages as before.
			again := func(report bool) int {
				byID := map[string][]string{}
				n := 0
				for _, d := range recv.Snapshot() {
					if prev, ok := byID[d.ID]; ok {
						n++
						if report && !slices.Equal(prev, d.Messages) {
							t.Errorf("delivery %s came again with other messages: %v, then %v", d.ID, prev, d.Messages)
						}
					}
					byID[d.ID] = d.Messages
				}
				return n
			}
			if tc.point == faults.AfterPost {
				// The receiver accepted the crashed worker's last deliveries,
				// which were never acknowledged: the successor must send them
				// again, once the dead worker's leases and group membership
				// run out. Its posts before the crash may already hold every
				// message, so waiting for those proves nothing.
				testenv.Eventually(t, "the delivery the worker crashed after delivered again", 90*time.Second, func() bool { return again(false) > 0 })
			}
			time.Sleep(2 * time.Second) // a duplicate would arrive by now
			for id, n := range recv.Unique() {
				if n != 1 {
					t.Errorf("message %s arrived in %d different deliveries", id, n)
				}
			}
			again(true)
		})
	}
}

// TestCrashAfterTheAlertClaimStillAlertsOnce: the worker that auto-disables a
// webhook dies between claiming the alert and publishing it. Once the claim
// runs out, the next worker publishes the event: one webhook.auto_disabled
// event id on the control topic, and one email.
func TestCrashAfterTheAlertClaimStillAlertsOnce(t *testing.T) {
	mail := smtptest.Start(t)
	c := newCluster(t, 1)
	c.extraFlags = []string{"--smtp-url", mail.URL(), "--smtp-from", "outbound@example.com"}
	recv := apptest.NewReceiver(t)
	recv.Status = func(string) int { return http.StatusInternalServerError }
	c.Publish(apptest.Configure("ws", recv.Srv.URL+"/ws", "none"))
	w := c.Writer()
	defer w.Close()
	for i := range 12 {
		if err := w.WriteMessages(context.Background(), apptest.Event("ws", "chat", fmt.Sprint("m", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	c.crashAt(faults.AfterAlertClaim)
	c.startWorker("successor")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := mail.WaitFor(ctx, 1); err != nil {
		t.Fatalf("no email after the crash: %v", err)
	}
	time.Sleep(3 * time.Second) // a second email would arrive by now
	if n := len(mail.Messages()); n != 1 {
		t.Fatalf("%d emails, want 1", n)
	}
	ids := autoDisabledIDs(t, c)
	if len(ids) != 1 {
		t.Fatalf("webhook.auto_disabled event ids on the control topic: %v, want exactly one", ids)
	}
}

// autoDisabledIDs reads the whole control topic and returns the distinct ids
// of its webhook.auto_disabled events.
func autoDisabledIDs(t *testing.T, c *cluster) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range readTopic(t, c.Brokers, c.KafkaConn, c.Control, 3) {
		msg, err := schemas.DecodeControl(m.Value)
		if err == nil && msg.Type == schemas.TypeAutoDisabled {
			seen[msg.ID] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

package app

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
)

// scrape reads /metrics into "name{labels}" -> value. Labels are as the text
// exposition prints them: sorted by name, values quoted.
func scrape(t *testing.T, srv *httptest.Server) map[string]float64 {
	t.Helper()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics answered %s: %s", resp.Status, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("unparsable sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsEndpoint runs a whole worker in process against real Kafka and
// Redis, drives events of every kind through it, and checks that /metrics
// reports what happened.
func TestMetricsEndpoint(t *testing.T) {
	c := apptest.NewCluster(t, 2)
	recv := apptest.NewReceiver(t)
	recv.FailFor("ws_failing")
	c.Publish(apptest.Configure("ws_ok", recv.Srv.URL+"/ws_ok", "none"),
		apptest.Configure("ws_failing", recv.Srv.URL+"/ws_failing", "none"))
	w := newInProcessWorker(t, c)
	apptest.RunUntilCleanup(t, "worker", w.Run)
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)

	if got := scrape(t, srv)["outbound_events_consumed_total"]; got != 0 {
		t.Fatalf("outbound_events_consumed_total = %v before any event, want 0", got)
	}

	now := time.Now()
	withAttachment := apptest.Event("ws_ok", "chat-c", "m-attachment", now)
	var ev schemas.Event
	if err := json.Unmarshal(withAttachment.Value, &ev); err != nil {
		t.Fatal(err)
	}
	ev.Message.Attachments = []schemas.Attachment{{Type: "image", Filename: "a.jpg", Mimetype: "image/jpeg", Size: 1, URL: "https://files.example/a.jpg"}}
	withAttachment.Value, _ = json.Marshal(ev)
	events := []kafka.Message{
		apptest.Event("ws_ok", "chat-a", "m1", now),
		apptest.Event("ws_ok", "chat-b", "m2", now),
		apptest.Event("ws_ok", "chat-a", "m3", now),
		withAttachment,
		{Key: []byte("chat-x"), Value: []byte("{not json")},
		apptest.Event("ws_unknown", "chat-u", "m-unknown", now),
		apptest.Event("ws_failing", "chat-f", "m-failing", now),
	}
	kw := c.Writer()
	defer kw.Close()
	if err := kw.WriteMessages(context.Background(), events...); err != nil {
		t.Fatal(err)
	}
	// The receiver records a delivery before the sink has counted it: wait for
	// the sink's count, which is what the scrape reports.
	testenv.Eventually(t, "three deliveries and a failed attempt", 60*time.Second, func() bool {
		return len(recv.Snapshot()) == 3 && w.sink.Stats().Delivered.Load() == 3 && w.sink.Stats().Failed.Load() >= 1
	})

	m := scrape(t, srv)
	exact := []struct {
		sample string
		want   float64
	}{
		{"outbound_events_consumed_total", float64(len(events))},
		{"outbound_events_appended_total", 4},
		{"outbound_events_duplicate_total", 0},
		{"outbound_events_dead_lettered_total", 1},
		{`outbound_events_skipped_total{reason="attachment"}`, 1},
		{`outbound_events_skipped_total{reason="no_text"}`, 0},
		{`outbound_events_skipped_total{reason="no_webhook"}`, 1},
		{`outbound_events_skipped_total{reason="disabled"}`, 0},
		{"outbound_redis_loss_replays_total", 0},
		{"outbound_bundles_delivered_total", 3},
		{`outbound_delivery_duration_seconds_count{outcome="success"}`, 3},
		{"outbound_bundles_dropped_total", 0},
		{"outbound_webhooks_auto_disabled_total", 0},
		{"outbound_control_records_applied_total", 2},
		{`outbound_control_records_rejected_total{reason="invalid_url"}`, 0},
		{`outbound_webhooks{state="enabled"}`, 2},
		{`outbound_webhooks{state="disabled"}`, 0},
		{`outbound_consumer_lag_records{partition="0"}`, 0},
		{`outbound_consumer_lag_records{partition="1"}`, 0},
		{`outbound_windows_open{partition="0"}`, 0},
		{`outbound_windows_open{partition="1"}`, 0},
		{`outbound_build_info{version="dev"}`, 1},
	}
	for _, tc := range exact {
		t.Run(tc.sample, func(t *testing.T) {
			got, ok := m[tc.sample]
			if !ok {
				t.Fatalf("no sample %s in the scrape", tc.sample)
			}
			if got != tc.want {
				t.Errorf("%s = %v, want %v", tc.sample, got, tc.want)
			}
		})
	}
	atLeast := []struct {
		sample string
		want   float64
	}{
		{"outbound_delivery_attempts_failed_total", 1},
		{`outbound_delivery_duration_seconds_count{outcome="failure"}`, 1},
		{`outbound_webhook_consecutive_errors{workspace="ws_failing"}`, 1},
		{`outbound_chats_queued{partition="0"}`, 0},
		{`outbound_chats_queued{partition="1"}`, 0},
		{"go_goroutines", 1},
	}
	for _, tc := range atLeast {
		t.Run(tc.sample, func(t *testing.T) {
			if got, ok := m[tc.sample]; !ok || got < tc.want {
				t.Errorf("%s = %v (present %v), want at least %v", tc.sample, got, ok, tc.want)
			}
		})
	}
	if _, ok := m[`outbound_webhook_consecutive_errors{workspace="ws_ok"}`]; ok {
		t.Errorf("a webhook without errors has a consecutive-errors series; only failing ones should")
	}
}

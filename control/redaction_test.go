package control

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

type capturePublisher struct {
	mu   sync.Mutex
	msgs []schemas.ControlMessage
}

func (p *capturePublisher) Publish(_ context.Context, msg schemas.ControlMessage) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msg)
	return nil
}

// A receiver URL's query token is a secret. A webhook whose receiver fails
// until it is auto-disabled leaves that token in none of what is stored or
// leaves the process: the request log, the activity log, the health hash's
// last_error, the published webhook.auto_disabled event, the owner email and
// the worker's own log.
func TestFailingReceiverTokenIsStoredNowhere(t *testing.T) {
	const secret = "SECRET-0a1b2c"
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL + "/hook?token=" + secret
	srv.Close() // connection refused: Go's *url.Error quotes the whole URL

	rdb, prefix := testenv.Redis(t), testenv.KeyPrefix()
	var logged bytes.Buffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logged), zap.DebugLevel))
	w := webhook.Webhook{Workspace: "ws", URL: dead, Granularity: webhook.None, Enabled: true, Epoch: 1, EnabledSince: 1,
		OwnerEmail: "owner@example.com"}
	pub := &capturePublisher{}
	now := time.Now()
	s, err := sink.New(sink.Config{Redis: rdb, Prefix: prefix, Webhooks: webhook.Fixed{"ws": w}, Publisher: pub, Logger: logger,
		MaxErrors: 1, Client: sink.ClientConfig{AllowPrivate: true}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	b := windowing.Bundle{ID: "b_1", Workspace: "ws", ChatID: "c1", Granularity: webhook.None, Epoch: 1, Attempt: 1,
		Chat:     schemas.Chat{ChatID: "c1", FullName: "Chat"},
		Messages: []windowing.Message{{ID: "m1", Direction: schemas.DirectionSent, At: now, Text: "hi"}}}
	ctx := context.Background()
	for range 2 { // MaxErrors 1: the second failure disables
		if out := s.Deliver(ctx, b); out.Done {
			t.Fatalf("Deliver to a dead receiver = %+v, want a retry", out)
		}
		now = now.Add(time.Hour) // past the backoff
	}
	if len(pub.msgs) != 1 {
		t.Fatalf("%d events published, want one webhook.auto_disabled", len(pub.msgs))
	}
	event := pub.msgs[0]

	logs := webhooklog.New(rdb, prefix)
	requests, err := logs.Requests(ctx, "ws")
	if err != nil || len(requests) != 2 {
		t.Fatalf("request log: %d entries, %v; want 2", len(requests), err)
	}
	activity, err := logs.Activity(ctx, "ws")
	if err != nil || len(activity) == 0 {
		t.Fatalf("activity log: %d entries, %v", len(activity), err)
	}
	health, err := rdb.HGetAll(ctx, sink.HealthKey(prefix, "ws", 1)).Result()
	if err != nil || health["last_error"] == "" {
		t.Fatalf("health hash %v, %v: want a last_error", health, err)
	}
	email, err := composeEmail("ctl_1", "outbound@example.com", w, event, "", now)
	if err != nil {
		t.Fatal(err)
	}
	var mail bytes.Buffer
	if _, err := email.WriteTo(&mail); err != nil {
		t.Fatal(err)
	}
	// Quoted-printable may break a line inside the token: read the body too.
	body, err := email.GetParts()[0].GetContent()
	if err != nil {
		t.Fatal(err)
	}
	eventJSON, _ := json.Marshal(event)
	requestsJSON, _ := json.Marshal(requests)
	activityJSON, _ := json.Marshal(activity)
	for what, text := range map[string]string{
		"request log":       string(requestsJSON),
		"activity log":      string(activityJSON),
		"health last_error": health["last_error"],
		"auto_disabled":     string(eventJSON),
		"owner email":       mail.String(),
		"owner email body":  string(body),
		"worker log":        logged.String(),
	} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s shows the token:\n%s", what, text)
		}
	}
	// Redacted, not dropped: the owner can still tell which URL failed.
	if !strings.Contains(requests[0].URL, "token=xxxxx") {
		t.Errorf("request log URL %q, want the query key kept and its value redacted", requests[0].URL)
	}
	if !strings.Contains(event.LastError, "connect") {
		t.Errorf("last error %q, want it to say the connection failed", event.LastError)
	}
}

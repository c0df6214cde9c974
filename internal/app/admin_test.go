package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/sink"
)

// newInProcessWorker builds a worker on c's topics and Redis database with the
// HTTP listener off: tests serve w.Handler() on an httptest server instead.
// set, when given, changes the config before the worker is built.
func newInProcessWorker(t *testing.T, c *apptest.Cluster, set ...func(*Config)) *Worker {
	t.Helper()
	cfg := Config{Brokers: c.Brokers, Kafka: c.Kafka, Redis: c.Redis, RedisKeyPrefix: c.KeyPrefix, GroupID: c.Group,
		EventsTopic: c.Events, ControlTopic: c.Control, DLQTopic: c.DLQ,
		AllowPrivate: true, SessionTimeout: 6 * time.Second}
	for _, f := range set {
		f(&cfg)
	}
	w, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// startAdminWorker builds an in-process worker on c with the admin token
// token, runs its control reader until the test ends and waits until it has
// applied the configuration of ws_1.
func startAdminWorker(t *testing.T, c *apptest.Cluster, token string) *Worker {
	t.Helper()
	w := newInProcessWorker(t, c, func(cfg *Config) { cfg.AdminToken = token })
	// Run is not called, so close what it would close; registered first, this
	// runs after the reader stopped.
	t.Cleanup(func() { w.publisher.Close(); w.rdb.Close() })
	apptest.RunUntilCleanup(t, "control reader", w.reader.Run)
	testenv.Eventually(t, "ws_1 applied", 30*time.Second, func() bool {
		_, ok := w.registry.Lookup("ws_1")
		return ok
	})
	return w
}

// TestAdminAPI serves the admin API of a worker whose registry was fed by its
// control reader from a real control topic, with logs in a real Redis.
func TestAdminAPI(t *testing.T) {
	const (
		token = "admin-token-for-tests"
		// A signing secret and a basic-auth password of the receiver URL: neither
		// may appear in any answer.
		secret   = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1sZWFr"
		password = "hunter2-basic-auth"
	)
	c := apptest.NewCluster(t, 1)
	msg := apptest.Configure("ws_1", "https://hooks:"+password+"@receiver.example/ws_1", "1h")
	msg.Secret = secret
	c.Publish(msg)

	w := startAdminWorker(t, c, token)
	ctx := context.Background()
	testenv.Eventually(t, "the configure activity", 10*time.Second, func() bool {
		a, err := w.logs.Activity(ctx, "ws_1")
		return err == nil && len(a) > 0
	})
	wh, _ := w.registry.Lookup("ws_1")
	// The sink's count for the current epoch: what the API reports.
	if err := w.rdb.HSet(ctx, sink.HealthKey(c.KeyPrefix, "ws_1", wh.Epoch), "errors", 3).Err(); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 130 {
		if err := w.logs.RecordRequest(ctx, "ws_1", webhooklog.Request{At: base.Add(time.Duration(i) * time.Second),
			BundleID: fmt.Sprintf("b%03d", i), ChatID: "chat-1", Attempt: 1, Method: http.MethodPost, URL: wh.URL,
			Headers: http.Header{"Webhook-Signature": {"v1,<redacted>"}}, Body: `{"messages":[]}`,
			Response: &webhooklog.Response{Status: 200, Body: "ok"}}); err != nil {
			t.Fatal(err)
		}
	}

	withToken := httptest.NewServer(w.Handler())
	t.Cleanup(withToken.Close)
	w.cfg.AdminToken = ""
	withoutToken := httptest.NewServer(w.Handler())
	t.Cleanup(withoutToken.Close)

	const webhookPath, requestsPath = "/v1/workspaces/ws_1/webhook", "/v1/workspaces/ws_1/webhook/requests"
	cases := []struct {
		name       string
		srv        *httptest.Server
		path       string
		auth       string
		wantStatus int
		wantBody   []string
		wantHeader map[string]string
	}{
		{name: "no token configured: webhook", srv: withoutToken, path: webhookPath, auth: "Bearer " + token,
			wantStatus: http.StatusForbidden, wantBody: []string{"--admin-token", "OUTBOUND_ADMIN_TOKEN"}},
		{name: "no token configured: requests", srv: withoutToken, path: requestsPath, auth: "Bearer " + token,
			wantStatus: http.StatusForbidden, wantBody: []string{"--admin-token", "OUTBOUND_ADMIN_TOKEN"}},
		{name: "missing token", srv: withToken, path: webhookPath,
			wantStatus: http.StatusUnauthorized, wantHeader: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "wrong token", srv: withToken, path: webhookPath, auth: "Bearer not-the-token",
			wantStatus: http.StatusUnauthorized, wantHeader: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "token prefix", srv: withToken, path: requestsPath, auth: "Bearer " + token[:len(token)-1],
			wantStatus: http.StatusUnauthorized, wantHeader: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "token under another scheme", srv: withToken, path: webhookPath, auth: "Basic " + token,
			wantStatus: http.StatusUnauthorized, wantHeader: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "unknown workspace", srv: withToken, path: "/v1/workspaces/ws_nope/webhook", auth: "Bearer " + token,
			wantStatus: http.StatusNotFound, wantBody: []string{`\"ws_nope\" has no webhook`}},
		{name: "webhook", srv: withToken, path: webhookPath, auth: "bearer " + token,
			wantStatus: http.StatusOK, wantBody: []string{`"secret": "<redacted>"`, `"consecutive_errors": 3`, `"action": "configured"`},
			wantHeader: map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}},
		{name: "requests download", srv: withToken, path: requestsPath, auth: "Bearer " + token,
			wantStatus: http.StatusOK, wantBody: []string{`"bundle_id": "b129"`},
			wantHeader: map[string]string{"Content-Disposition": `attachment; filename="webhook-requests-ws_1.json"`}},
		{name: "healthz needs no token", srv: withToken, path: "/healthz", wantStatus: http.StatusOK},
	}
	bodies := map[string][]byte{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tc.srv.URL+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			for _, s := range tc.wantBody {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for h, v := range tc.wantHeader {
				if got := resp.Header.Get(h); !strings.Contains(got, v) {
					t.Errorf("header %s = %q, want it to contain %q", h, got, v)
				}
			}
			for _, leak := range []string{secret, password} {
				if strings.Contains(string(body), leak) {
					t.Errorf("body contains the secret %q:\n%s", leak, body)
				}
			}
			bodies[tc.name] = body
		})
	}

	t.Run("webhook fields", func(t *testing.T) {
		var st WebhookStatus
		if err := json.Unmarshal(bodies["webhook"], &st); err != nil {
			t.Fatalf("decoding %s: %v", bodies["webhook"], err)
		}
		want := WebhookConfig{URL: "https://hooks:xxxxx@receiver.example/ws_1", Granularity: "1h", Enabled: true,
			OwnerEmail: "owner+ws_1@example.com", Secret: "<redacted>"}
		if st.Workspace != "ws_1" || st.Config != want || st.ConsecutiveErrors != 3 || st.DisabledReason != "" {
			t.Errorf("got %+v, want workspace ws_1, config %+v, 3 consecutive errors, no disabled reason", st, want)
		}
		if len(st.Activity) != 1 || st.Activity[0].Action != webhooklog.ActionConfigured {
			t.Errorf("activity = %+v, want one %q", st.Activity, webhooklog.ActionConfigured)
		}
	})
	t.Run("requests download holds the 100 newest, newest first", func(t *testing.T) {
		var log webhooklog.RequestLog
		if err := json.Unmarshal(bodies["requests download"], &log); err != nil {
			t.Fatalf("decoding the download: %v", err)
		}
		if len(log.Requests) != webhooklog.RequestsSize {
			t.Fatalf("%d requests, want %d", len(log.Requests), webhooklog.RequestsSize)
		}
		for i, r := range log.Requests {
			if want := fmt.Sprintf("b%03d", 129-i); r.BundleID != want {
				t.Fatalf("request %d is %s, want %s (newest first)", i, r.BundleID, want)
			}
		}
		if r := log.Requests[0]; r.Response == nil || r.Response.Status != 200 || r.Headers.Get("Webhook-Signature") != "v1,<redacted>" ||
			r.URL != "https://hooks:xxxxx@receiver.example/ws_1" {
			t.Errorf("newest request lost its details or kept the URL's password: %+v", r)
		}
	})
}

// TestReadiness: /readyz answers 503 until the control topic is caught up, 200
// once it is with Kafka and Redis reachable, and 503 naming Kafka when no broker
// answers.
func TestReadiness(t *testing.T) {
	c := apptest.NewCluster(t, 1)
	w := newInProcessWorker(t, c)
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "control topic") {
		t.Fatalf("before start: %d %q, want 503 about the control topic", code, body)
	}
	apptest.RunUntilCleanup(t, "worker", w.Run)
	testenv.Eventually(t, "ready", 30*time.Second, func() bool { code, _ := get(); return code == http.StatusOK })

	dead := apptest.NewCluster(t, 1)
	dead.Brokers = []string{"127.0.0.1:1"} // nothing listens on port 1
	down := newInProcessWorker(t, dead)
	// Its control reader never catches up, so look past that check: the probe
	// itself must name Kafka.
	if err := down.consumer.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "reaching Kafka") {
		t.Fatalf("Ping with no broker = %v, want an error about reaching Kafka", err)
	}
}

// TestAdminAPIRefusesHostileRequests: requests an attacker or a broken client
// would send, each with the exact status and the words of its answer. None
// reaches a workspace's data without the token, and none is answered with 5xx.
func TestAdminAPIRefusesHostileRequests(t *testing.T) {
	const token = "admin-token-for-tests"
	c := apptest.NewCluster(t, 1)
	c.Publish(apptest.Configure("ws_1", "https://receiver.example/ws_1", "1h"))
	w := startAdminWorker(t, c, token)
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()

	bearer := "Bearer " + token
	cases := []struct {
		name, method, path, auth string
		wantStatus               int
		wantBody                 string
	}{
		{"no Authorization header", "GET", "/v1/workspaces/ws_1/webhook", "", 401, "missing or wrong bearer token"},
		{"empty bearer token", "GET", "/v1/workspaces/ws_1/webhook", "Bearer ", 401, "missing or wrong bearer token"},
		{"basic auth instead of bearer", "GET", "/v1/workspaces/ws_1/webhook", "Basic YWRtaW46" + token, 401, "missing or wrong bearer token"},
		{"wrong token", "GET", "/v1/workspaces/ws_1/webhook", "Bearer nope", 401, "missing or wrong bearer token"},
		{"token prefix", "GET", "/v1/workspaces/ws_1/webhook", "Bearer " + token[:5], 401, "missing or wrong bearer token"},
		{"token with a suffix", "GET", "/v1/workspaces/ws_1/webhook", bearer + "x", 401, "missing or wrong bearer token"},
		{"token in the query string", "GET", "/v1/workspaces/ws_1/webhook?access_token=" + token, "", 401, "missing or wrong bearer token"},
		{"POST to a read-only endpoint", "POST", "/v1/workspaces/ws_1/webhook", bearer, 405, "read-only"},
		{"DELETE of the request log", "DELETE", "/v1/workspaces/ws_1/webhook/requests", bearer, 405, "read-only"},
		{"NUL in the workspace id", "GET", "/v1/workspaces/ws%00_1/webhook", bearer, 400, "workspace id: must"},
		{"unit separator in the workspace id", "GET", "/v1/workspaces/ws%1F1/webhook", bearer, 400, "workspace id: must"},
		{"newline in the workspace id", "GET", "/v1/workspaces/ws%0Aadmin/webhook/requests", bearer, 400, "workspace id: must"},
		{"invalid UTF-8 in the workspace id", "GET", "/v1/workspaces/ws%FF/webhook", bearer, 400, "workspace id: must be valid UTF-8"},
		{"a 300-byte workspace id", "GET", "/v1/workspaces/" + strings.Repeat("a", 300) + "/webhook", bearer, 400, "workspace id: too long"},
		{"a path-traversal id", "GET", "/v1/workspaces/..%2F..%2Fetc/webhook", bearer, 404, "has no webhook"},
		{"a glob as the workspace id", "GET", "/v1/workspaces/ws*/webhook", bearer, 404, "has no webhook"},
		{"an unknown workspace", "GET", "/v1/workspaces/ws_2/webhook", bearer, 404, "has no webhook"},
		{"an unknown path", "GET", "/v1/admin", bearer, 404, "no such admin endpoint"},
		{"a 2 MB Authorization header", "GET", "/v1/workspaces/ws_1/webhook", "Bearer " + strings.Repeat("x", 2<<20), 431, ""},
		{"the real request, for contrast", "GET", "/v1/workspaces/ws_1/webhook", bearer, 200, `"workspace_id": "ws_1"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("%s %s: %d %q, want %d with %q", tc.method, tc.path, res.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

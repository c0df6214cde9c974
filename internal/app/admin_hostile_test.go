package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
)

// TestAdminAPIRefusesHostileRequests: requests an attacker or a broken client
// would send, each with the exact status and the words of its answer. None
// reaches a workspace's data without the token, and none is answered with 5xx.
func TestAdminAPIRefusesHostileRequests(t *testing.T) {
	const token = "admin-token-for-tests"
	c := apptest.NewCluster(t, 1)
	c.Publish(apptest.Configure("ws_1", "https://receiver.example/ws_1", "1h"))
	w := newInProcessWorker(t, c, func(cfg *Config) { cfg.AdminToken = token })
	t.Cleanup(func() { w.publisher.Close(); w.rdb.Close() })
	apptest.RunUntilCleanup(t, "control reader", w.reader.Run)
	testenv.Eventually(t, "ws_1 applied", 30*time.Second, func() bool {
		_, ok := w.registry.Lookup("ws_1")
		return ok
	})
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
		{"POST to a read-only endpoint", "POST", "/v1/workspaces/ws_1/webhook", bearer, 405, ""},
		{"DELETE of the request log", "DELETE", "/v1/workspaces/ws_1/webhook/requests", bearer, 405, ""},
		{"NUL in the workspace id", "GET", "/v1/workspaces/ws%00_1/webhook", bearer, 400, "workspace id: must"},
		{"unit separator in the workspace id", "GET", "/v1/workspaces/ws%1F1/webhook", bearer, 400, "workspace id: must"},
		{"newline in the workspace id", "GET", "/v1/workspaces/ws%0Aadmin/webhook/requests", bearer, 400, "workspace id: must"},
		{"invalid UTF-8 in the workspace id", "GET", "/v1/workspaces/ws%FF/webhook", bearer, 400, "workspace id: must be valid UTF-8"},
		{"a 300-byte workspace id", "GET", "/v1/workspaces/" + strings.Repeat("a", 300) + "/webhook", bearer, 400, "workspace id: too long"},
		{"a path-traversal id", "GET", "/v1/workspaces/..%2F..%2Fetc/webhook", bearer, 404, "has no webhook"},
		{"a glob as the workspace id", "GET", "/v1/workspaces/ws*/webhook", bearer, 404, "has no webhook"},
		{"an unknown workspace", "GET", "/v1/workspaces/ws_2/webhook", bearer, 404, "has no webhook"},
		{"an unknown path", "GET", "/v1/admin", bearer, 404, ""},
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

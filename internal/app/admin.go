package app

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/internal/console"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
)

// Handler serves the worker's HTTP endpoints: probes and metrics without
// authentication, the admin API behind the bearer token, and the console at /.
// Run serves it on HTTPAddr; tests serve it on a server of their own.
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if !w.reader.CaughtUp() {
			http.Error(rw, "control topic not caught up yet", http.StatusServiceUnavailable)
			return
		}
		if err := w.rdb.Ping(r.Context()).Err(); err != nil {
			http.Error(rw, "redis unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := w.consumer.Ping(r.Context()); err != nil {
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
			return
		}
		rw.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", w.metrics.handler)
	mux.HandleFunc("GET /v1/workspaces/{id}/webhook", w.admin(w.serveWebhook))
	mux.HandleFunc("GET /v1/workspaces/{id}/webhook/requests", w.admin(w.serveRequests))
	// The rest of /v1/ is the admin API's, not the console's: it answers in
	// JSON, and every admin endpoint is read-only.
	mux.HandleFunc("/v1/", func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rw.Header().Set("Allow", "GET, HEAD")
			respondError(rw, http.StatusMethodNotAllowed, "the admin API is read-only: GET only")
			return
		}
		respondError(rw, http.StatusNotFound, "no such admin endpoint")
	})
	mux.Handle("/", w.console)
	return mux
}

// admin guards an admin endpoint with the --admin-token bearer token.
func (w *Worker) admin(next http.HandlerFunc) http.HandlerFunc {
	token := w.cfg.AdminToken
	return func(rw http.ResponseWriter, r *http.Request) {
		// What the admin API returns is about customers: never cache it.
		rw.Header().Set("Cache-Control", "no-store")
		if token == "" {
			respondError(rw, http.StatusForbidden,
				"the admin API is off: start the worker with --admin-token (env OUTBOUND_ADMIN_TOKEN) to turn it on")
			return
		}
		presented, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok || !console.SameToken(presented, token) {
			rw.Header().Set("WWW-Authenticate", `Bearer realm="outbound"`)
			respondError(rw, http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer <admin token>)")
			return
		}
		// A workspace id is held to the rule of the control topic's before it
		// is used as a key or quoted in an answer.
		if err := schemas.CheckID(r.PathValue("id")); err != nil {
			respondError(rw, http.StatusBadRequest, "workspace id: "+err.Error())
			return
		}
		next(rw, r)
	}
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" header;
// the scheme is case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// serveWebhook answers GET /v1/workspaces/{id}/webhook from the worker's
// Registry, which follows the control topic within about a second.
func (w *Worker) serveWebhook(rw http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("id")
	wh, ok := w.registry.Lookup(ws)
	if !ok {
		respondError(rw, http.StatusNotFound, fmt.Sprintf("workspace %q has no webhook", ws))
		return
	}
	errs, err := sink.ConsecutiveErrors(r.Context(), w.rdb, w.cfg.RedisKeyPrefix, ws, wh.Epoch)
	if err != nil {
		w.adminFailed(rw, ws, fmt.Errorf("reading consecutive errors: %w", err))
		return
	}
	activity, err := w.logs.Activity(r.Context(), ws)
	if err != nil {
		w.adminFailed(rw, ws, err)
		return
	}
	respondJSON(rw, http.StatusOK, NewWebhookStatus(wh, errs, activity))
}

// serveRequests answers GET /v1/workspaces/{id}/webhook/requests: the request
// log as a file to download.
func (w *Worker) serveRequests(rw http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("id")
	if _, ok := w.registry.Lookup(ws); !ok {
		respondError(rw, http.StatusNotFound, fmt.Sprintf("workspace %q has no webhook", ws))
		return
	}
	reqs, err := w.logs.Requests(r.Context(), ws)
	if err != nil {
		w.adminFailed(rw, ws, err)
		return
	}
	rw.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, webhooklog.DownloadFilename(ws)))
	respondJSON(rw, http.StatusOK, webhooklog.NewRequestLog(ws, reqs))
}

func (w *Worker) adminFailed(rw http.ResponseWriter, ws string, err error) {
	w.log.Warn("serving admin request", zap.String("workspace", ws), zap.Error(err))
	respondError(rw, http.StatusServiceUnavailable, "Redis could not be read; see the worker's log")
}

// WebhookStatus is a workspace's webhook as the admin API and `outbound ctl
// status --json` show it. Field names are part of both interfaces: add fields,
// never rename them.
type WebhookStatus struct {
	Workspace         string                `json:"workspace_id"`
	Config            WebhookConfig         `json:"config"`
	DisabledReason    string                `json:"disabled_reason"`
	ConsecutiveErrors int                   `json:"consecutive_errors"`
	UpdatedAt         time.Time             `json:"updated_at"`
	Activity          []webhooklog.Activity `json:"activity"`
}

// WebhookConfig is what an operator configured, with the secret redacted.
type WebhookConfig struct {
	URL         string `json:"url"`
	Granularity string `json:"granularity"`
	Enabled     bool   `json:"enabled"`
	OwnerEmail  string `json:"owner_email"`
	// Secret is "<redacted>" when a signing secret is set, empty otherwise.
	Secret string `json:"secret"`
}

const redactedSecret = "<redacted>"

// NewWebhookStatus assembles the status of wh; activity is newest first.
func NewWebhookStatus(wh webhook.Webhook, consecutiveErrors int, activity []webhooklog.Activity) WebhookStatus {
	st := WebhookStatus{
		Workspace: wh.Workspace,
		Config: WebhookConfig{URL: urls.Redact(wh.URL), Granularity: string(wh.Granularity),
			Enabled: wh.Enabled, OwnerEmail: wh.OwnerEmail},
		DisabledReason:    wh.DisabledReason,
		ConsecutiveErrors: consecutiveErrors,
		UpdatedAt:         wh.UpdatedAt,
		Activity:          activity,
	}
	if wh.Secret != "" {
		st.Config.Secret = redactedSecret
	}
	if st.Activity == nil {
		st.Activity = []webhooklog.Activity{}
	}
	return st
}

func respondJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	// The status line is out; an encoding error can only be a broken connection.
	_ = webhooklog.WriteJSON(rw, v)
}

func respondError(rw http.ResponseWriter, status int, msg string) {
	respondJSON(rw, status, map[string]string{"error": msg})
}

package console

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/settings"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// maxErrors is the sink's tolerance, as the spec states it: more than 10
// consecutive errors disable a webhook.
const maxErrors = 10

// shownRequests is how many requests the page opens inline; the download
// holds all of them.
const shownRequests = 10

// status is a webhook's state in words.
type status struct {
	// Key is "enabled", "disabled", "auto-disabled" or "none".
	Key, Label string
	// Reason is why it is off, as the control topic recorded it.
	Reason string
}

// Why a webhook was switched off on the page, as its disable message says.
const (
	reasonOperator = "disabled by operator" // control's default reason, as ctl disable leaves it
	reasonOwner    = "switched off by the workspace owner"
)

func statusOf(wh webhook.Webhook) status {
	switch {
	case wh.Enabled:
		return status{Key: "enabled", Label: "Enabled"}
	case strings.HasPrefix(wh.DisabledReason, "auto-disabled"):
		return status{Key: "auto-disabled", Label: "Auto-disabled", Reason: wh.DisabledReason}
	case wh.DisabledReason == reasonOwner:
		return status{Key: "disabled", Label: "Switched off by the owner", Reason: wh.DisabledReason}
	}
	return status{Key: "disabled", Label: "Disabled by an operator", Reason: wh.DisabledReason}
}

type workspaceView struct {
	ID     string
	Exists bool
	Status status
	// Since is when the webhook last changed (for a disabled one: when it was
	// switched off).
	Since  time.Time
	Health sink.Health
	// InBackoff is true while the next attempt waits for Health.BackoffUntil.
	InBackoff bool
	// Waiting is nil when the count could not be read (Kafka did not say how
	// many partitions to read).
	Waiting   *windowing.Waiting
	MaxErrors int
	Pending   bool

	// The form: what is saved, or what was typed when it has Problems.
	URL, Granularity, OwnerEmail string
	HasSecret                    bool
	Granularities                []option
	Problems                     map[string]string // by settings.Field

	Activity  []webhooklog.Activity
	Requests  []webhooklog.Request
	Logged    int
	Chart     chart
	NextDue   string
	OwnerLink string
}

type option struct{ Value, Label string }

var granularities = []option{
	{"none", "Don't aggregate: send each message as soon as it appears"},
	{"1h", "Every hour"}, {"6h", "Every 6 hours"}, {"12h", "Every 12 hours"}, {"24h", "Every 24 hours"},
}

func (c *Console) serveWorkspace(rw http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("id")
	sc, ok := c.workspace(rw, r, ws)
	if !ok {
		return
	}
	v, err := c.load(r.Context(), r, sc, ws)
	if err != nil {
		c.failed(rw, r, err)
		return
	}
	if !v.Exists && !sc.Operator {
		c.message(rw, r, http.StatusNotFound, "No webhook", "This workspace has no webhook any more.")
		return
	}
	c.render(rw, r, http.StatusOK, "workspace.html", view{Title: ws, Workspace: v})
}

// load reads everything the workspace page shows.
func (c *Console) load(ctx context.Context, r *http.Request, sc scope, ws string) (*workspaceView, error) {
	wh, exists, err := control.LoadWebhook(ctx, c.cfg.Redis, control.Keys(c.cfg.Prefix), ws)
	if err != nil {
		return nil, err
	}
	v := &workspaceView{ID: ws, Exists: exists, MaxErrors: maxErrors, Granularities: granularities,
		Granularity: string(webhook.None), Status: status{Key: "none", Label: "Not configured"}}
	// After a save the address names what was saved; the page waits for it.
	if want := r.URL.Query().Get("pending"); want != "" {
		v.Pending = !exists || want != c.digest(wh)
	}
	if !exists {
		return v, nil
	}
	now := c.cfg.Now()
	v.Status, v.Since = statusOf(wh), wh.UpdatedAt
	v.URL, v.Granularity, v.OwnerEmail, v.HasSecret = urls.Redact(wh.URL), string(wh.Granularity), wh.OwnerEmail, wh.Secret != ""
	if v.Health, err = sink.ReadHealth(ctx, c.cfg.Redis, c.cfg.Prefix, ws, wh.Epoch); err != nil {
		return nil, err
	}
	v.InBackoff = wh.Enabled && v.Health.ConsecutiveErrors > 0 && v.Health.BackoffUntil.After(now)
	if v.Waiting, err = c.waiting(ctx, ws); err != nil {
		return nil, err
	}
	if v.Activity, err = c.cfg.Logs.Activity(ctx, ws); err != nil {
		return nil, err
	}
	reqs, err := c.cfg.Logs.Requests(ctx, ws)
	if err != nil {
		return nil, err
	}
	v.Logged = len(reqs)
	hours, err := c.cfg.Logs.Hours(ctx, ws, now, chartHours)
	if err != nil {
		return nil, err
	}
	v.Chart = hourly(hours)
	v.Requests = webhooklog.NewRequestLog(ws, reqs[:min(len(reqs), shownRequests)]).Requests
	v.NextDue = c.nextDue(wh.Granularity, now)
	if sc.Operator && c.cfg.Key != "" {
		v.OwnerLink, _ = ScopedLink(c.cfg.Key, c.baseURL(r), ws, now)
	}
	return v, nil
}

// digest identifies the settings a page is waiting for, so that "pending"
// ends exactly when the materialised state has them. It is a MAC: the URL and
// secret must not be guessable from the page's address.
func (c *Console) digest(wh webhook.Webhook) string {
	data := strings.Join([]string{wh.URL, string(wh.Granularity), strconv.FormatBool(wh.Enabled), wh.OwnerEmail, wh.Secret}, "\x00")
	return hex.EncodeToString(c.sign.mac("pending", data)[:12])
}

// workspaceForm admits a POST to a workspace's page: its CSRF token is right
// and the session may see the workspace. Otherwise it has answered.
func (c *Console) workspaceForm(rw http.ResponseWriter, r *http.Request) (string, scope, bool) {
	ws := r.PathValue("id")
	if !c.csrfOK(r) {
		c.refuseCSRF(rw, r)
		return ws, scope{}, false
	}
	sc, ok := c.workspace(rw, r, ws)
	return ws, sc, ok
}

// saveSettings publishes a webhook.configure from the form, after the same
// checks as `outbound ctl configure`.
func (c *Console) saveSettings(rw http.ResponseWriter, r *http.Request) {
	ws, sc, ok := c.workspaceForm(rw, r)
	if !ok {
		return
	}
	ctx := r.Context()
	old, exists, err := control.LoadWebhook(ctx, c.cfg.Redis, control.Keys(c.cfg.Prefix), ws)
	if err != nil {
		c.failed(rw, r, err)
		return
	}
	if !exists && !sc.Operator {
		c.message(rw, r, http.StatusNotFound, "No webhook", "This workspace has no webhook any more.")
		return
	}
	in := settings.Settings{URL: strings.TrimSpace(r.PostFormValue("url")), Granularity: r.PostFormValue("granularity"),
		OwnerEmail: strings.TrimSpace(r.PostFormValue("owner_email")), Secret: r.PostFormValue("secret")}
	// The page shows the URL redacted: sent back unchanged, it means "keep".
	if exists && in.URL == urls.Redact(old.URL) {
		in.URL = old.URL
	}
	if in.Secret == "" && r.PostFormValue("remove_secret") == "" {
		in.Secret = old.Secret
	}
	if problems := settings.Check(ctx, in, settings.Options{Guard: c.cfg.Guard}); len(problems) > 0 {
		v, err := c.load(ctx, r, sc, ws)
		if err != nil {
			c.failed(rw, r, err)
			return
		}
		v.URL, v.Granularity, v.OwnerEmail = urls.Redact(in.URL), in.Granularity, in.OwnerEmail
		v.Problems = map[string]string{}
		for _, p := range problems {
			msg := p.Msg
			if p.Missing {
				msg = "Required: " + msg + "."
			}
			v.Problems[string(p.Field)] = msg
		}
		c.render(rw, r, http.StatusUnprocessableEntity, "workspace.html", view{Title: ws, Workspace: v})
		return
	}
	enabled := !exists || old.Enabled
	msg := schemas.ControlMessage{Type: schemas.TypeConfigure, WorkspaceID: ws, URL: in.URL, Granularity: in.Granularity,
		Enabled: &enabled, OwnerEmail: in.OwnerEmail, Secret: in.Secret}
	g, _ := webhook.ParseGranularity(in.Granularity) // checked above
	c.publish(rw, r, msg, webhook.Webhook{URL: in.URL, Granularity: g, Enabled: enabled, OwnerEmail: in.OwnerEmail, Secret: in.Secret})
}

// switchWebhook publishes webhook.enable or webhook.disable.
func (c *Console) switchWebhook(rw http.ResponseWriter, r *http.Request) {
	ws, sc, ok := c.workspaceForm(rw, r)
	if !ok {
		return
	}
	wh, exists, err := control.LoadWebhook(r.Context(), c.cfg.Redis, control.Keys(c.cfg.Prefix), ws)
	if err != nil {
		c.failed(rw, r, err)
		return
	}
	if !exists {
		c.message(rw, r, http.StatusNotFound, "No webhook", "Save the settings first: there is no webhook to switch.")
		return
	}
	msg := schemas.ControlMessage{Type: schemas.TypeEnable, WorkspaceID: ws}
	wh.Enabled = r.PostFormValue("on") == "1"
	if !wh.Enabled {
		msg.Type, msg.Reason = schemas.TypeDisable, reasonOperator
		if !sc.Operator {
			msg.Reason = reasonOwner
		}
	}
	c.publish(rw, r, msg, wh)
}

// publish sends msg and sends the browser back to the page, which shows
// "pending" until the materialised state is want.
func (c *Console) publish(rw http.ResponseWriter, r *http.Request, msg schemas.ControlMessage, want webhook.Webhook) {
	if err := c.cfg.Publisher.Publish(r.Context(), msg); err != nil {
		c.failed(rw, r, err)
		return
	}
	http.Redirect(rw, r, "/w/"+url.PathEscape(msg.WorkspaceID)+"?pending="+c.digest(want), http.StatusSeeOther)
}

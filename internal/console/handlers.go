package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
)

type signInView struct {
	Next  string
	Error string
	// Off is true when the worker has no admin token: nobody can sign in.
	Off bool
}

func (c *Console) serveSignIn(rw http.ResponseWriter, r *http.Request) {
	c.render(rw, r, http.StatusOK, "signin.html", view{Title: "Sign in",
		SignIn: &signInView{Next: localPath(r.URL.Query().Get("next")), Off: c.cfg.AdminToken == ""}})
}

func (c *Console) signIn(rw http.ResponseWriter, r *http.Request) {
	if !c.csrfOK(r) {
		c.refuseCSRF(rw, r)
		return
	}
	next := localPath(r.PostFormValue("next"))
	if no := c.signIns.allow(clientAddr(r), c.cfg.Now()); no != nil {
		c.refuseSignIn(rw, r, no, next)
		return
	}
	if c.cfg.AdminToken == "" || !SameToken(r.PostFormValue("token"), c.cfg.AdminToken) {
		c.render(rw, r, http.StatusUnauthorized, "signin.html", view{Title: "Sign in",
			SignIn: &signInView{Next: next, Error: "That is not the admin token.", Off: c.cfg.AdminToken == ""}})
		return
	}
	exp := c.cfg.Now().Add(sessionTTL)
	http.SetCookie(rw, c.cookie(r, sessionCookie, c.sign.token(scope{Operator: true}, exp), exp))
	http.Redirect(rw, r, next, http.StatusSeeOther)
}

func (c *Console) signOut(rw http.ResponseWriter, r *http.Request) {
	if !c.csrfOK(r) {
		c.refuseCSRF(rw, r)
		return
	}
	http.SetCookie(rw, c.cookie(r, sessionCookie, "", time.Unix(1, 0)))
	c.message(rw, r, http.StatusOK, "Signed out", "You are signed out. Sign in again with the admin token, or open your owner link.")
}

// openLink turns an owner link into a session scoped to its workspace, then
// moves the token out of the address bar.
func (c *Console) openLink(rw http.ResponseWriter, r *http.Request) {
	sc, exp, err := c.sign.parse(r.PathValue("token"), c.cfg.Now())
	if err != nil || sc.Operator {
		c.message(rw, r, http.StatusForbidden, "Link not valid",
			"This link is not valid or has expired. Ask your operator for a new one.")
		return
	}
	http.SetCookie(rw, c.cookie(r, sessionCookie, r.PathValue("token"), exp))
	http.Redirect(rw, r, "/w/"+url.PathEscape(sc.Workspace), http.StatusSeeOther)
}

// localPath keeps a redirect target on this site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

func (c *Console) refuseCSRF(rw http.ResponseWriter, r *http.Request) {
	c.message(rw, r, http.StatusForbidden, "Form expired",
		"This form was not sent from this page, or is too old. Go back, reload the page and send it again.")
}

// operator lets operators through; it sends everyone else to sign in, and an
// owner to their own workspace's page only.
func (c *Console) operator(rw http.ResponseWriter, r *http.Request) bool {
	sc, ok := c.who(r)
	switch {
	case !ok:
		http.Redirect(rw, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return false
	case !sc.Operator:
		c.message(rw, r, http.StatusForbidden, "Not for this link", "Your link opens one workspace's page only.")
		return false
	}
	return true
}

// workspace lets through an operator or the owner of workspace ws.
func (c *Console) workspace(rw http.ResponseWriter, r *http.Request, ws string) (scope, bool) {
	sc, ok := c.who(r)
	switch {
	case !ok && r.Method == http.MethodGet:
		http.Redirect(rw, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return sc, false
	case !ok:
		c.message(rw, r, http.StatusForbidden, "Signed out", "Your session ended. Sign in or open your link again.")
		return sc, false
	case !sc.Operator && sc.Workspace != ws:
		c.message(rw, r, http.StatusForbidden, "Not for this link", "Your link opens one workspace's page only.")
		return sc, false
	case schemas.CheckID(ws) != nil:
		c.message(rw, r, http.StatusNotFound, "No such workspace", "A workspace id "+schemas.CheckID(ws).Error()+".")
		return sc, false
	}
	return sc, true
}

type overviewView struct {
	Query, Filter string
	Rows          []overviewRow
	Total         int
}

type overviewRow struct {
	ID, Granularity string
	State           status
	Errors          int
}

// serveOverview lists every workspace from the control materialisation,
// searchable by id and filterable by state.
func (c *Console) serveOverview(rw http.ResponseWriter, r *http.Request) {
	if !c.operator(rw, r) {
		return
	}
	ctx := r.Context()
	st, err := control.LoadState(ctx, c.cfg.Redis, control.Keys(c.cfg.Prefix))
	if err != nil {
		c.failed(rw, r, err)
		return
	}
	var enabled []webhook.Webhook
	for _, wh := range st.Webhooks {
		if wh.Enabled {
			enabled = append(enabled, wh)
		}
	}
	errs, err := sink.ConsecutiveErrorsOf(ctx, c.cfg.Redis, c.cfg.Prefix, enabled)
	if err != nil {
		c.failed(rw, r, err)
		return
	}
	q := r.URL.Query()
	v := &overviewView{Query: strings.TrimSpace(q.Get("q")), Filter: q.Get("filter"), Total: len(st.Webhooks)}
	for id, wh := range st.Webhooks {
		row := overviewRow{ID: id, Granularity: string(wh.Granularity), State: statusOf(wh), Errors: errs[id]}
		switch {
		case v.Query != "" && !strings.Contains(strings.ToLower(id), strings.ToLower(v.Query)):
		case v.Filter == "disabled" && wh.Enabled:
		case v.Filter == "failing" && row.Errors == 0:
		default:
			v.Rows = append(v.Rows, row)
		}
	}
	slices.SortFunc(v.Rows, func(a, b overviewRow) int { return strings.Compare(a.ID, b.ID) })
	c.render(rw, r, http.StatusOK, "overview.html", view{Title: "Workspaces", Overview: v})
}

func (c *Console) downloadRequests(rw http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("id")
	if _, ok := c.workspace(rw, r, ws); !ok {
		return
	}
	reqs, err := c.cfg.Logs.Requests(r.Context(), ws)
	if err != nil {
		c.failed(rw, r, err)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Content-Disposition", `attachment; filename="`+webhooklog.DownloadFilename(ws)+`"`)
	_ = webhooklog.WriteJSON(rw, webhooklog.NewRequestLog(ws, reqs))
}

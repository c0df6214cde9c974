// Package console is the workspace page that the worker serves at `/`: the
// product spec's "outbound tab" (granularity, URL, on/off, activity log, the
// request-log download), the webhook's status and last 24 hours, and an
// operator overview of every workspace.
//
// It is server-rendered html/template with embedded assets and no script:
// every form works without JavaScript. It reads what the workers keep in Redis
// (the control materialisation, the sink's health, the webhook logs) and
// changes nothing itself: saving publishes a control message through
// control.Publisher, checked first by internal/settings, exactly as `outbound
// ctl` does, and the page says "pending" until the workers' materialised state
// reflects it.
//
// Access: operators sign in with the admin token and get a session cookie
// (HttpOnly, SameSite=Strict, Secure behind TLS); a workspace owner opens a
// link signed with the server key (HMAC-SHA256) that expires and is scoped to
// one workspace, and never shows another workspace nor the overview. Every
// form that changes something carries a CSRF token bound to a cookie by the
// same key. Without a configured key a random one is drawn at start: sessions
// and owner links then end with the process and work on this worker only.
package console

package control

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/smtptest"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

// The Notifier's mail client speaks each TLS mode and authenticates, against a
// real SMTP server on a loopback socket.
func TestNotifierSendsOverEachTLSModeWithAuth(t *testing.T) {
	cert, roots, err := smtptest.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		server   smtptest.TLSMode
		scheme   string
		mode     SMTPTLSMode
		wantTLS  bool
		wantSent bool
	}{
		{name: "STARTTLS required", server: smtptest.TLSStartTLS, scheme: "smtp", mode: SMTPStartTLSRequired, wantTLS: true, wantSent: true},
		{name: "STARTTLS when offered", server: smtptest.TLSStartTLS, scheme: "smtp", mode: SMTPStartTLS, wantTLS: true, wantSent: true},
		{name: "implicit TLS", server: smtptest.TLSImplicit, scheme: "smtps", wantTLS: true, wantSent: true},
		{name: "plain text to localhost", server: smtptest.TLSNone, scheme: "smtp", mode: SMTPNoTLS, wantSent: true},
		{name: "STARTTLS required but not offered", server: smtptest.TLSNone, scheme: "smtp", mode: SMTPStartTLSRequired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := smtptest.NewTLS("127.0.0.1:0", tc.server, cert)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			n, err := NewNotifier(NotifierConfig{
				Brokers: []string{"127.0.0.1:9"}, Redis: redis.NewClient(&redis.Options{Addr: "127.0.0.1:9"}),
				SMTPURL: tc.scheme + "://" + srv.Addr(), TLS: tc.mode, RootCAs: roots,
				Username: "mailer", Password: "s3cret", From: "outbound@example.com",
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			w := webhook.Webhook{Workspace: "ws_1", URL: "https://hooks.example/h?token=abc", OwnerEmail: "owner@example.com"}
			msg := schemas.ControlMessage{Type: schemas.TypeAutoDisabled, WorkspaceID: "ws_1", ConsecutiveErrors: 11, LastError: "HTTP 500"}
			err = n.send(ctx, "ctl_1", w, msg)
			if !tc.wantSent {
				if err == nil {
					t.Fatal("send succeeded, want an error: the server offers no STARTTLS")
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %q shows the password", err)
				}
				if len(srv.Messages()) != 0 {
					t.Fatal("the server received the email in plain text")
				}
				return
			}
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			msgs, err := srv.WaitFor(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[0]
			if m.TLS != tc.wantTLS || m.AuthUser != "mailer" || m.To[0] != "owner@example.com" {
				t.Fatalf("got TLS %v, AUTH as %q, to %q; want TLS %v, AUTH as mailer, to owner@example.com", m.TLS, m.AuthUser, m.To, tc.wantTLS)
			}
			if strings.Contains(m.Body, "token=abc") || !strings.Contains(m.Body, "token=xxxxx") {
				t.Fatalf("email body shows the URL's query token:\n%s", m.Body)
			}
		})
	}
}

// The email is for the workspace's owner: what happened, the last error as the
// sink worded it, and what the owner can do. Operator commands are in
// docs/operations.md, not here.
func TestOwnerEmail(t *testing.T) {
	at := schemas.Timestamp{Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	w := webhook.Webhook{Workspace: "ws_1", URL: "https://u:pw@hooks.example/h?token=abc", OwnerEmail: "owner@example.com"}
	for _, lastError := range []string{
		"the receiver answered HTTP 500 Internal Server Error",
		"could not connect: dial tcp 203.0.113.9:443: connect: connection refused",
	} {
		t.Run(lastError, func(t *testing.T) {
			msg := schemas.ControlMessage{Type: schemas.TypeAutoDisabled, WorkspaceID: "ws_1", ConsecutiveErrors: 11,
				LastError: lastError, At: &at}
			m, err := composeEmail("ctl_1", "outbound@example.com", w, msg, "", at.Time.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			part, err := m.GetParts()[0].GetContent()
			if err != nil {
				t.Fatal(err)
			}
			want := "The webhook of your workspace ws_1 was turned off on 2026-03-04 at 05:06 UTC, because 11 deliveries in a row to it failed.\n\n" +
				"Webhook URL: https://u:xxxxx@hooks.example/h?token=xxxxx\n" +
				"Last error:  " + lastError + "\n\n" +
				"While the webhook is off, no messages are sent to it.\n\n" +
				"What to do:\n" +
				"  1. Fix the receiver at this URL, so that it answers a POST with a 2xx status.\n" +
				"  2. Then turn the webhook back on in the workspace settings. Deliveries resume with the messages that arrive after that.\n\n" +
				"Reference for support: ctl_1\n"
			if body := string(part); body != want {
				t.Fatalf("body:\n%s\nwant:\n%s", body, want)
			}
			if s := m.GetGenHeader("Subject"); len(s) != 1 || s[0] != "Your webhook for workspace ws_1 was turned off after 11 consecutive errors" {
				t.Errorf("subject %q", s)
			}
		})
	}
}

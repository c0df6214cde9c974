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

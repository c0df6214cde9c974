package smtptest_test

import (
	"context"
	"errors"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/smtptest"
)

func TestServerAcceptsMail(t *testing.T) {
	tests := []struct {
		name     string
		auth     smtp.Auth
		to       []string
		data     string
		wantUser string
		wantSubj string
		wantBody string
	}{
		{
			name:     "plain text",
			to:       []string{"owner@example.com"},
			data:     "Subject: hello\r\nFrom: a@example.com\r\n\r\nline one\r\n.leading dot\r\n",
			wantSubj: "hello",
			wantBody: "line one\n.leading dot\n",
		},
		{
			name:     "PLAIN auth and two recipients",
			auth:     smtp.PlainAuth("", "user", "pass", "127.0.0.1"),
			to:       []string{"a@example.com", "b@example.com"},
			data:     "Subject: two\r\n\r\nbody\r\n",
			wantUser: "user",
			wantSubj: "two",
			wantBody: "body\n",
		},
		{
			name: "encoded subject and quoted-printable body",
			to:   []string{"owner@example.com"},
			data: "Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=utf-8\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve =3D soft=\r\nbreak\r\n",
			wantSubj: "café",
			wantBody: "naïve = softbreak\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			if err := smtp.SendMail(srv.Addr(), tc.auth, "from@example.com", tc.to, []byte(tc.data)); err != nil {
				t.Fatalf("SendMail: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			msgs, err := srv.WaitFor(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 {
				t.Fatalf("got %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.From != "from@example.com" || !slices.Equal(m.To, tc.to) {
				t.Errorf("envelope = %q -> %q, want from@example.com -> %q", m.From, m.To, tc.to)
			}
			if m.AuthUser != tc.wantUser {
				t.Errorf("AuthUser = %q, want %q", m.AuthUser, tc.wantUser)
			}
			if m.ParseError != nil {
				t.Errorf("ParseError = %v", m.ParseError)
			}
			if m.Subject != tc.wantSubj {
				t.Errorf("Subject = %q, want %q", m.Subject, tc.wantSubj)
			}
			if m.Body != tc.wantBody {
				t.Errorf("Body = %q, want %q", m.Body, tc.wantBody)
			}
		})
	}
}

func TestFailNextRejectsThenAccepts(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailNext(1)
	msg := []byte("Subject: x\r\n\r\ny\r\n")
	err := smtp.SendMail(srv.Addr(), nil, "f@example.com", []string{"t@example.com"}, msg)
	var perr *textproto.Error
	if !errors.As(err, &perr) || perr.Code != 451 {
		t.Fatalf("first send: err = %v, want a 451 reply", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("stored %d messages after a failed transaction, want 0", n)
	}
	if err := smtp.SendMail(srv.Addr(), nil, "f@example.com", []string{"t@example.com"}, msg); err != nil {
		t.Fatalf("second send: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("stored %d messages, want 1", n)
	}
}

func TestWaitForHonoursContext(t *testing.T) {
	srv := smtptest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := srv.WaitFor(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor on an idle server: err = %v, want DeadlineExceeded", err)
	}
}

func TestNewAndCloseWithOnMessage(t *testing.T) {
	srv, err := smtptest.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan smtptest.Message, 1)
	srv.OnMessage(func(m smtptest.Message) { got <- m })
	if !strings.HasPrefix(srv.URL(), "smtp://127.0.0.1:") {
		t.Errorf("URL() = %q, want smtp://127.0.0.1:port", srv.URL())
	}
	if err := smtp.SendMail(srv.Addr(), nil, "f@example.com", []string{"t@example.com"}, []byte("Subject: s\r\n\r\nb\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Subject != "s" {
			t.Errorf("OnMessage got subject %q, want s", m.Subject)
		}
	default:
		t.Fatal("OnMessage was not called before the send returned")
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := smtp.SendMail(srv.Addr(), nil, "f@example.com", []string{"t@example.com"}, []byte("x")); err == nil {
		t.Fatal("send after Close succeeded")
	}
}

package settings

import (
	"context"
	"strings"
	"testing"

	"github.com/outbound-webhooks/outbound/sink"
)

func TestCheck(t *testing.T) {
	valid := Settings{URL: "https://hooks.example/ws_1", Granularity: "1h", OwnerEmail: "owner@example.com"}
	tests := []struct {
		name  string
		edit  func(*Settings)
		guard bool
		want  map[Field]string // field -> part of the message; empty: no problem
	}{
		{name: "valid", edit: func(*Settings) {}},
		{name: "valid with guard", edit: func(*Settings) {}, guard: true},
		{name: "everything missing", edit: func(s *Settings) { *s = Settings{} },
			want: map[Field]string{URL: "address", Granularity: "none, 1h", OwnerEmail: "emailed"}},
		{name: "ftp url", edit: func(s *Settings) { s.URL = "ftp://u:s3cret@hooks.example/" }, want: map[Field]string{URL: "scheme"}},
		{name: "loopback with guard", edit: func(s *Settings) { s.URL = "http://127.0.0.1:8080/h" }, guard: true,
			want: map[Field]string{URL: "loopback"}},
		{name: "private with guard", edit: func(s *Settings) { s.URL = "http://10.1.2.3/h" }, guard: true,
			want: map[Field]string{URL: "private"}},
		{name: "localhost resolves to loopback", edit: func(s *Settings) { s.URL = "http://localhost:8080/h" }, guard: true,
			want: map[Field]string{URL: "resolves to"}},
		{name: "loopback without guard", edit: func(s *Settings) { s.URL = "http://127.0.0.1:8080/h" }},
		{name: "redis port", edit: func(s *Settings) { s.URL = "http://hooks.example:6379/h" }, guard: true,
			want: map[Field]string{URL: "6379"}},
		{name: "granularity 2h", edit: func(s *Settings) { s.Granularity = "2h" }, want: map[Field]string{Granularity: `"2h"`}},
		{name: "not an email", edit: func(s *Settings) { s.OwnerEmail = "owner at example.com" }, want: map[Field]string{OwnerEmail: "not an email"}},
		{name: "display name", edit: func(s *Settings) { s.OwnerEmail = "Owner <owner@example.com>" }, want: map[Field]string{OwnerEmail: "not an email"}},
		{name: "two addresses", edit: func(s *Settings) { s.OwnerEmail = "a@example.com, b@example.com" }, want: map[Field]string{OwnerEmail: "not an email"}},
		{name: "bad whsec secret", edit: func(s *Settings) { s.Secret = "whsec_not base64!" }, want: map[Field]string{Secret: "base64"}},
		{name: "plain secret", edit: func(s *Settings) { s.Secret = "any string" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid
			tc.edit(&s)
			got := map[Field]string{}
			var opts Options
			if tc.guard {
				g, err := sink.ClientConfig{}.Guard()
				if err != nil {
					t.Fatal(err)
				}
				opts.Guard = &g
			}
			for _, p := range Check(context.Background(), s, opts) {
				got[p.Field] = p.Msg
				if strings.Contains(p.Msg, "s3cret") {
					t.Errorf("%s: message quotes the URL: %q", p.Field, p.Msg)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %v, want fields %v", got, tc.want)
			}
			for f, part := range tc.want {
				if !strings.Contains(got[f], part) {
					t.Errorf("%s: %q, want it to contain %q", f, got[f], part)
				}
			}
		})
	}
}

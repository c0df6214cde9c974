package urls_test

import (
	"strings"
	"testing"

	"github.com/outbound-webhooks/outbound/internal/urls"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "nothing secret", in: "https://hooks.example/ws_1", want: "https://hooks.example/ws_1"},
		{name: "password", in: "https://zapier:s3cret@hooks.example/ws_1", want: "https://zapier:xxxxx@hooks.example/ws_1"},
		{name: "user without password", in: "https://zapier@hooks.example/", want: "https://zapier@hooks.example/"},
		{name: "every query value", in: "https://hooks.example/h?token=abc&sig=def&empty=", want: "https://hooks.example/h?token=xxxxx&sig=xxxxx&empty=xxxxx"},
		{name: "a bare parameter may be a token", in: "https://hooks.example/h?s3cr3t&a=1", want: "https://hooks.example/h?xxxxx&a=xxxxx"},
		{name: "escaped key kept as written", in: "https://hooks.example/h?api%20key=abc", want: "https://hooks.example/h?api%20key=xxxxx"},
		{name: "password and query", in: "http://u:p@h.example:8080/p?k=v#frag", want: "http://u:xxxxx@h.example:8080/p?k=xxxxx#frag"},
		{name: "SMTP URL", in: "smtp://mailer:pw@mail.example:587", want: "smtp://mailer:xxxxx@mail.example:587"},
		{name: "unparsable", in: "http://u:p@h.example:port/", want: "xxxxx"},
		{name: "control character", in: "https://u:p@h.example/\n", want: "xxxxx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := urls.Redact(tc.in)
			if got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
			// The admin API redacts what the sink logged, redacted already.
			if again := urls.Redact(got); again != got {
				t.Fatalf("Redact(%q) = %q: redacting twice changes it", got, again)
			}
		})
	}
}

func TestCheckHTTP(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // "" for a valid URL
	}{
		{name: "https", in: "https://hooks.example/ws_1?token=x"},
		{name: "http with port and credentials", in: "http://u:p@10.0.0.1:8080/h"},
		{name: "upper-case scheme", in: "HTTPS://hooks.example/"},
		{name: "IPv6 host", in: "http://[::1]:80/"},
		{name: "empty", in: "", wantErr: "scheme must be http or https"},
		{name: "ftp", in: "ftp://files.example/x", wantErr: "scheme must be http or https"},
		{name: "relative", in: "/hooks/ws_1", wantErr: "scheme must be http or https"},
		{name: "scheme-relative", in: "//hooks.example/x", wantErr: "scheme must be http or https"},
		{name: "no host", in: "https:///path", wantErr: "no host"},
		{name: "port but no host", in: "http://:8080/", wantErr: "no host"},
		{name: "opaque", in: "https:hooks.example", wantErr: "no host"},
		{name: "newline", in: "https://hooks.example/\nX-Injected: 1", wantErr: "control character"},
		{name: "bad escape in password", in: "https://u:s3cr%zz@hooks.example/", wantErr: "not a well-formed URL"},
		{name: "bad port", in: "https://u:s3cret@hooks.example:s3cret/", wantErr: "not a well-formed URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := urls.CheckHTTP(tc.in)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("CheckHTTP(%q) = %v, want nil", tc.in, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("CheckHTTP(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
			case err != nil && (strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "hooks.example")):
				t.Fatalf("CheckHTTP(%q) = %v: the error quotes the URL", tc.in, err)
			}
		})
	}
}

package console

import (
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	s := signer{key: []byte("k1")}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	owner := s.token(scope{Workspace: "ws_1"}, now.Add(time.Hour))
	tests := []struct {
		name  string
		tok   string
		at    time.Time
		want  scope
		valid bool
	}{
		{name: "owner", tok: owner, at: now, want: scope{Workspace: "ws_1"}, valid: true},
		{name: "operator", tok: s.token(scope{Operator: true}, now.Add(time.Hour)), at: now, want: scope{Operator: true}, valid: true},
		{name: "expired", tok: owner, at: now.Add(time.Hour)},
		{name: "another key", tok: signer{key: []byte("k2")}.token(scope{Workspace: "ws_1"}, now.Add(time.Hour)), at: now},
		{name: "payload swapped", tok: strings.Split(s.token(scope{Workspace: "ws_2"}, now.Add(time.Hour)), ".")[0] + "." + strings.Split(owner, ".")[1], at: now},
		{name: "a workspace id with the separator", tok: s.token(scope{Workspace: "ws|op|"}, now.Add(time.Hour)), at: now, want: scope{Workspace: "ws|op|"}, valid: true},
		{name: "no signature", tok: strings.Split(owner, ".")[0], at: now},
		{name: "empty", tok: "", at: now},
		{name: "another spelling of the signature", tok: respelled(owner), at: now},
		{name: "a CSRF MAC is not a session", tok: strings.Split(owner, ".")[0] + "." + b64.EncodeToString(s.mac("csrf", strings.Split(owner, ".")[0])), at: now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := s.parse(tc.tok, tc.at)
			if (err == nil) != tc.valid || got != tc.want {
				t.Fatalf("parse = %+v, %v; want %+v, valid %v", got, err, tc.want, tc.valid)
			}
		})
	}
}

// respelled changes a token's last character in a bit that the signature's
// encoding leaves unused (a 32-byte MAC is 258 bits of base64): a lenient
// decoder reads the same MAC from it.
func respelled(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last^1])
}

func TestScopedLink(t *testing.T) {
	now := time.Now()
	link, err := ScopedLink("key", "https://console.example/", "ws 1", now)
	if err != nil || !strings.HasPrefix(link, "https://console.example/o/") {
		t.Fatalf("ScopedLink = %q, %v", link, err)
	}
	sc, exp, err := signer{key: []byte("key")}.parse(strings.TrimPrefix(link, "https://console.example/o/"), now)
	if err != nil || sc.Workspace != "ws 1" || sc.Operator || exp.Sub(now) < LinkTTL-time.Second {
		t.Errorf("the link parses as %+v until %s (%v)", sc, exp, err)
	}
	for _, bad := range [][2]string{{"", "https://console.example"}, {"key", ""}} {
		if _, err := ScopedLink(bad[0], bad[1], "ws_1", now); err == nil {
			t.Errorf("ScopedLink(%q, %q) made a link", bad[0], bad[1])
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{"/w/ws_1?x=1": "/w/ws_1?x=1", "": "/", "https://evil.example/": "/",
		"//evil.example/": "/", `/\evil.example`: "/"} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

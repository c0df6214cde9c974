package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// How long what the console signs stays valid.
const (
	// LinkTTL is the life of an owner's scoped link: long enough to read an
	// auto-disable email after a weekend.
	LinkTTL = 7 * 24 * time.Hour
	// sessionTTL is the life of an operator's sign-in.
	sessionTTL = 12 * time.Hour
)

const (
	sessionCookie = "outbound_session"
	csrfCookie    = "outbound_csrf"
	csrfField     = "csrf"
)

// scope is who a request acts as: an operator (every workspace and the
// overview) or the owner of one workspace.
type scope struct {
	Operator  bool
	Workspace string
}

// signer signs and checks the console's tokens. Each purpose signs under its
// own label, so that a token made for one job is never accepted for another.
type signer struct{ key []byte }

func (s signer) mac(purpose string, data string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(data))
	return m.Sum(nil)
}

// b64 refuses encodings whose unused trailing bits are not zero: otherwise a
// token would have more than one spelling, and a link changed in its last
// character could still open the page.
var b64 = base64.RawURLEncoding.Strict()

// token is a signed scope that expires: base64(kind|unix expiry|workspace) "."
// base64(mac). It is both an owner's link and a session cookie's value. The
// workspace comes last, so an id that contains '|' still parses.
func (s signer) token(sc scope, exp time.Time) string {
	kind := "ws"
	if sc.Operator {
		kind = "op"
	}
	payload := b64.EncodeToString([]byte(kind + "|" + strconv.FormatInt(exp.Unix(), 10) + "|" + sc.Workspace))
	return payload + "." + b64.EncodeToString(s.mac("session", payload))
}

var errBadToken = errors.New("not a valid or current link")

// parse checks a token's signature and expiry and returns its scope.
func (s signer) parse(tok string, now time.Time) (scope, time.Time, error) {
	payload, sig, ok := strings.Cut(tok, ".")
	got, err := b64.DecodeString(sig)
	if !ok || err != nil || !hmac.Equal(got, s.mac("session", payload)) {
		return scope{}, time.Time{}, errBadToken
	}
	raw, err := b64.DecodeString(payload)
	if err != nil {
		return scope{}, time.Time{}, errBadToken
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 {
		return scope{}, time.Time{}, errBadToken
	}
	unix, err := strconv.ParseInt(parts[1], 10, 64)
	exp := time.Unix(unix, 0)
	if err != nil || !now.Before(exp) {
		return scope{}, time.Time{}, errBadToken
	}
	switch {
	case parts[0] == "op" && parts[2] == "":
		return scope{Operator: true}, exp, nil
	case parts[0] == "ws" && parts[2] != "":
		return scope{Workspace: parts[2]}, exp, nil
	}
	return scope{}, time.Time{}, errBadToken
}

// ScopedLink is the owner link of workspace ws: publicURL/o/<token>, valid for
// LinkTTL from now. key is the console key (--console-key): links made with it
// open on every worker that has the same key.
func ScopedLink(key, publicURL, ws string, now time.Time) (string, error) {
	if key == "" {
		return "", errors.New("making an owner link: no console key (--console-key, env OUTBOUND_CONSOLE_KEY)")
	}
	if publicURL == "" {
		return "", errors.New("making an owner link: no public URL (--public-url, env OUTBOUND_PUBLIC_URL)")
	}
	tok := signer{key: []byte(key)}.token(scope{Workspace: ws}, now.Add(LinkTTL))
	return strings.TrimRight(publicURL, "/") + "/o/" + tok, nil
}

// SameToken compares a presented secret token with the expected one in time
// independent of both: comparing digests hides the expected token's length.
func SameToken(presented, want string) bool {
	p, w := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(p[:], w[:]) == 1
}

// randomKey draws a key for a console started without one.
func randomKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("drawing a console key: %w", err)
	}
	return k, nil
}

// csrfToken returns the token the forms of this response carry, setting the
// cookie it is bound to when the browser has none yet. The token is a MAC of
// the cookie: an attacker who can plant a cookie still cannot forge the field.
func (c *Console) csrfToken(rw http.ResponseWriter, r *http.Request) (string, error) {
	seed := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 64 {
		seed = ck.Value
	} else {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("drawing a CSRF seed: %w", err)
		}
		seed = hex.EncodeToString(b)
		http.SetCookie(rw, c.cookie(r, csrfCookie, seed, time.Time{}))
	}
	return b64.EncodeToString(c.sign.mac("csrf", seed)), nil
}

// csrfOK reports whether a POST carries the token bound to its cookie.
func (c *Console) csrfOK(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil {
		return false
	}
	got, err := b64.DecodeString(r.PostFormValue(csrfField))
	return err == nil && hmac.Equal(got, c.sign.mac("csrf", ck.Value))
}

// cookie is one of the console's cookies: never readable by script, never
// sent on a cross-site request, and Secure whenever the page is served over
// TLS (directly, or behind a proxy whose public URL is https). A zero exp makes
// a browser-session cookie; a past one deletes it.
func (c *Console) cookie(r *http.Request, name, value string, exp time.Time) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || strings.HasPrefix(c.cfg.PublicURL, "https://")}
	if !exp.IsZero() {
		ck.Expires = exp
		ck.MaxAge = max(int(time.Until(exp).Seconds()), -1)
	}
	return ck
}

// who returns the scope of r's session, if it has a valid one.
func (c *Console) who(r *http.Request) (scope, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return scope{}, false
	}
	sc, _, err := c.sign.parse(ck.Value, c.cfg.Now())
	return sc, err == nil
}

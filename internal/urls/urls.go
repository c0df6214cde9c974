package urls

import (
	"errors"
	"net/url"
	"strings"

	"github.com/outbound-webhooks/outbound/internal/ctrlchar"
)

// Marker replaces every redacted part. It is the marker of url.URL.Redacted, so
// a redacted password looks the same whichever code redacted it.
const Marker = "xxxxx"

// Redact returns raw with the user-info password and the value of every query
// parameter replaced by Marker. A parameter without "=" is replaced whole, since
// it may itself be a token. A string that does not parse as a URL is replaced
// whole, since any part of it may be a secret. Redact(Redact(s)) is Redact(s).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Marker
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), Marker)
	}
	if u.RawQuery != "" {
		params := strings.Split(u.RawQuery, "&")
		for i, p := range params {
			switch key, _, found := strings.Cut(p, "="); {
			case found:
				params[i] = key + "=" + Marker
			case p != "":
				params[i] = Marker
			}
		}
		u.RawQuery = strings.Join(params, "&")
	}
	return u.String()
}

// CheckHTTP returns an error unless raw is an absolute http or https URL with a
// host and without control characters. The error says what is wrong without
// quoting raw.
func CheckHTTP(raw string) error {
	if ctrlchar.Contains(raw) {
		return errors.New("contains a control character")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		// url.Error quotes the URL, and its cause may quote part of it (a bad
		// escape in a password): say only that it does not parse.
		return errors.New("not a well-formed URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Hostname() == "":
		return errors.New("no host")
	}
	return nil
}

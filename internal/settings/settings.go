package settings

import (
	"context"
	"errors"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
)

// Field names a setting; the value is the `outbound ctl configure` flag's name.
type Field string

// The settings of webhook.configure that a person types.
const (
	URL         Field = "url"
	Granularity Field = "granularity"
	OwnerEmail  Field = "owner-email"
	Secret      Field = "secret"
)

// Settings are the typed values, as entered.
type Settings struct {
	URL, Granularity, OwnerEmail, Secret string
}

// Problem is one thing wrong with one setting. Msg never quotes the URL,
// which may carry a password.
type Problem struct {
	Field Field
	// Missing is true when the setting is empty but required; Msg then says
	// why it is required.
	Missing bool
	Msg     string
}

// Options say what Check knows about the workers.
type Options struct {
	// Guard, when set, is the workers' SSRF guard (sink.ClientConfig.Guard):
	// a URL it would refuse, by address or by port, is refused here first.
	Guard *sink.Guard
	// Resolver looks up a URL's host name when Guard is set (default
	// net.DefaultResolver).
	Resolver *net.Resolver
}

// lookupTimeout bounds the DNS lookup of a URL's host: a slow resolver makes
// the check skip the lookup rather than hold the form.
const lookupTimeout = 2 * time.Second

// Check returns every problem of s, in field order; none means s may be
// published.
func Check(ctx context.Context, s Settings, opts Options) []Problem {
	var out []Problem
	switch {
	case s.URL == "":
		out = append(out, Problem{Field: URL, Missing: true, Msg: "the address the webhook calls"})
	case urls.CheckHTTP(s.URL) != nil:
		out = append(out, Problem{Field: URL, Msg: urls.CheckHTTP(s.URL).Error()})
	case opts.Guard != nil:
		if msg := refusedTarget(ctx, s.URL, *opts.Guard, opts.Resolver); msg != "" {
			out = append(out, Problem{Field: URL, Msg: msg})
		}
	}
	if s.Granularity == "" {
		out = append(out, Problem{Field: Granularity, Missing: true, Msg: "none, 1h, 6h, 12h or 24h"})
	} else if _, err := webhook.ParseGranularity(s.Granularity); err != nil {
		out = append(out, Problem{Field: Granularity, Msg: err.Error()})
	}
	if s.OwnerEmail == "" {
		out = append(out, Problem{Field: OwnerEmail, Missing: true, Msg: "the owner is emailed when the webhook is auto-disabled"})
	} else if !isAddress(s.OwnerEmail) {
		out = append(out, Problem{Field: OwnerEmail, Msg: "not an email address (want one address, like owner@example.com)"})
	}
	if err := sink.ValidateSecret(s.Secret); err != nil {
		out = append(out, Problem{Field: Secret, Msg: "starts with whsec_ but the rest is not base64"})
	}
	return out
}

// isAddress accepts one bare address: "Name <a@b>" or a list would make the
// notifier email someone other than what the page shows.
func isAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	_, domain, _ := strings.Cut(s, "@")
	return domain != "" && !strings.HasPrefix(domain, ".")
}

// refusedTarget says why g would refuse to deliver to raw, or "" when it
// would not (or the name does not resolve now: the delivery will say): the
// port and a literal address first, then every address the host resolves to.
func refusedTarget(ctx context.Context, raw string, g sink.Guard, r *net.Resolver) string {
	var blocked *sink.BlockedAddressError
	why := func(err error) string {
		if !errors.As(err, &blocked) {
			return ""
		}
		if blocked.ByPort {
			return blocked.Reason + ": the workers refuse to call it"
		}
		return "its address is " + blocked.Reason + ": the workers refuse to call it while their SSRF guard is on"
	}
	if msg := why(g.CheckURL(raw)); msg != "" {
		return msg
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	if net.ParseIP(host) != nil {
		return "" // judged by CheckURL
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	ips, err := r.LookupIP(ctx, "ip", host)
	if err != nil {
		return ""
	}
	for _, ip := range ips {
		if msg := why(g.CheckAddress(net.JoinHostPort(ip.String(), port))); msg != "" {
			return "the host resolves to " + ip.String() + " and " + msg
		}
	}
	return ""
}

package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/outbound-webhooks/outbound/internal/ctrlchar"
	"github.com/outbound-webhooks/outbound/internal/retry"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

// SMTPTLSMode is how the Notifier secures its connection to the SMTP server.
type SMTPTLSMode string

const (
	// SMTPNoTLS talks plain text, even to a server that offers STARTTLS.
	SMTPNoTLS SMTPTLSMode = "none"
	// SMTPStartTLS upgrades with STARTTLS when the server offers it and talks
	// plain text otherwise; with credentials, a server without STARTTLS (other
	// than on localhost) fails every send rather than receive them in plain
	// text.
	SMTPStartTLS SMTPTLSMode = "starttls"
	// SMTPStartTLSRequired upgrades with STARTTLS or does not send: a server
	// that does not offer it fails every send.
	SMTPStartTLSRequired SMTPTLSMode = "starttls-required"
	// SMTPImplicitTLS speaks TLS from the first byte (smtps, port 465).
	SMTPImplicitTLS SMTPTLSMode = "tls"
)

// smtpTarget is where and how the Notifier sends: SMTPURL with TLS and the
// credentials resolved.
type smtpTarget struct {
	host           string
	port           int
	mode           SMTPTLSMode
	user, password string
	tls            *tls.Config
	redacted       string // SMTPURL for errors and logs
}

// newSMTPTarget checks cfg's SMTP fields and resolves their defaults. Its errors
// show the URL redacted: never the password.
func newSMTPTarget(cfg NotifierConfig) (smtpTarget, error) {
	t := smtpTarget{redacted: urls.Redact(cfg.SMTPURL), mode: cfg.TLS}
	u, err := url.Parse(cfg.SMTPURL)
	if err != nil {
		return t, fmt.Errorf("parsing SMTP URL %s: not a well-formed URL", t.redacted) // url.Error would quote the password
	}
	switch u.Scheme {
	case "smtp":
		if t.mode == "" {
			t.mode = SMTPStartTLS
		}
	case "smtps":
		if t.mode != "" && t.mode != SMTPImplicitTLS {
			return t, fmt.Errorf("parsing SMTP URL %s: smtps means TLS %q, not %q", t.redacted, SMTPImplicitTLS, t.mode)
		}
		t.mode = SMTPImplicitTLS
	default:
		return t, fmt.Errorf("parsing SMTP URL %s: scheme must be smtp or smtps", t.redacted)
	}
	switch t.mode {
	case SMTPNoTLS, SMTPStartTLS, SMTPStartTLSRequired, SMTPImplicitTLS:
	default:
		return t, fmt.Errorf("checking SMTP TLS mode %q: want %s, %s, %s or %s",
			t.mode, SMTPNoTLS, SMTPStartTLS, SMTPStartTLSRequired, SMTPImplicitTLS)
	}

	t.host = u.Hostname()
	if t.host == "" {
		return t, fmt.Errorf("parsing SMTP URL %s: no host", t.redacted)
	}
	t.port = 25
	if t.mode == SMTPImplicitTLS {
		t.port = 465
	}
	if p := u.Port(); p != "" {
		if t.port, err = strconv.Atoi(p); err != nil || t.port < 1 || t.port > 65535 {
			return t, fmt.Errorf("parsing SMTP URL %s: port must be 1 to 65535", t.redacted)
		}
	}

	t.user, t.password = cfg.Username, cfg.Password
	switch {
	case u.User != nil && (cfg.Username != "" || cfg.Password != ""):
		return t, errors.New("checking SMTP credentials: given both in SMTPURL and as Username and Password")
	case u.User != nil:
		t.user = u.User.Username()
		t.password, _ = u.User.Password()
	case cfg.Password != "" && cfg.Username == "":
		return t, errors.New("checking SMTP credentials: a Password without a Username")
	}
	if t.mode == SMTPNoTLS && t.password != "" && !isLocalhost(t.host) {
		return t, fmt.Errorf("checking SMTP credentials: TLS %q would send the password in plain text to %s", SMTPNoTLS, t.host)
	}
	t.tls = &tls.Config{ServerName: t.host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	return t, nil
}

// isLocalhost is go-mail's rule for where credentials may go in plain text.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// send runs one SMTP conversation that delivers the email for the event. An
// error that retrying cannot fix (an unusable owner address, a recipient the
// server refuses for good) is marked retry.Permanent.
func (n *Notifier) send(ctx context.Context, id string, w webhook.Webhook, msg schemas.ControlMessage) error {
	link := ""
	if n.cfg.PageLink != nil {
		link = n.cfg.PageLink(msg.WorkspaceID)
	}
	m, err := composeEmail(id, n.cfg.From, w, msg, link, n.cfg.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	defer cancel()
	c, err := gomail.NewClient(n.smtp.host, n.smtp.options(ctx, n.cfg.SendTimeout)...)
	if err != nil {
		return fmt.Errorf("configuring SMTP client for %s: %w", n.smtp.redacted, err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		err = fmt.Errorf("sending email via %s: %w", n.smtp.redacted, err)
		var serr *gomail.SendError
		if errors.As(err, &serr) && serr.Reason == gomail.ErrSMTPRcptTo && !serr.IsTemp() {
			return retry.Permanent(err)
		}
		return err
	}
	return nil
}

// options configures one go-mail client for t. go-mail bounds each command by
// timeout but does not watch a context, so the connection it dials is closed
// when ctx ends: a shutdown does not wait for a hung server.
func (t smtpTarget) options(ctx context.Context, timeout time.Duration) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(t.port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(t.tls),
		gomail.WithDialContextFunc(func(dctx context.Context, network, addr string) (net.Conn, error) {
			var d interface {
				DialContext(context.Context, string, string) (net.Conn, error)
			} = &net.Dialer{}
			if t.mode == SMTPImplicitTLS {
				d = &tls.Dialer{Config: t.tls}
			}
			conn, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			context.AfterFunc(ctx, func() { _ = conn.Close() })
			return conn, nil
		}),
	}
	switch t.mode {
	case SMTPNoTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case SMTPStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case SMTPStartTLSRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case SMTPImplicitTLS:
		// The dial function speaks TLS already; WithSSL keeps go-mail from
		// trying STARTTLS inside it.
		opts = append(opts, gomail.WithSSL())
	}
	if t.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(t.user), gomail.WithPassword(t.password))
	}
	return opts
}

// EmailSubject is the subject of the auto-disable email.
func EmailSubject(ws string, consecutiveErrors int) string {
	return fmt.Sprintf("Your webhook for workspace %s was turned off after %d consecutive errors",
		ctrlchar.ToSpace(ws), consecutiveErrors)
}

// composeEmail builds the email for an auto-disable event. It is written for
// the workspace's owner, who knows the receiver and the workspace settings but
// not this system: what happened, the last error, and what to do. (What an
// operator can do is in docs/operations.md.) link, when set, is the owner's
// signed link to the workspace page. Values from the control topic are
// kept on one line each, so they cannot forge headers or lines of the body.
func composeEmail(id, from string, w webhook.Webhook, msg schemas.ControlMessage, link string, now time.Time) (*gomail.Msg, error) {
	ws := ctrlchar.ToSpace(msg.WorkspaceID)
	when := now.UTC()
	if msg.At != nil {
		when = msg.At.UTC()
	}

	var body strings.Builder
	fmt.Fprintf(&body, "The webhook of your workspace %s was turned off on %s, because %d deliveries in a row to it failed.\n\n",
		ws, when.Format("2006-01-02 at 15:04 UTC"), msg.ConsecutiveErrors)
	fmt.Fprintf(&body, "Webhook URL: %s\n", urls.Redact(w.URL))
	fmt.Fprintf(&body, "Last error:  %s\n\n", ctrlchar.ToSpace(msg.LastError))
	body.WriteString("While the webhook is off, no messages are sent to it.\n\n")
	body.WriteString("What to do:\n")
	body.WriteString("  1. Fix the receiver at this URL, so that it answers a POST with a 2xx status.\n")
	body.WriteString("  2. Then turn the webhook back on in the workspace settings. Deliveries resume with the messages that arrive after that.\n\n")
	if link != "" {
		fmt.Fprintf(&body, "You can fix the URL and turn the webhook back on from its page:\n\n    %s\n\n", link)
	}
	fmt.Fprintf(&body, "Reference for support: %s\n", ctrlchar.ToSpace(id))

	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.From(from); err != nil {
		return nil, fmt.Errorf("setting From: %w", err) // checked by NewNotifier
	}
	if err := m.To(w.OwnerEmail); err != nil {
		return nil, retry.Permanent(fmt.Errorf("parsing owner email: %w", err))
	}
	m.Subject(EmailSubject(ws, msg.ConsecutiveErrors))
	m.SetDateWithValue(now.UTC())
	m.SetMessageIDWithValue(messageIDPart(id) + "@outbound")
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, body.String())
	return m, nil
}

// messageIDPart keeps only the characters a Message-ID's left part may hold.
func messageIDPart(id string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '.' || r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')) {
			return r
		}
		return '_'
	}, id)
}

package control

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

// DefaultNotifierGroup is the consumer group of the owner notifier.
const DefaultNotifierGroup = "outbound-notifier"

// keyNotified is the prefix of the per-event dedupe key: "sending:<token>" while
// one notifier holds the claim, "sent" once the email was accepted.
const keyNotified = "outbound:notified:"

// NotifierConfig configures a Notifier. Brokers, Redis, SMTPURL and From are
// required.
type NotifierConfig struct {
	Brokers []string
	// Topic is the control topic; DefaultTopic when empty.
	Topic string
	// GroupID is the notifier's consumer group; DefaultNotifierGroup when empty.
	// Every instance in one group shares the work; each event is emailed once.
	GroupID string
	// Redis holds the dedupe claims and the materialisation the owner is read
	// from (written by the workers' Readers).
	Redis redis.UniversalClient
	// SMTPURL is smtp://[user:password@]host[:port] (port 25 by default; STARTTLS
	// when the server offers it) or smtps://... (implicit TLS, port 465 by
	// default). Credentials are sent with PLAIN only when a user is given, and
	// net/smtp refuses to send them unencrypted to anything but localhost.
	SMTPURL string
	// From is the sender address of the emails.
	From string
	// Logger defaults to a no-op logger.
	Logger *zap.Logger

	// LookupWait bounds how long an event waits for the Redis materialisation to
	// include it (the workers apply records within about a second) before the
	// notifier falls back to its own view of the records it consumed (10s).
	LookupWait time.Duration
	// ClaimTTL is how long a claim protects an event whose sender died mid-send
	// before another instance may send it (2m). It must exceed SendTimeout.
	ClaimTTL time.Duration
	// SentTTL is how long "sent" is remembered (7 days). An event redelivered
	// later than that would be emailed again, so MaxAge must not exceed it.
	SentTTL time.Duration
	// MaxAge skips auto-disable events older than this (SentTTL by default), so a
	// new consumer group reading the topic from its start does not email events
	// whose dedupe keys have expired.
	MaxAge time.Duration
	// SendTimeout bounds one SMTP conversation (30s).
	SendTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delays between retries of a failed
	// send, and of Kafka and Redis failures (1s and 1m).
	MinBackoff, MaxBackoff time.Duration
	// SessionTimeout and HeartbeatInterval tune the consumer group: a crashed
	// instance's partitions move after SessionTimeout (10s, the broker's minimum
	// is 6s by default; heartbeat 1s).
	SessionTimeout, HeartbeatInterval time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// NotifierStats counts what a Notifier did with auto-disable events.
type NotifierStats struct {
	Sent          int64 // emails accepted by the SMTP server
	Duplicates    int64 // events already emailed (republished, or redelivered after a rebalance)
	NoOwner       int64 // events for a workspace with no known owner_email
	Superseded    int64 // events for an epoch the webhook has left (re-configured or re-enabled)
	TooOld        int64 // events older than MaxAge
	Undeliverable int64 // events whose recipient the SMTP server refused for good
	Invalid       int64 // undecodable control records
}

// Notifier emails a workspace's owner when its webhook is auto-disabled. It reads
// the control topic as a member of a consumer group and commits an event only
// after its email was accepted (or it was found to need none): at least once, and
// never twice for one event id, since a Redis claim is taken before sending.
type Notifier struct {
	cfg  NotifierConfig
	log  *zap.Logger
	smtp smtpTarget
	view *Registry // the records this instance consumed: the owner fallback

	started atomic.Bool
	stats   struct {
		sent, duplicates, noOwner, superseded, tooOld, undeliverable, invalid atomic.Int64
	}
}

// smtpTarget is the parsed SMTPURL.
type smtpTarget struct {
	addr, host     string
	implicitTLS    bool
	user, password string
	redacted       string
}

func parseSMTPURL(raw string) (smtpTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return smtpTarget{}, errors.New("parsing SMTP URL: not a URL") // url.Error would quote the password
	}
	t := smtpTarget{host: u.Hostname(), redacted: u.Redacted()}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "25"
		}
	case "smtps":
		t.implicitTLS = true
		if port == "" {
			port = "465"
		}
	default:
		return smtpTarget{}, fmt.Errorf("parsing SMTP URL %s: scheme must be smtp or smtps", t.redacted)
	}
	if t.host == "" {
		return smtpTarget{}, fmt.Errorf("parsing SMTP URL %s: no host", t.redacted)
	}
	t.addr = net.JoinHostPort(t.host, port)
	if u.User != nil {
		t.user = u.User.Username()
		t.password, _ = u.User.Password()
	}
	return t, nil
}

// NewNotifier validates cfg, fills its defaults and returns a Notifier.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("configuring notifier: no Kafka brokers")
	}
	if cfg.Redis == nil {
		return nil, errors.New("configuring notifier: no Redis client")
	}
	target, err := parseSMTPURL(cfg.SMTPURL)
	if err != nil {
		return nil, fmt.Errorf("configuring notifier: %w", err)
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("configuring notifier: parsing From: %w", err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.GroupID == "" {
		cfg.GroupID = DefaultNotifierGroup
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def(&cfg.LookupWait, 10*time.Second)
	def(&cfg.ClaimTTL, 2*time.Minute)
	def(&cfg.SentTTL, 7*24*time.Hour)
	def(&cfg.MaxAge, cfg.SentTTL)
	def(&cfg.SendTimeout, 30*time.Second)
	def(&cfg.MinBackoff, time.Second)
	def(&cfg.MaxBackoff, time.Minute)
	def(&cfg.SessionTimeout, 10*time.Second)
	def(&cfg.HeartbeatInterval, time.Second)
	switch {
	case cfg.ClaimTTL <= cfg.SendTimeout:
		return nil, fmt.Errorf("configuring notifier: ClaimTTL %s must exceed SendTimeout %s", cfg.ClaimTTL, cfg.SendTimeout)
	case cfg.MaxAge > cfg.SentTTL:
		return nil, fmt.Errorf("configuring notifier: MaxAge %s exceeds SentTTL %s", cfg.MaxAge, cfg.SentTTL)
	case cfg.MaxBackoff < cfg.MinBackoff:
		return nil, fmt.Errorf("configuring notifier: MaxBackoff %s is below MinBackoff %s", cfg.MaxBackoff, cfg.MinBackoff)
	}
	return &Notifier{
		cfg:  cfg,
		log:  cfg.Logger.With(zap.String("topic", cfg.Topic), zap.String("group", cfg.GroupID)),
		smtp: target,
		view: NewRegistry(),
	}, nil
}

// Stats returns the notifier's counters.
func (n *Notifier) Stats() NotifierStats {
	return NotifierStats{
		Sent:          n.stats.sent.Load(),
		Duplicates:    n.stats.duplicates.Load(),
		NoOwner:       n.stats.noOwner.Load(),
		Superseded:    n.stats.superseded.Load(),
		TooOld:        n.stats.tooOld.Load(),
		Undeliverable: n.stats.undeliverable.Load(),
		Invalid:       n.stats.invalid.Load(),
	}
}

// Run consumes the control topic in the notifier's group until ctx ends, and
// returns nil then. It may be called once.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("running notifier: already running")
	}
	fetchFailures := newStreak(n.log, "fetching control records")
	kr := kafka.NewReader(kafka.ReaderConfig{
		Brokers: n.cfg.Brokers,
		Topic:   n.cfg.Topic,
		GroupID: n.cfg.GroupID,
		// A new group must see the events published before it first joined.
		StartOffset: kafka.FirstOffset,
		// Synchronous commits, issued only after an event is done.
		CommitInterval:    0,
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           2 * time.Second, // a long poll; see ReaderConfig.MaxWait
		SessionTimeout:    n.cfg.SessionTimeout,
		HeartbeatInterval: n.cfg.HeartbeatInterval,
		RebalanceTimeout:  n.cfg.SessionTimeout,
		JoinGroupBackoff:  time.Second,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			fetchFailures.fail(fmt.Errorf(format, args...))
		}),
	})
	defer func() {
		if err := kr.Close(); err != nil {
			n.log.Debug("closing notifier reader", zap.Error(err))
		}
	}()

	b := newBackOff(n.cfg.MinBackoff, n.cfg.MaxBackoff)
	for {
		m, ok := fetchNext(ctx, kr, b, fetchFailures)
		if !ok {
			return nil
		}
		if err := n.handle(ctx, m); err != nil {
			return nil // only ctx ends handle with an error
		}
		n.commit(ctx, kr, m)
	}
}

// commit commits m, retrying a few times. A commit that still fails is not fatal:
// the event is done and its dedupe key says "sent", so its redelivery after a
// rebalance or restart is a no-op.
func (n *Notifier) commit(ctx context.Context, kr *kafka.Reader, m kafka.Message) {
	b := newBackOff(100*time.Millisecond, time.Second)
	var err error
	for range 3 {
		if err = kr.CommitMessages(ctx, m); err == nil || ctx.Err() != nil {
			return
		}
		if sleep(ctx, b.NextBackOff()) != nil {
			return
		}
	}
	n.log.Warn("committing control offset; the event may be seen again and skipped",
		zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(err))
}

// handle does what event m needs; it returns an error only when ctx ended.
func (n *Notifier) handle(ctx context.Context, m kafka.Message) error {
	log := n.log.With(zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset))
	msg, err := schemas.DecodeControl(m.Value)
	if err != nil {
		n.stats.invalid.Add(1)
		log.Warn("skipping undecodable control record", zap.Error(err))
		return nil
	}
	if msg.At == nil && !m.Time.IsZero() {
		msg.At = &schemas.Timestamp{Time: m.Time.UTC()}
	}
	// The view's state before this record decides whether an auto-disable took
	// effect, so look it up before applying the record.
	before, beforeOK := n.view.Lookup(msg.WorkspaceID)
	_, _ = n.view.apply(m.Partition, m.Offset, msg) // the Readers log invalid records
	if msg.Type != schemas.TypeAutoDisabled {
		return nil
	}
	log = log.With(zap.String("workspace", msg.WorkspaceID), zap.String("event", msg.ID))
	if age := n.cfg.Now().Sub(msg.At.Time); age > n.cfg.MaxAge {
		n.stats.tooOld.Add(1)
		log.Warn("skipping auto-disable event older than MaxAge", zap.Duration("age", age))
		return nil
	}

	w, ok, err := n.lookup(ctx, log, m.Partition, m.Offset, msg.WorkspaceID)
	if err != nil {
		return err
	}
	if !ok {
		w, ok = before, beforeOK
	}
	switch {
	case ok && msg.Epoch != 0 && msg.Epoch != w.Epoch:
		// Re-configured or re-enabled since the failures were counted: either the
		// auto-disable was stale and never took effect, or someone has already
		// acted on it. Either way there is nothing to tell the owner.
		n.stats.superseded.Add(1)
		log.Info("skipping superseded auto-disable event",
			zap.Int64("event_epoch", msg.Epoch), zap.Int64("epoch", w.Epoch))
		return nil
	case !ok || w.OwnerEmail == "":
		n.stats.noOwner.Add(1)
		log.Warn("no owner email for auto-disabled webhook; nobody notified", zap.Bool("known", ok))
		return nil
	}

	id := msg.ID
	if id == "" {
		// Publisher always sets an id; a hand-written record is identified by its
		// position instead.
		id = fmt.Sprintf("%s-%d-%d", n.cfg.Topic, m.Partition, m.Offset)
	}
	return n.notify(ctx, log, id, w, msg)
}

// lookup returns the workspace's webhook from the Redis materialisation once the
// materialisation includes the event at (partition, offset), so that a configure
// published just before the event is seen. ok is false when the materialisation
// did not get there within LookupWait, or has no such workspace.
func (n *Notifier) lookup(ctx context.Context, log *zap.Logger, partition int, offset int64, ws string) (webhook.Webhook, bool, error) {
	wctx, cancel := context.WithTimeout(ctx, n.cfg.LookupWait)
	defer cancel()
	for {
		off, ok, err := materialisedOffset(wctx, n.cfg.Redis, partition)
		if err == nil && ok && off >= offset {
			w, found, err := LoadWebhook(wctx, n.cfg.Redis, ws)
			if err == nil {
				return w, found, nil
			}
			log.Warn("loading webhook from Redis; using the notifier's own view", zap.Error(err))
			return webhook.Webhook{}, false, ctx.Err()
		}
		if err := sleep(wctx, 100*time.Millisecond); err != nil {
			if ctx.Err() != nil {
				return webhook.Webhook{}, false, ctx.Err()
			}
			log.Warn("control materialisation is behind; using the notifier's own view",
				zap.Duration("waited", n.cfg.LookupWait))
			return webhook.Webhook{}, false, nil
		}
	}
}

// permanentError marks a send that can never succeed (the server refused the
// recipient for good); retrying it would block every later event.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// notify sends the email for event id once: it claims the event in Redis, sends,
// and marks it sent; a failed send releases the claim and is retried with backoff.
// It returns an error only when ctx ended.
func (n *Notifier) notify(ctx context.Context, log *zap.Logger, id string, w webhook.Webhook, msg schemas.ControlMessage) error {
	key := keyNotified + id
	token, err := randomToken()
	if err != nil {
		return err // crypto/rand does not fail on supported platforms
	}
	claim := "sending:" + token
	redisFailures := newStreak(log, "claiming notification in Redis")
	sendFailures := newStreak(log, "sending owner email")
	b := newBackOff(n.cfg.MinBackoff, n.cfg.MaxBackoff)
	for {
		claimed, err := n.cfg.Redis.SetNX(ctx, key, claim, n.cfg.ClaimTTL).Result()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			redisFailures.fail(err)
			if err := sleep(ctx, b.NextBackOff()); err != nil {
				return err
			}
			continue
		}
		redisFailures.ok()
		if !claimed {
			state, err := n.cfg.Redis.Get(ctx, key).Result()
			if err == nil && state == "sent" {
				n.stats.duplicates.Add(1)
				log.Debug("owner already notified of this event")
				return nil
			}
			// Another instance is sending (or died sending: its claim expires
			// after ClaimTTL); wait for it rather than send in parallel.
			if err := sleep(ctx, b.NextBackOff()); err != nil {
				return err
			}
			continue
		}

		err = n.send(ctx, id, w, msg)
		if err == nil {
			sendFailures.ok()
			n.markSent(ctx, log, key, claim)
			n.stats.sent.Add(1)
			log.Info("owner notified of auto-disabled webhook", zap.String("to", w.OwnerEmail))
			return nil
		}
		n.release(ctx, log, key, claim)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if perr := (permanentError{}); errors.As(err, &perr) {
			n.stats.undeliverable.Add(1)
			log.Error("owner email refused for good; nobody notified",
				zap.String("to", w.OwnerEmail), zap.Error(err))
			return nil
		}
		sendFailures.fail(err)
		if err := sleep(ctx, b.NextBackOff()); err != nil {
			return err
		}
	}
}

var markSentScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'sent', 'PX', ARGV[2])
  return 1
end
return 0
`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// markSent turns the claim into "sent". If Redis stays down, the claim expires
// and a redelivery of the event could email it again: at least once, not exactly
// once, in that case.
func (n *Notifier) markSent(ctx context.Context, log *zap.Logger, key, claim string) {
	// The email is out: record it even if shutdown has begun, or a redelivery
	// after the claim expires would send it again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = retry(ctx, newStreak(log, "marking notification sent in Redis"),
		newBackOff(100*time.Millisecond, n.cfg.MaxBackoff), func() error {
			return markSentScript.Run(ctx, n.cfg.Redis, []string{key}, claim, n.cfg.SentTTL.Milliseconds()).Err()
		})
}

// release drops the claim after a failed send so that a retry, here or in another
// instance, can take it at once. If it fails the claim simply expires.
func (n *Notifier) release(ctx context.Context, log *zap.Logger, key, claim string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := releaseScript.Run(ctx, n.cfg.Redis, []string{key}, claim).Err(); err != nil {
		log.Warn("releasing notification claim; it expires on its own", zap.Error(err))
	}
}

func randomToken() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating claim token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// send runs one SMTP conversation that delivers the email for the event.
func (n *Notifier) send(ctx context.Context, id string, w webhook.Webhook, msg schemas.ControlMessage) error {
	to, err := mail.ParseAddress(w.OwnerEmail)
	if err != nil {
		return permanentError{fmt.Errorf("parsing owner email: %w", err)}
	}
	from, _ := mail.ParseAddress(n.cfg.From) // checked by NewNotifier
	body := composeEmail(id, from, to, w, msg, n.cfg.Now())

	ctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	defer cancel()
	conn, err := n.dial(ctx)
	if err != nil {
		return err
	}
	// net/smtp has no context support: a deadline bounds every read and write,
	// and cancellation closes the connection under it.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, n.smtp.host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("greeting SMTP server %s: %w", n.smtp.redacted, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && !n.smtp.implicitTLS {
		if err := c.StartTLS(&tls.Config{ServerName: n.smtp.host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("starting TLS with %s: %w", n.smtp.redacted, err)
		}
	}
	if n.smtp.user != "" {
		if err := c.Auth(smtp.PlainAuth("", n.smtp.user, n.smtp.password, n.smtp.host)); err != nil {
			return fmt.Errorf("authenticating to %s: %w", n.smtp.redacted, err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("sending MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		var perr *textproto.Error
		if errors.As(err, &perr) && perr.Code >= 500 {
			return permanentError{fmt.Errorf("sending RCPT TO: %w", err)}
		}
		return fmt.Errorf("sending RCPT TO: %w", err)
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("starting DATA: %w", err)
	}
	if _, err := wc.Write(body); err != nil {
		return fmt.Errorf("writing message: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("ending DATA: %w", err)
	}
	// The message is accepted; a failing QUIT changes nothing about that.
	_ = c.Quit()
	return nil
}

func (n *Notifier) dial(ctx context.Context) (net.Conn, error) {
	if n.smtp.implicitTLS {
		d := &tls.Dialer{Config: &tls.Config{ServerName: n.smtp.host, MinVersion: tls.VersionTLS12}}
		conn, err := d.DialContext(ctx, "tcp", n.smtp.addr)
		if err != nil {
			return nil, fmt.Errorf("dialling SMTP server %s: %w", n.smtp.redacted, err)
		}
		return conn, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", n.smtp.addr)
	if err != nil {
		return nil, fmt.Errorf("dialling SMTP server %s: %w", n.smtp.redacted, err)
	}
	return conn, nil
}

// EmailSubject is the subject of the auto-disable email.
func EmailSubject(ws string, consecutiveErrors int) string {
	return fmt.Sprintf("outbound: webhook for workspace %s was disabled after %d consecutive errors",
		oneLine(ws), consecutiveErrors)
}

// composeEmail renders the RFC 5322 message for an auto-disable event.
func composeEmail(id string, from, to *mail.Address, w webhook.Webhook, msg schemas.ControlMessage, now time.Time) []byte {
	ws := oneLine(msg.WorkspaceID)
	webhookURL := w.URL
	if u, err := url.Parse(w.URL); err == nil {
		webhookURL = u.Redacted()
	}
	when := now.UTC()
	if msg.At != nil {
		when = msg.At.UTC()
	}

	var body strings.Builder
	fmt.Fprintf(&body, "The webhook of workspace %s was disabled automatically after %d consecutive delivery errors.\n\n",
		ws, msg.ConsecutiveErrors)
	fmt.Fprintf(&body, "Webhook URL:        %s\n", webhookURL)
	fmt.Fprintf(&body, "Consecutive errors: %d\n", msg.ConsecutiveErrors)
	fmt.Fprintf(&body, "Last error:         %s\n", oneLine(msg.LastError))
	fmt.Fprintf(&body, "Disabled at:        %s\n\n", when.Format("2006-01-02 15:04:05 UTC"))
	body.WriteString("No messages are delivered to this URL while the webhook is disabled.\n\n")
	body.WriteString("Once the receiver works again, re-enable the webhook with\n\n")
	fmt.Fprintf(&body, "    outbound ctl enable --workspace %s\n\n", ws)
	fmt.Fprintf(&body, "or by publishing a webhook.enable message for workspace %s on the control topic.\n", ws)
	body.WriteString("Re-enabling starts a fresh error count.\n\n")
	fmt.Fprintf(&body, "Event id: %s\n", oneLine(id))

	var m strings.Builder
	header := func(k, v string) { fmt.Fprintf(&m, "%s: %s\r\n", k, v) }
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", EmailSubject(ws, msg.ConsecutiveErrors)))
	header("Date", now.UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+messageIDPart(id)+"@outbound>")
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	m.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&m)
	_, _ = qp.Write([]byte(strings.ReplaceAll(body.String(), "\n", "\r\n")))
	_ = qp.Close()
	return []byte(m.String())
}

// oneLine keeps values from the control topic from breaking lines or headers.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
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

package control

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/retry"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

// DefaultNotifierGroup is the consumer group of the owner notifier.
const DefaultNotifierGroup = "outbound-notifier"

// NotifierConfig configures a Notifier. Brokers, Redis, SMTPURL and From are
// required.
type NotifierConfig struct {
	Brokers []string
	// Kafka is how to reach the brokers (TLS, SASL); the zero value is plaintext.
	Kafka kafkaconn.Conn
	// Topic is the control topic; DefaultTopic when empty.
	Topic string
	// GroupID is the notifier's consumer group; DefaultNotifierGroup when empty.
	// Every instance in one group shares the work; each event is emailed once.
	GroupID string
	// Redis holds the dedupe claims and the materialisation the owner is read
	// from (written by the workers' Readers).
	Redis redis.UniversalClient
	// Keys names its keys (DefaultKeys when empty).
	Keys Keys
	// SMTPURL is smtp://[user:password@]host[:port] (port 25 by default) or
	// smtps://[user:password@]host[:port] (implicit TLS, port 465 by default).
	SMTPURL string
	// TLS is how the connection to the SMTP server is secured; see SMTPTLSMode.
	// The default is SMTPStartTLS for smtp:// and SMTPImplicitTLS for smtps://,
	// which allows no other mode.
	TLS SMTPTLSMode
	// Username and Password, when Username is set, authenticate with AUTH PLAIN.
	// They are an alternative to credentials in SMTPURL (giving both is an
	// error) that keeps the password out of a URL. Credentials are never sent in
	// plain text except to localhost: a send that would fails instead.
	Username, Password string
	// RootCAs verifies the SMTP server's certificate; the system's roots when
	// nil.
	RootCAs *x509.CertPool
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
	// PageLink, when set, returns a link to the workspace's page that the
	// email offers for fixing and re-enabling the webhook ("" for none).
	PageLink func(workspace string) string
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
	cfg   NotifierConfig
	log   *zap.Logger
	smtp  smtpTarget
	view  *Registry    // the records this instance consumed: the owner fallback
	retry retry.Policy // failed sends, and Kafka and Redis failures

	started atomic.Bool
	stats   struct {
		sent, duplicates, noOwner, superseded, tooOld, undeliverable, invalid atomic.Int64
	}
}

// NewNotifier validates cfg, fills its defaults and returns a Notifier.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("configuring notifier: no Kafka brokers")
	}
	if cfg.Redis == nil {
		return nil, errors.New("configuring notifier: no Redis client")
	}
	target, err := newSMTPTarget(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring notifier: %w", err)
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("configuring notifier: parsing From: %w", err)
	}
	cfg.Topic = cmp.Or(cfg.Topic, DefaultTopic)
	cfg.GroupID = cmp.Or(cfg.GroupID, DefaultNotifierGroup)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	defaultDuration(&cfg.LookupWait, 10*time.Second)
	defaultDuration(&cfg.ClaimTTL, 2*time.Minute)
	defaultDuration(&cfg.SentTTL, 7*24*time.Hour)
	defaultDuration(&cfg.MaxAge, cfg.SentTTL)
	defaultDuration(&cfg.SendTimeout, 30*time.Second)
	defaultDuration(&cfg.MinBackoff, time.Second)
	defaultDuration(&cfg.MaxBackoff, time.Minute)
	defaultDuration(&cfg.SessionTimeout, 10*time.Second)
	defaultDuration(&cfg.HeartbeatInterval, time.Second)
	switch {
	case cfg.ClaimTTL <= cfg.SendTimeout:
		return nil, fmt.Errorf("configuring notifier: ClaimTTL %s must exceed SendTimeout %s", cfg.ClaimTTL, cfg.SendTimeout)
	case cfg.MaxAge > cfg.SentTTL:
		return nil, fmt.Errorf("configuring notifier: MaxAge %s exceeds SentTTL %s", cfg.MaxAge, cfg.SentTTL)
	case cfg.MaxBackoff < cfg.MinBackoff:
		return nil, fmt.Errorf("configuring notifier: MaxBackoff %s is below MinBackoff %s", cfg.MaxBackoff, cfg.MinBackoff)
	}
	return &Notifier{
		cfg:   cfg,
		log:   cfg.Logger.With(zap.String("topic", cfg.Topic), zap.String("group", cfg.GroupID)),
		smtp:  target,
		view:  NewRegistry(),
		retry: retry.Policy{Initial: cfg.MinBackoff, Max: cfg.MaxBackoff},
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
		Dialer:  n.cfg.Kafka.Dialer(),
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

	for {
		m, ok := fetchNext(ctx, n.log, kr, n.retry, fetchFailures)
		if !ok {
			return nil
		}
		if err := n.handle(ctx, m); err != nil {
			return nil // only ctx ends handle with an error
		}
		n.commit(ctx, kr, m)
	}
}

// commitRetry bounds the commit of a done event: three attempts within about a
// second and a half.
var commitRetry = retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second, Attempts: 3}

// commit commits m, retrying a few times. A commit that still fails is not fatal:
// the event is done and its dedupe key says "sent", so its redelivery after a
// rebalance or restart is a no-op.
func (n *Notifier) commit(ctx context.Context, kr *kafka.Reader, m kafka.Message) {
	log := n.log.With(zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset))
	err := commitRetry.Do(ctx, log, "committing control offset", func() error {
		return kr.CommitMessages(ctx, m)
	})
	if err != nil && ctx.Err() == nil {
		log.Warn("committing control offset; the event may be seen again and skipped", zap.Error(err))
	}
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
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		off, ok, err := materialisedOffset(wctx, n.cfg.Redis, n.cfg.Keys, partition)
		if err == nil && ok && off >= offset {
			w, found, err := LoadWebhook(wctx, n.cfg.Redis, n.cfg.Keys, ws)
			if err == nil {
				return w, found, nil
			}
			log.Warn("loading webhook from Redis; using the notifier's own view", zap.Error(err))
			return webhook.Webhook{}, false, ctx.Err()
		}
		select {
		case <-poll.C:
		case <-wctx.Done():
			if ctx.Err() != nil {
				return webhook.Webhook{}, false, ctx.Err()
			}
			log.Warn("control materialisation is behind; using the notifier's own view",
				zap.Duration("waited", n.cfg.LookupWait))
			return webhook.Webhook{}, false, nil
		}
	}
}

// errClaimedElsewhere is the attempt's error while another notifier holds the
// event's claim: this one waits for the other's outcome rather than send too.
var errClaimedElsewhere = errors.New("another notifier is sending this email; waiting for it")

// notify sends the email for event id once: it claims the event in Redis, sends,
// and marks it sent; a failed send releases the claim and is retried with backoff,
// unless the server refused the recipient for good. It returns an error only when
// ctx ended.
func (n *Notifier) notify(ctx context.Context, log *zap.Logger, id string, w webhook.Webhook, msg schemas.ControlMessage) error {
	key := n.cfg.Keys.notified(id)
	token, err := randomToken()
	if err != nil {
		return err // crypto/rand does not fail on supported platforms
	}
	claim := "sending:" + token
	var duplicate bool
	err = n.retry.Do(ctx, log, "notifying owner", func() error {
		claimed, err := n.cfg.Redis.SetNX(ctx, key, claim, n.cfg.ClaimTTL).Result()
		if err != nil {
			return fmt.Errorf("claiming notification in Redis: %w", err)
		}
		if !claimed {
			if state, err := n.cfg.Redis.Get(ctx, key).Result(); err == nil && state == "sent" {
				duplicate = true
				return nil
			}
			// Another instance is sending (or died sending: its claim expires
			// after ClaimTTL).
			return errClaimedElsewhere
		}
		if err := n.send(ctx, id, w, msg); err != nil {
			n.release(ctx, log, key, claim)
			return err
		}
		n.markSent(ctx, log, key, claim)
		return nil
	})
	switch {
	case err == nil && duplicate:
		n.stats.duplicates.Add(1)
		log.Debug("owner already notified of this event")
	case err == nil:
		n.stats.sent.Add(1)
		log.Info("owner notified of auto-disabled webhook", zap.String("to", w.OwnerEmail))
	case ctx.Err() != nil:
		return ctx.Err()
	default: // a permanent error: retrying cannot deliver it
		n.stats.undeliverable.Add(1)
		log.Error("owner email refused for good; nobody notified",
			zap.String("to", w.OwnerEmail), zap.Error(err))
	}
	return nil
}

// markSent turns the claim into "sent". If Redis stays down, the claim expires
// and a redelivery of the event could email it again: at least once, not exactly
// once, in that case.
func (n *Notifier) markSent(ctx context.Context, log *zap.Logger, key, claim string) {
	// The email is out: record it even if shutdown has begun, or a redelivery
	// after the claim expires would send it again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	markRetry := retry.Policy{Initial: 100 * time.Millisecond, Max: n.cfg.MaxBackoff}
	err := markRetry.Do(ctx, log, "marking notification sent in Redis", func() error {
		return markSentScript.Run(ctx, n.cfg.Redis, []string{key}, claim, n.cfg.SentTTL.Milliseconds()).Err()
	})
	if err != nil {
		log.Warn("marking notification sent in Redis; once the claim expires, a redelivery of the event emails the owner again",
			zap.Error(err))
	}
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

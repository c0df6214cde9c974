package app

import (
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/windowing"
)

// Config configures a Worker. A zero field takes the default its comment names
// (WithDefaults); New validates the result and reports every problem at once.
type Config struct {
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Kafka secures the connection to the brokers (TLS, SASL); the zero value
	// is plaintext.
	Kafka kafkaconn.Config
	// Redis is the Redis of windows, logs and webhook state: a node, a
	// Redis Cluster or a master named by Sentinels. Its URL is required.
	Redis redisconn.Config
	// RedisKeyPrefix starts every key the worker writes (default "outbound"):
	// deployments that share one Redis each take their own.
	RedisKeyPrefix string
	// GroupID is the consumer group of the workers (default "outbound"): workers
	// that share it share the events partitions.
	GroupID string
	// EventsTopic carries chat.message.v1 events keyed by chat id (default
	// "chat.messages").
	EventsTopic string
	// ControlTopic carries webhook configuration keyed by workspace id (default
	// "webhooks.control"). Every worker reads all of it.
	ControlTopic string
	// DLQTopic receives invalid events with the reason (default
	// "chat.messages.dlq").
	DLQTopic string

	// HTTPAddr is where the admin API, /healthz, /readyz and /metrics listen;
	// empty: nowhere.
	HTTPAddr string
	// AdminToken is the admin API's bearer token; empty: the API answers 403
	// (probes and metrics need no token). Operators sign in to the console
	// (served at /) with it.
	AdminToken string
	// ConsoleKey signs the console's sessions, owner links and CSRF tokens;
	// empty: a random key per process, so sessions end at a restart and owner
	// links open on this worker only. Give every worker the same key.
	ConsoleKey string
	// PublicURL is the console's address as browsers reach it, the base of
	// owner links (https: cookies are Secure); empty: taken from each request.
	PublicURL string

	// SMTPURL, when set, makes the worker run a notifier that emails a webhook's
	// owner once when it is auto-disabled; empty: no emails.
	SMTPURL string
	// SMTPFrom is the sender of those emails (default "outbound@localhost").
	SMTPFrom string
	// SMTPTLS is how the connection to the SMTP server is secured (see
	// control.SMTPTLSMode); empty: STARTTLS when offered for smtp://, implicit
	// TLS for smtps://.
	SMTPTLS string
	// SMTPUser and SMTPPassword authenticate with AUTH PLAIN; an alternative to
	// credentials in SMTPURL that keeps the password out of the URL.
	SMTPUser, SMTPPassword string

	// ConnectTimeout bounds a webhook's connect (default 5s).
	ConnectTimeout time.Duration
	// RequestTimeout bounds a whole webhook attempt (default 15s). A claimed
	// chat's lease is RequestTimeout + LeaseGrace: a worker that dies mid-delivery hands
	// the chat to another one after that long.
	RequestTimeout time.Duration
	// LeaseGrace is what the lease keeps past the request to record its
	// outcome, and how long that recording may take (default 5s).
	LeaseGrace time.Duration
	// MaxBundleMessages and MaxBundleBytes bound one request: a larger bundle
	// goes out in ordered parts (defaults 1000 and 1 MiB).
	MaxBundleMessages, MaxBundleBytes int
	// AllowPrivate allows webhooks on loopback and private addresses, which turns
	// the SSRF guard off: for local receivers only.
	AllowPrivate bool
	// AllowedPorts and DeniedPorts are the SSRF guard's port policy
	// (sink.ParsePortPolicy); empty: sink.DefaultAllowedPorts and
	// sink.DefaultDeniedPorts. AllowPrivate does not lift it.
	AllowedPorts, DeniedPorts string
	// RequestLogMaxBytes caps one workspace's request log (default 2 MiB), and
	// LogTTL is how long a workspace's logs outlive their last write (default
	// 30 days).
	RequestLogMaxBytes int64
	LogTTL             time.Duration
	// Product names the product in the aggregation's link sentence (default
	// "TimelinesAI").
	Product string

	// SessionTimeout is how long the group waits for a silent member before
	// moving its partitions (default 10s; brokers refuse less than 6s by default).
	SessionTimeout time.Duration
	// Grace is how long after its close a window waits for late records (default
	// 1m).
	Grace time.Duration
	// TimeScale divides every window, grace and backoff (default 1). Anything
	// else is for demos and tests: a 24h window no longer lasts a day.
	TimeScale float64
	// Concurrency bounds the deliveries in flight per worker (default 64).
	Concurrency int
	// PerWebhook bounds the deliveries in flight per worker to one webhook
	// (default 4), so that a slow receiver holds only that many.
	PerWebhook int
	// ShutdownTimeout bounds how long in-flight deliveries may take once Run's
	// context ends (default 30s).
	ShutdownTimeout time.Duration

	// Version is the build's version, sent in the User-Agent and reported by
	// /metrics (default "dev").
	Version string
}

// WithDefaults returns c with every zero field that has a default set to it.
func (c Config) WithDefaults() Config {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.GroupID, "outbound")
	def(&c.EventsTopic, "chat.messages")
	def(&c.ControlTopic, control.DefaultTopic)
	def(&c.DLQTopic, "chat.messages.dlq")
	def(&c.SMTPFrom, "outbound@localhost")
	def(&c.Product, "TimelinesAI")
	def(&c.Version, "dev")
	def(&c.RedisKeyPrefix, string(control.DefaultKeys))
	def(&c.AllowedPorts, sink.DefaultAllowedPorts)
	def(&c.DeniedPorts, sink.DefaultDeniedPorts)
	defDuration := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defDuration(&c.ConnectTimeout, 5*time.Second)
	defDuration(&c.RequestTimeout, windowing.DefaultRequestTimeout)
	defDuration(&c.LeaseGrace, windowing.DefaultLeaseGrace)
	defDuration(&c.SessionTimeout, 10*time.Second)
	defDuration(&c.Grace, time.Minute)
	defDuration(&c.ShutdownTimeout, 30*time.Second)
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.RequestLogMaxBytes == 0 {
		c.RequestLogMaxBytes = webhooklog.DefaultMaxRequestBytes
	}
	defDuration(&c.LogTTL, webhooklog.DefaultTTL)
	if c.MaxBundleMessages == 0 {
		c.MaxBundleMessages = sink.DefaultMaxBundleMessages
	}
	if c.MaxBundleBytes == 0 {
		c.MaxBundleBytes = sink.DefaultMaxBundleBytes
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.PerWebhook == 0 {
		c.PerWebhook = 4
	}
	return c
}

// validate says everything that is wrong with c, whose defaults are filled.
func (c Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is empty"))
	}
	if err := c.Redis.Check(); err != nil {
		errs = append(errs, fmt.Errorf("Redis: %w", err))
	}
	if c.TimeScale < 1 {
		errs = append(errs, fmt.Errorf("TimeScale must be at least 1, got %v", c.TimeScale))
	}
	if c.ConnectTimeout < 0 || c.RequestTimeout < 0 || c.LeaseGrace < 0 || c.ShutdownTimeout < 0 || c.Grace < 0 {
		errs = append(errs, errors.New("ConnectTimeout, RequestTimeout, LeaseGrace, ShutdownTimeout and Grace must not be negative"))
	}
	if c.SessionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("SessionTimeout must be at least 1s, got %s", c.SessionTimeout))
	}
	if c.Concurrency < 1 || c.PerWebhook < 1 {
		errs = append(errs, fmt.Errorf("Concurrency and PerWebhook must be at least 1, got %d and %d", c.Concurrency, c.PerWebhook))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// ErrInvalidConfig marks New's errors that are about the Config itself, not
// about building what it describes.
var ErrInvalidConfig = errors.New("invalid configuration")

// fields is the effective config for the start-up log line, secrets redacted.
func (c Config) fields() []zap.Field {
	redacted := func(s string) string {
		if s == "" {
			return ""
		}
		return "<redacted>"
	}
	return []zap.Field{
		zap.String("version", c.Version),
		zap.Strings("kafka_brokers", c.Brokers), zap.String("redis_url", urls.Redact(c.Redis.URL)), zap.Bool("redis_cluster", c.Redis.Cluster),
		zap.Bool("redis_sentinel", c.Redis.Sentinel), zap.String("redis_password_file", c.Redis.PasswordFile),
		zap.String("redis_key_prefix", c.RedisKeyPrefix),
		zap.String("group_id", c.GroupID), zap.String("events_topic", c.EventsTopic),
		zap.String("control_topic", c.ControlTopic), zap.String("dlq_topic", c.DLQTopic),
		zap.String("http_addr", c.HTTPAddr), zap.String("admin_token", redacted(c.AdminToken)),
		zap.String("console_key", redacted(c.ConsoleKey)), zap.String("public_url", urls.Redact(c.PublicURL)),
		zap.Float64("time_scale", c.TimeScale), zap.String("smtp_url", urls.Redact(c.SMTPURL)),
		zap.String("smtp_from", c.SMTPFrom), zap.String("smtp_tls", c.SMTPTLS), zap.String("smtp_user", c.SMTPUser), zap.Duration("connect_timeout", c.ConnectTimeout),
		zap.Duration("request_timeout", c.RequestTimeout), zap.Duration("lease_grace", c.LeaseGrace),
		zap.Int("max_bundle_messages", c.MaxBundleMessages), zap.Int("max_bundle_bytes", c.MaxBundleBytes), zap.Bool("allow_private_targets", c.AllowPrivate),
		zap.String("allowed_target_ports", c.AllowedPorts), zap.String("denied_target_ports", c.DeniedPorts),
		zap.Int64("request_log_max_bytes", c.RequestLogMaxBytes), zap.Duration("webhook_log_ttl", c.LogTTL),
		zap.String("product_name", c.Product), zap.Duration("session_timeout", c.SessionTimeout),
		zap.Duration("grace", c.Grace), zap.Int("concurrency", c.Concurrency), zap.Int("per_webhook", c.PerWebhook),
		zap.Duration("shutdown_timeout", c.ShutdownTimeout),
		// The SASL password is never logged.
		zap.Bool("kafka_tls", c.Kafka.TLS), zap.String("kafka_sasl_mechanism", c.Kafka.SASLMechanism),
		zap.String("kafka_sasl_user", c.Kafka.Username),
	}
}

// The log formats NewLogger writes.
const (
	LogJSON    = "json"    // one JSON object a line, for log collectors
	LogConsole = "console" // aligned text, for people
)

// NewLogger returns the worker's logger, writing format to w at info level.
func NewLogger(format string, w io.Writer) (*zap.Logger, error) {
	var enc zapcore.Encoder
	switch format {
	case LogConsole:
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	case LogJSON:
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	default:
		return nil, fmt.Errorf("log format must be %s or %s, got %q", LogJSON, LogConsole, format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zap.InfoLevel)), nil
}

package main

import (
	"context"
	"errors"
	"io"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/app"
	"github.com/outbound-webhooks/outbound/internal/cli"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/sink"
)

// workerFlags are the flags of `outbound worker`: app.Config, plus what only
// the command line has.
type workerFlags struct {
	app.Config
	brokers   string
	logFormat string
}

func (f *workerFlags) register(fs *cli.FlagSet) {
	def := app.Config{}.WithDefaults()
	c := &f.Config
	fs.StringVar(&f.brokers, "kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	registerRedisFlags(fs, &c.Redis, &c.RedisKeyPrefix)
	fs.StringVar(&c.GroupID, "group-id", def.GroupID, "consumer group of the workers")
	fs.StringVar(&c.EventsTopic, "events-topic", def.EventsTopic, "topic of chat.message.v1 events (key = chat_id)")
	fs.StringVar(&c.ControlTopic, "control-topic", def.ControlTopic, "control topic (key = workspace_id)")
	fs.StringVar(&c.DLQTopic, "dlq-topic", def.DLQTopic, "dead-letter topic for invalid events")
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "console (/), admin API, /healthz, /readyz and /metrics listen address (empty: off)")
	fs.StringVar(&c.AdminToken, "admin-token", "", "bearer token of the admin API and operators' console sign-in (without it the API answers 403)")
	fs.StringVar(&c.ConsoleKey, "console-key", "", "key that signs console sessions and owner links; give every worker the same (empty: random per process)")
	fs.StringVar(&c.PublicURL, "public-url", "", "the console's address as browsers reach it, base of owner links (empty: from each request)")
	fs.Float64Var(&c.TimeScale, "time-scale", def.TimeScale, "divide every window, grace and backoff by this (demos and tests only)")
	fs.StringVar(&c.SMTPURL, "smtp-url", "", "owner emails: smtp://user:pass@host:port (empty: no emails)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", def.SMTPFrom, "sender address of owner emails")
	fs.StringVar(&c.SMTPTLS, "smtp-tls", "", "SMTP connection security: none, starttls (when offered), starttls-required or tls (empty: starttls for smtp://, tls for smtps://)")
	fs.StringVar(&c.SMTPUser, "smtp-user", "", "SMTP AUTH PLAIN user (instead of credentials in --smtp-url)")
	fs.StringVar(&c.SMTPPassword, "smtp-password", "", "SMTP AUTH PLAIN password; prefer the environment variable OUTBOUND_SMTP_PASSWORD")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", def.ConnectTimeout, "webhook connect timeout")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", def.RequestTimeout, "webhook whole-request timeout")
	fs.DurationVar(&c.LeaseGrace, "lease-grace", def.LeaseGrace, "what a delivery's lease keeps past --request-timeout to record the outcome; a dead worker's deliveries move on after both")
	fs.IntVar(&c.MaxBundleMessages, "max-bundle-messages", def.MaxBundleMessages, "messages in one bundle request at most; a larger bundle goes out in ordered parts")
	fs.IntVar(&c.MaxBundleBytes, "max-bundle-bytes", def.MaxBundleBytes, "request body of one bundle part at most, in bytes")
	registerTargetFlags(fs, &c.AllowPrivate, &c.AllowedPorts, &c.DeniedPorts)
	fs.Int64Var(&c.RequestLogMaxBytes, "request-log-max-bytes", def.RequestLogMaxBytes, "cap of one workspace's request log in bytes; the oldest entries go first")
	fs.DurationVar(&c.LogTTL, "webhook-log-ttl", def.LogTTL, "how long a workspace's activity and request logs outlive their last write")
	fs.StringVar(&c.Product, "product-name", def.Product, "product name in the aggregation's link sentence")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", def.SessionTimeout, "consumer group session timeout")
	fs.DurationVar(&c.Grace, "grace", def.Grace, "how long after its close a window waits for late records")
	fs.IntVar(&c.Concurrency, "concurrency", def.Concurrency, "deliveries in flight per worker")
	fs.IntVar(&c.PerWebhook, "per-webhook", def.PerWebhook, "deliveries in flight per worker to one webhook")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", def.ShutdownTimeout, "how long in-flight deliveries may take at shutdown")
	fs.StringVar(&f.logFormat, "log-format", app.LogJSON, app.LogJSON+" or "+app.LogConsole)
	c.Kafka.Register(fs)
}

func runWorker(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := cli.NewFlagSet("worker", "outbound worker: one member of the worker group.")
	fs.SetOutput(stderr)
	var f workerFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.Brokers = cli.SplitList(f.brokers)
	f.Version = version
	log, err := app.NewLogger(f.logFormat, stderr)
	if err != nil {
		return cli.UsageError(err)
	}
	defer log.Sync()
	w, err := app.New(f.Config, log)
	if errors.Is(err, app.ErrInvalidConfig) {
		return cli.UsageError(err)
	} else if err != nil {
		return err
	}
	return w.Run(ctx)
}

// registerTargetFlags registers the SSRF guard's flags: the worker dials by
// them, and `ctl configure` checks a URL against them before publishing it.
func registerTargetFlags(fs *cli.FlagSet, allowPrivate *bool, allowed, denied *string) {
	fs.BoolVar(allowPrivate, "allow-private-targets", false, "allow webhooks on loopback and private addresses (turns the SSRF guard's address rules off; the port policy stays)")
	fs.StringVar(allowed, "allowed-target-ports", sink.DefaultAllowedPorts, "ports a webhook may use: comma-separated ports and ranges")
	fs.StringVar(denied, "denied-target-ports", sink.DefaultDeniedPorts, "ports a webhook may not use even inside an allowed range (none: no exceptions)")
}

// registerRedisFlags registers where Redis is and the prefix of the workers'
// keys: the worker keeps its state there, and ctl reads it.
func registerRedisFlags(fs *cli.FlagSet, c *redisconn.Config, prefix *string) {
	c.Register(fs, "redis://127.0.0.1:6379/0", "Redis URL (redis:// or rediss://), of one node, a cluster's nodes (--redis-cluster) or the sentinels (--redis-sentinel)")
	fs.StringVar(prefix, "redis-key-prefix", string(control.DefaultKeys), "prefix of every key the workers keep in Redis; deployments that share one Redis each take their own")
}

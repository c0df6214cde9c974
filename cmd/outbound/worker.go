package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/processor"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// workerConfig is the effective configuration of `outbound worker`.
type workerConfig struct {
	Brokers         []string
	RedisURL        string
	GroupID         string
	EventsTopic     string
	ControlTopic    string
	DLQTopic        string
	HTTPAddr        string
	AdminToken      string
	TimeScale       float64
	SMTPURL         string
	SMTPFrom        string
	ConnectTimeout  time.Duration
	RequestTimeout  time.Duration
	AllowPrivate    bool
	Product         string
	SessionTimeout  time.Duration
	Grace           time.Duration
	Concurrency     int
	PerWebhook      int
	ShutdownTimeout time.Duration
	LogFormat       string

	brokersFlag *string
}

func (c *workerConfig) register(fs *flagSet) {
	brokers := fs.String("kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL (redis:// or rediss://)")
	fs.StringVar(&c.GroupID, "group-id", "outbound", "consumer group of the workers")
	fs.StringVar(&c.EventsTopic, "events-topic", "chat.messages", "topic of chat.message.v1 events (key = chat_id)")
	fs.StringVar(&c.ControlTopic, "control-topic", control.DefaultTopic, "control topic (key = workspace_id)")
	fs.StringVar(&c.DLQTopic, "dlq-topic", "chat.messages.dlq", "dead-letter topic for invalid events")
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "admin API, /healthz, /readyz and /metrics listen address (empty: off)")
	fs.StringVar(&c.AdminToken, "admin-token", "", "bearer token of the admin API (without it the API answers 403)")
	fs.Float64Var(&c.TimeScale, "time-scale", 1, "divide every window, grace and backoff by this (demos and tests only)")
	fs.StringVar(&c.SMTPURL, "smtp-url", "", "owner emails: smtp://user:pass@host:port (empty: no emails)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "outbound@localhost", "sender address of owner emails")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 5*time.Second, "webhook connect timeout")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 15*time.Second, "webhook whole-request timeout")
	fs.BoolVar(&c.AllowPrivate, "allow-private-targets", false, "allow webhooks on loopback and private addresses (turns the SSRF guard off)")
	fs.StringVar(&c.Product, "product-name", "TimelinesAI", "product name in the aggregation's link sentence")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 10*time.Second, "consumer group session timeout")
	fs.DurationVar(&c.Grace, "grace", time.Minute, "how long after its close a window waits for late records")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "deliveries in flight per worker")
	fs.IntVar(&c.PerWebhook, "per-webhook", 4, "deliveries in flight per worker to one webhook")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight deliveries may take at shutdown")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or console")
	c.brokersFlag = brokers
}

// validate turns the parsed flags into a usable config or says what is wrong.
func (c *workerConfig) validate() error {
	c.Brokers = splitList(*c.brokersFlag)
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("--kafka-brokers is empty"))
	}
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		errs = append(errs, fmt.Errorf("--redis-url: %w", err))
	}
	if c.TimeScale < 1 {
		errs = append(errs, fmt.Errorf("--time-scale must be >= 1, got %v", c.TimeScale))
	}
	if c.RequestTimeout <= 0 || c.ConnectTimeout <= 0 {
		errs = append(errs, errors.New("--request-timeout and --connect-timeout must be positive"))
	}
	if c.SessionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("--session-timeout must be at least 1s, got %s", c.SessionTimeout))
	}
	if c.Concurrency < 1 || c.PerWebhook < 1 {
		errs = append(errs, errors.New("--concurrency and --per-webhook must be at least 1"))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("--log-format must be json or console, got %q", c.LogFormat))
	}
	for _, t := range []struct{ flag, v string }{{"--group-id", c.GroupID}, {"--events-topic", c.EventsTopic}, {"--control-topic", c.ControlTopic}, {"--dlq-topic", c.DLQTopic}} {
		if t.v == "" {
			errs = append(errs, fmt.Errorf("%s is empty", t.flag))
		}
	}
	return errors.Join(errs...)
}

// fields is the effective config for the start-up log line, secrets redacted.
func (c *workerConfig) fields() []zap.Field {
	redacted := func(s string) string {
		if s == "" {
			return ""
		}
		return "<redacted>"
	}
	redisURL := c.RedisURL
	if o, err := redis.ParseURL(c.RedisURL); err == nil && o.Password != "" {
		redisURL = "redis://<redacted>@" + o.Addr
	}
	return []zap.Field{
		zap.Strings("kafka_brokers", c.Brokers), zap.String("redis_url", redisURL),
		zap.String("group_id", c.GroupID), zap.String("events_topic", c.EventsTopic),
		zap.String("control_topic", c.ControlTopic), zap.String("dlq_topic", c.DLQTopic),
		zap.String("http_addr", c.HTTPAddr), zap.String("admin_token", redacted(c.AdminToken)),
		zap.Float64("time_scale", c.TimeScale), zap.String("smtp_url", redacted(c.SMTPURL)),
		zap.String("smtp_from", c.SMTPFrom), zap.Duration("connect_timeout", c.ConnectTimeout),
		zap.Duration("request_timeout", c.RequestTimeout), zap.Bool("allow_private_targets", c.AllowPrivate),
		zap.String("product_name", c.Product), zap.Duration("session_timeout", c.SessionTimeout),
		zap.Duration("grace", c.Grace), zap.Int("concurrency", c.Concurrency), zap.Int("per_webhook", c.PerWebhook),
		zap.Duration("shutdown_timeout", c.ShutdownTimeout),
	}
}

// worker is one running `outbound worker`: every component, wired.
type worker struct {
	cfg       workerConfig
	log       *zap.Logger
	rdb       *redis.Client
	registry  *control.Registry
	reader    *control.Reader
	publisher *control.Publisher
	notifier  *control.Notifier
	store     *windowing.Store
	sink      *sink.Sink
	consumer  *processor.Consumer
	logs      *webhooklog.Log
	metrics   *metrics
	changes   *webhook.Feed // the Registry's changes, for the consumer's disable sweep
}

func newWorker(cfg workerConfig, log *zap.Logger) (*worker, error) {
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("parsing --redis-url: %w", err)
	}
	w := &worker{cfg: cfg, log: log, rdb: redis.NewClient(opts), registry: control.NewRegistry()}
	w.logs = webhooklog.New(w.rdb, "")
	if w.reader, err = control.NewReader(control.ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.ControlTopic,
		Redis: w.rdb, Registry: w.registry, Logger: log.Named("control"), Activity: w.logs}); err != nil {
		return nil, err
	}
	if w.publisher, err = control.NewPublisher(control.PublisherConfig{Brokers: cfg.Brokers, Topic: cfg.ControlTopic, Logger: log}); err != nil {
		return nil, err
	}
	if cfg.SMTPURL != "" {
		if w.notifier, err = control.NewNotifier(control.NotifierConfig{Brokers: cfg.Brokers, Topic: cfg.ControlTopic,
			Redis: w.rdb, SMTPURL: cfg.SMTPURL, From: cfg.SMTPFrom, Logger: log.Named("notifier"),
			SessionTimeout: cfg.SessionTimeout}); err != nil {
			return nil, err
		}
	}
	if w.store, err = windowing.NewStore(windowing.Config{Redis: w.rdb, TimeScale: cfg.TimeScale, Grace: cfg.Grace}); err != nil {
		return nil, err
	}
	if w.sink, err = sink.New(sink.Config{Redis: w.rdb, Webhooks: w.registry, Publisher: w.publisher, Log: w.logs,
		Logger: log.Named("sink"), Product: cfg.Product, TimeScale: cfg.TimeScale,
		Client: sink.ClientConfig{ConnectTimeout: cfg.ConnectTimeout, RequestTimeout: cfg.RequestTimeout,
			AllowPrivate: cfg.AllowPrivate, UserAgent: "outbound/" + version}}); err != nil {
		return nil, err
	}
	flusher, err := windowing.NewFlusher(windowing.FlusherConfig{Store: w.store, Deliverer: w.sink,
		Logger: log.Named("flusher"), Concurrency: cfg.Concurrency, PerWorkspace: cfg.PerWebhook, Lease: cfg.RequestTimeout + 15*time.Second})
	if err != nil {
		return nil, err
	}
	if w.consumer, err = processor.New(processor.Config{Brokers: cfg.Brokers, Topic: cfg.EventsTopic, DLQTopic: cfg.DLQTopic,
		GroupID: cfg.GroupID, Store: w.store, Flusher: flusher, Webhooks: w.registry, Logger: log.Named("processor"),
		SessionTimeout: cfg.SessionTimeout}); err != nil {
		return nil, err
	}
	w.changes = w.registry.Subscribe()
	w.metrics = newMetrics(w)
	return w, nil
}

// Run runs every component until ctx ends, then shuts down in order: stop
// fetching, let in-flight deliveries finish (bounded by the lease), commit,
// leave the group, close clients.
func (w *worker) Run(ctx context.Context) error {
	defer w.rdb.Close()
	defer w.publisher.Close()
	if w.cfg.TimeScale != 1 {
		w.log.Warn("TIME SCALE IS NOT 1: windows, grace and backoff are shortened; for demos and tests only",
			zap.Float64("time_scale", w.cfg.TimeScale))
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.reader.Run(ctx) })
	g.Go(func() error {
		// Events of a workspace this worker has not learnt yet would be dropped:
		// read the control topic up to its end before consuming events.
		if err := w.reader.WaitCaughtUp(ctx); err != nil {
			return nil
		}
		w.log.Info("control topic caught up; consuming events", zap.Int("webhooks", len(w.registry.All())))
		return w.consumer.Run(ctx)
	})
	g.Go(func() error { return w.consumer.SweepDisabled(ctx, w.changes, w.logs) })
	if w.notifier != nil {
		g.Go(func() error { return w.notifier.Run(ctx) })
	}
	if w.cfg.HTTPAddr != "" {
		srv := &http.Server{Addr: w.cfg.HTTPAddr, Handler: w.handler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving admin API on %s: %w", w.cfg.HTTPAddr, err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	return g.Wait()
}

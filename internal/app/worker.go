package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/console"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/processor"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// Worker is one member of the worker group: every component, wired.
type Worker struct {
	cfg       Config
	log       *zap.Logger
	rdb       redis.UniversalClient
	registry  *control.Registry
	reader    *control.Reader
	publisher *control.Publisher
	notifier  *control.Notifier
	store     *windowing.Store
	flusher   *windowing.Flusher
	sink      *sink.Sink
	consumer  *processor.Consumer
	logs      *webhooklog.Log
	metrics   *metrics
	console   *console.Console
	changes   *webhook.Feed // the Registry's changes, for the consumer's disable sweep
	kafka     kafkaconn.Conn
}

// New fills cfg's defaults, validates it, logs the effective configuration
// (secrets redacted) and builds every component. Nothing connects yet: Run does.
func New(cfg Config, log *zap.Logger) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kc, err := kafkaconn.New(cfg.Kafka)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	log.Info("starting outbound worker", cfg.fields()...)
	rdb, err := redisconn.Open(cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing the Redis URL: %w", ErrInvalidConfig, err)
	}
	w := &Worker{cfg: cfg, log: log, rdb: rdb, registry: control.NewRegistry()}
	w.logs = webhooklog.NewWithConfig(webhooklog.Config{Redis: w.rdb, Prefix: cfg.RedisKeyPrefix, MaxRequestBytes: cfg.RequestLogMaxBytes, TTL: cfg.LogTTL})
	client := sink.ClientConfig{ConnectTimeout: cfg.ConnectTimeout, RequestTimeout: cfg.RequestTimeout,
		AllowPrivate: cfg.AllowPrivate, AllowedPorts: cfg.AllowedPorts, DeniedPorts: cfg.DeniedPorts,
		UserAgent: "outbound/" + cfg.Version}
	// One value bounds a delivery: the flusher's lease and deadline and the
	// sink's request and bookkeeping all derive from it.
	timeouts := windowing.Timeouts{Request: cfg.RequestTimeout, Grace: cfg.LeaseGrace}
	guard, err := client.Guard()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	w.kafka = kc
	if w.reader, err = control.NewReader(control.ReaderConfig{Brokers: cfg.Brokers, Kafka: kc, Topic: cfg.ControlTopic,
		Redis: w.rdb, Keys: control.Keys(cfg.RedisKeyPrefix), Registry: w.registry, Logger: log.Named("control"), Activity: w.logs}); err != nil {
		return nil, err
	}
	if w.publisher, err = control.NewPublisher(control.PublisherConfig{Brokers: cfg.Brokers, Kafka: kc, Topic: cfg.ControlTopic, Logger: log}); err != nil {
		return nil, err
	}
	if cfg.SMTPURL != "" {
		if w.notifier, err = control.NewNotifier(control.NotifierConfig{Brokers: cfg.Brokers, Kafka: kc, Topic: cfg.ControlTopic,
			Redis: w.rdb, Keys: control.Keys(cfg.RedisKeyPrefix), SMTPURL: cfg.SMTPURL, From: cfg.SMTPFrom,
			TLS: control.SMTPTLSMode(cfg.SMTPTLS), Username: cfg.SMTPUser, Password: cfg.SMTPPassword, Logger: log.Named("notifier"),
			SessionTimeout: cfg.SessionTimeout, PageLink: pageLink(cfg)}); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	if w.store, err = windowing.NewStore(windowing.Config{Redis: w.rdb, Prefix: cfg.RedisKeyPrefix, TimeScale: cfg.TimeScale, Grace: cfg.Grace}); err != nil {
		return nil, err
	}
	if w.sink, err = sink.New(sink.Config{Redis: w.rdb, Prefix: cfg.RedisKeyPrefix, Webhooks: w.registry, Publisher: w.publisher, Log: w.logs,
		Logger: log.Named("sink"), Product: cfg.Product, TimeScale: cfg.TimeScale,
		Client: client, Timeouts: timeouts,
		BundleLimits: sink.BundleLimits{MaxMessages: cfg.MaxBundleMessages, MaxBytes: cfg.MaxBundleBytes}}); err != nil {
		return nil, err
	}
	if w.flusher, err = windowing.NewFlusher(windowing.FlusherConfig{Store: w.store, Deliverer: w.sink,
		Logger: log.Named("flusher"), Concurrency: cfg.Concurrency, PerWorkspace: cfg.PerWebhook, Timeouts: timeouts}); err != nil {
		return nil, err
	}
	if w.consumer, err = processor.New(processor.Config{Brokers: cfg.Brokers, Kafka: kc, Topic: cfg.EventsTopic, DLQTopic: cfg.DLQTopic,
		GroupID: cfg.GroupID, Store: w.store, Flusher: w.flusher, Webhooks: w.registry, Logger: log.Named("processor"),
		SessionTimeout: cfg.SessionTimeout}); err != nil {
		return nil, err
	}
	if w.console, err = console.New(console.Config{Redis: w.rdb, Prefix: cfg.RedisKeyPrefix, Publisher: w.publisher, Logs: w.logs,
		Store: w.store, Partitions: w.eventsPartitions,
		AdminToken: cfg.AdminToken, Key: cfg.ConsoleKey, PublicURL: cfg.PublicURL, Guard: &guard,
		TimeScale: cfg.TimeScale, Grace: cfg.Grace, Logger: log.Named("console")}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	w.changes = w.registry.Subscribe()
	w.metrics = newMetrics(w)
	return w, nil
}

// eventsPartitions counts the events topic's partitions: the windowing stage
// keeps its per-workspace counts per partition, and the console sums them.
func (w *Worker) eventsPartitions(ctx context.Context) (int, error) {
	client := &kafka.Client{Addr: kafka.TCP(w.cfg.Brokers...), Transport: w.kafka.Transport()}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{w.cfg.EventsTopic}})
	if err != nil {
		return 0, fmt.Errorf("reading the metadata of %s: %w", w.cfg.EventsTopic, err)
	}
	for _, t := range md.Topics {
		if t.Name != w.cfg.EventsTopic {
			continue
		}
		if t.Error != nil {
			return 0, fmt.Errorf("reading the metadata of %s: %w", w.cfg.EventsTopic, t.Error)
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("reading the metadata of %s: the topic is missing", w.cfg.EventsTopic)
}

// pageLink makes the owner link that auto-disable emails carry, when the
// console has a key and a public URL to build one; links of a random per-process
// key would open on this worker only, and only until it restarts.
func pageLink(cfg Config) func(ws string) string {
	if cfg.ConsoleKey == "" || cfg.PublicURL == "" {
		return nil
	}
	return func(ws string) string {
		link, _ := console.ScopedLink(cfg.ConsoleKey, cfg.PublicURL, ws, time.Now()) // key and URL are set
		return link
	}
}

// Run runs every component until ctx ends, then shuts down in order: stop
// fetching, let in-flight deliveries finish (bounded by the lease), commit,
// leave the group, close clients. A shutdown that takes longer than
// ShutdownTimeout is abandoned with an error: the caller is about to exit, and
// the leases of the deliveries left unfinished hand them to other workers.
func (w *Worker) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	w.log.Info("shutting down: stopping fetches, finishing in-flight deliveries", zap.Duration("deadline", w.cfg.ShutdownTimeout))
	select {
	case err := <-done:
		w.log.Info("stopped")
		return err
	case <-time.After(w.cfg.ShutdownTimeout):
		return fmt.Errorf("shutting down: still running after the shutdown timeout of %s; leases hand unfinished deliveries to other workers",
			w.cfg.ShutdownTimeout)
	}
}

// run runs every component until ctx ends and returns once all have stopped.
func (w *Worker) run(ctx context.Context) error {
	defer w.rdb.Close()
	defer w.publisher.Close()
	defer w.kafka.Close()
	if w.cfg.TimeScale != 1 {
		w.log.Warn("TIME SCALE IS NOT 1: windows, grace and backoff are shortened; for demos and tests only",
			zap.Float64("time_scale", w.cfg.TimeScale))
	}
	if w.cfg.Redis.Cluster {
		if err := w.logTopology(ctx); err != nil {
			return err
		}
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
		srv := &http.Server{Addr: w.cfg.HTTPAddr, Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second}
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

// logTopology logs the masters of the Redis Cluster and their slots, and
// fails when the cluster cannot be reached or does not serve every slot: a
// worker started against a broken cluster should say so, not retry silently.
func (w *Worker) logTopology(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	shards, err := redisconn.Topology(ctx, w.rdb)
	if err != nil {
		return fmt.Errorf("redis cluster at %s: %w", urls.Redact(w.cfg.Redis.URL), err)
	}
	for _, s := range shards {
		w.log.Info("redis cluster master", zap.String("addr", s.Master), zap.Strings("slots", s.Slots))
	}
	return nil
}

// Owned returns the events partitions this worker consumes now.
func (w *Worker) Owned() []int { return w.consumer.Owned() }

// ProcessorStats counts what the worker did with the events it consumed.
func (w *Worker) ProcessorStats() *processor.Stats { return w.consumer.Stats() }

// SinkStats counts the worker's deliveries and failed attempts.
func (w *Worker) SinkStats() *sink.Stats { return w.sink.Stats() }

// Pending returns the windows still open and the chats with queued bundles in
// an events partition, from Redis.
func (w *Worker) Pending(ctx context.Context, partition int) (windows, chats int64, err error) {
	return w.store.Pending(ctx, partition)
}

// Webhooks returns every webhook the worker has learnt from the control topic.
func (w *Worker) Webhooks() []webhook.Webhook { return w.registry.All() }

package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
)

// scrapeTimeout bounds the Redis reads of one scrape, so that a slow Redis
// makes a scrape incomplete rather than piling scrapes up.
const scrapeTimeout = 3 * time.Second

// metrics holds the worker's Prometheus collectors, in a registry of its own:
// the global one would mix in whatever a dependency registers, and two workers
// in one test process would collide in it.
//
// Counters are read from the components' existing atomic Stats at scrape time,
// so the hot path does no extra work for them; only the delivery latency
// histogram is fed as attempts happen, through the sink's Observe hook.
type metrics struct {
	handler http.Handler
}

func newMetrics(w *Worker) *metrics {
	reg := prometheus.NewRegistry()
	counter := func(name, help string, labels prometheus.Labels, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v()) })
	}
	ps, ss := w.consumer.Stats(), w.sink.Stats()
	const skippedHelp = "Events not buffered, by reason: attachment, no_text, no_webhook (workspace has none), disabled (webhook off)."
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "outbound_delivery_duration_seconds",
		Help: "Duration of webhook HTTP attempts, by outcome (success or failure).",
		// From a fast receiver on the same network up to the request timeout.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
	}, []string{"outcome"})
	success, failure := latency.WithLabelValues("success"), latency.WithLabelValues("failure")
	w.sink.Observe = func(_ string, ok bool, took time.Duration) {
		if ok {
			success.Observe(took.Seconds())
		} else {
			failure.Observe(took.Seconds())
		}
	}

	// The descriptors are static and the registry is private: a conflict is a bug
	// that every test run would hit, so MustRegister cannot panic in production.
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "outbound_build_info", Help: "Always 1; the version label is the build's.",
			ConstLabels: prometheus.Labels{"version": w.cfg.Version}}, func() float64 { return 1 }),

		counter("outbound_events_consumed_total", "Records read from the events topic (replays after a crash count again).", nil, ps.Consumed.Load),
		counter("outbound_events_appended_total", "Events buffered in a window in Redis.", nil, ps.Appended.Load),
		counter("outbound_events_duplicate_total", "Upstream duplicates dropped: events whose message_id their chat (granularity none) or window already held.",
			nil, func() int64 { return ps.Duplicates.Load() + w.flusher.Duplicates() }),
		counter("outbound_events_dead_lettered_total", "Invalid events written to the dead-letter topic.", nil, ps.DeadLettered.Load),
		counter("outbound_events_skipped_total", skippedHelp, prometheus.Labels{"reason": "attachment"}, ps.SkippedAttachment.Load),
		counter("outbound_events_skipped_total", skippedHelp, prometheus.Labels{"reason": "no_text"}, ps.SkippedNoText.Load),
		counter("outbound_events_skipped_total", skippedHelp, prometheus.Labels{"reason": "no_webhook"}, ps.DroppedNoWebhook.Load),
		counter("outbound_events_skipped_total", skippedHelp, prometheus.Labels{"reason": "disabled"}, ps.DroppedDisabled.Load),
		counter("outbound_redis_loss_replays_total", "Times a partition was read again from Kafka because Redis had lost acknowledged writes.", nil, ps.Replays.Load),

		counter("outbound_bundles_delivered_total", "Bundles (or single messages) a receiver accepted with a 2xx.", nil, ss.Delivered.Load),
		counter("outbound_delivery_attempts_failed_total", "Failed delivery attempts (each one counts toward auto-disable).", nil, ss.Failed.Load),
		counter("outbound_bundles_dropped_total", "Bundles dropped because their webhook was disabled or deleted while they were pending.", nil, ss.Dropped.Load),
		counter("outbound_webhooks_auto_disabled_total", "Webhooks this worker auto-disabled after too many consecutive errors.", nil, ss.AutoDisabled.Load),
		latency,

		counter("outbound_control_records_applied_total", "Valid control records applied to this worker's registry.", nil, w.reader.Applied),
		counter("outbound_control_records_replayed_total", "Control records read again that were already applied (restarts, re-reads); skipped.", nil, w.reader.Replayed),
		&scrapeCollector{w: w},
	)
	return &metrics{
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			// A failing Redis read drops its own series, not the whole scrape.
			ErrorHandling: promhttp.ContinueOnError,
			ErrorLog:      scrapeErrorLog{w.log},
			Timeout:       2 * scrapeTimeout,
		}),
	}
}

// scrapeErrorLog reports gathering errors (promhttp logs each once per scrape).
type scrapeErrorLog struct{ log *zap.Logger }

func (l scrapeErrorLog) Println(v ...any) {
	l.log.Warn("gathering metrics", zap.String("error", fmt.Sprint(v...)))
}

var (
	descWindowsOpen = prometheus.NewDesc("outbound_windows_open",
		"Windows still open (not yet sealed), per partition this worker owns.", []string{"partition"}, nil)
	descChatsQueued = prometheus.NewDesc("outbound_chats_queued",
		"Chats with a sealed bundle waiting for delivery, per partition this worker owns.", []string{"partition"}, nil)
	descConsumerLag = prometheus.NewDesc("outbound_consumer_lag_records",
		"Records of an owned events partition not yet applied, as of its last fetch.", []string{"partition"}, nil)
	descConsecutiveErrors = prometheus.NewDesc("outbound_webhook_consecutive_errors",
		"Consecutive failed attempts of an enabled webhook (only webhooks above 0; more than 10 disables it). Every worker reports the same shared count.",
		[]string{"workspace"}, nil)
	descWebhooks = prometheus.NewDesc("outbound_webhooks",
		"Configured webhooks, by state (enabled or disabled).", []string{"state"}, nil)
	descControlRejected = prometheus.NewDesc("outbound_control_records_rejected_total",
		"Invalid control records skipped, by reason.", []string{"reason"}, nil)
)

var controlRejectReasons = []string{control.RejectInvalidJSON, control.RejectUnknownType, control.RejectMissingWorkspace,
	control.RejectInvalidURL, control.RejectInvalidGranularity, control.RejectUnknownWorkspace, control.RejectSchema}

// scrapeCollector computes, at scrape time, the metrics that are not counters
// kept by a component: Redis-backed gauges and per-label maps. Its Redis cost
// per scrape is one round trip per owned partition plus one pipelined round
// trip for every enabled webhook's error count.
type scrapeCollector struct{ w *Worker }

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWindowsOpen, descChatsQueued, descConsumerLag,
		descConsecutiveErrors, descWebhooks, descControlRejected} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	w := c.w

	for p, lag := range w.consumer.Lag() {
		ch <- prometheus.MustNewConstMetric(descConsumerLag, prometheus.GaugeValue, float64(lag), strconv.Itoa(p))
	}
	for _, p := range w.consumer.Owned() {
		windows, chats, err := w.store.Pending(ctx, p)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descWindowsOpen, err)
			break // the other partitions would time out the same way
		}
		ch <- prometheus.MustNewConstMetric(descWindowsOpen, prometheus.GaugeValue, float64(windows), strconv.Itoa(p))
		ch <- prometheus.MustNewConstMetric(descChatsQueued, prometheus.GaugeValue, float64(chats), strconv.Itoa(p))
	}

	var enabled []webhook.Webhook
	var disabled int
	for _, wh := range w.registry.All() {
		if wh.Enabled {
			enabled = append(enabled, wh)
		} else {
			disabled++
		}
	}
	ch <- prometheus.MustNewConstMetric(descWebhooks, prometheus.GaugeValue, float64(len(enabled)), "enabled")
	ch <- prometheus.MustNewConstMetric(descWebhooks, prometheus.GaugeValue, float64(disabled), "disabled")
	// A disabled webhook gets no attempts, so its count cannot move; reporting
	// only non-zero counts keeps one series per failing webhook, not per workspace.
	errs, err := sink.ConsecutiveErrorsOf(ctx, w.rdb, w.cfg.RedisKeyPrefix, enabled)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descConsecutiveErrors, err)
	}
	for ws, n := range errs {
		ch <- prometheus.MustNewConstMetric(descConsecutiveErrors, prometheus.GaugeValue, float64(n), ws)
	}

	rejected := w.reader.RejectedByReason()
	// Known reasons start at 0 so that rate() and alerts see them before the
	// first rejection.
	for _, reason := range controlRejectReasons {
		if _, ok := rejected[reason]; !ok {
			rejected[reason] = 0
		}
	}
	for reason, n := range rejected {
		ch <- prometheus.MustNewConstMetric(descControlRejected, prometheus.CounterValue, float64(n), reason)
	}
}

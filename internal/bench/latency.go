package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/processor"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

func (r *run) phaseLatency(ctx context.Context) error {
	n := int(float64(r.sc.LatencyRate) * r.sc.LatencyFor.Seconds())
	ours, err := r.latency(ctx, n, true)
	if err != nil {
		return fmt.Errorf("measuring our latency: %w", err)
	}
	base, err := r.latency(ctx, n, false)
	if err != nil {
		return fmt.Errorf("measuring the plain pipeline's latency: %w", err)
	}
	const baseName = "plain consumer + http.Post"
	settings := fmt.Sprintf("%d events/s for %s, granularity none, %d partitions, %d workspaces; from the scheduled produce time to the receiver's first byte",
		r.sc.LatencyRate, r.sc.LatencyFor, r.sc.Partitions, r.sc.Workspaces)
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}, {"max", 1}} {
		v, b := ours.quantile(q.q), base.quantile(q.q)
		x := row("e2e_latency_"+q.name, v, "ms", "lower", b, baseName)
		if q.name == "p99" {
			x = x.target("<= 2 x the plain pipeline's p99", v <= 2*b)
		}
		switch q.name {
		case "p50":
			x = x.with(settings, ours.notes, ours.cpu)
		case "max":
			x = x.with("baseline: one kafka-go group Reader (same fetch settings) posting each event with a plain http.Client", base.notes, base.cpu)
		default:
			x = x.with("same run as e2e_latency_p50")
		}
		r.rep.add(x)
	}
	return nil
}

// latencies of one run, sorted, in ms.
type latencyResult struct {
	ms      []float64
	missing int
	notes   string
	cpu     string
}

func (l latencyResult) quantile(q float64) float64 {
	if len(l.ms) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(l.ms)))) - 1
	return l.ms[max(0, min(i, len(l.ms)-1))]
}

// latency produces n events at the steady rate into a fresh topic and times
// each from its scheduled produce time to its arrival at the receiver, going
// through our worker (ours) or through the plain baseline pipeline.
func (r *run) latency(ctx context.Context, n int, ours bool) (latencyResult, error) {
	what := "plain"
	if ours {
		what = "ours"
	}
	rec, err := startReceiver(n)
	if err != nil {
		return latencyResult{}, err
	}
	defer rec.close()
	topic, err := r.k.createTopic(ctx, "latency-"+what, r.sc.Partitions)
	if err != nil {
		return latencyResult{}, err
	}
	group := r.k.name("latency-" + what)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var consumer *task
	if ours {
		consumer, err = r.latencyWorker(cctx, topic, group, rec.URL)
	} else {
		consumer = r.latencyPlain(cctx, topic, group, rec.URL)
	}
	if err != nil {
		return latencyResult{}, err
	}
	// Measure a group that is up: wait for it to be stable, then give the
	// partition readers a moment to reach the end of the empty topic.
	if _, err := waitFor(ctx, time.Minute, 50*time.Millisecond, "the group to form", func() (bool, error) {
		stable, err := r.k.groupStable(ctx, group)
		if err == nil {
			err = consumer.failed()
		}
		return stable, err
	}); err != nil {
		return latencyResult{}, err
	}
	time.Sleep(time.Second)

	meter := startCPU(ctx, r.r)
	stop := r.profile("e2e_latency_" + what)
	sched, errs := r.produceSteady(ctx, topic, n)
	// A worker that falls behind drains its backlog after the last produce;
	// give it as long again as the run, at least 30 s.
	wait := max(30*time.Second, r.sc.LatencyFor)
	_, waitErr := waitFor(ctx, wait, 10*time.Millisecond, "the last delivery", func() (bool, error) {
		return rec.requests.Load() >= int64(n), consumer.failed()
	})
	stop()
	cpu := meter.stop(ctx)
	gaveUp := time.Now().UnixNano()
	cancel()
	if err := consumer.wait(); err != nil {
		return latencyResult{}, err
	}
	if errs > 0 {
		return latencyResult{}, fmt.Errorf("%d events could not be published", errs)
	}
	if waitErr != nil && ctx.Err() != nil {
		return latencyResult{}, waitErr
	}
	res := latencyResult{cpu: cpu}
	for i := range n {
		at := rec.arrivals[i].Load()
		if at == 0 {
			// Not there when the bench gave up: its latency is at least that.
			res.missing++
			at = gaveUp
		}
		res.ms = append(res.ms, float64(at-sched[i])/1e6)
	}
	slices.Sort(res.ms)
	res.notes = fmt.Sprintf("%s delivered", groupThousands(int64(n-res.missing)))
	if res.missing > 0 {
		res.notes += fmt.Sprintf("; %s still missing %s after the last produce, counted at that wait: the quantiles are lower bounds",
			groupThousands(int64(res.missing)), wait)
	}
	r.say("latency %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms", what, res.quantile(.5), res.quantile(.99), res.quantile(1))
	return res, nil
}

// latencyWorker runs the worker's ingest and delivery path in this process:
// consumer, store, flusher and sink, delivering granularity none to the
// receiver.
func (r *run) latencyWorker(ctx context.Context, topic, group, receiverURL string) (*task, error) {
	rdb, _, drop, err := r.database(ctx, "latency")
	if err != nil {
		return nil, err
	}
	hooks, err := r.registry(r.sc.Workspaces, webhook.None, receiverURL)
	if err != nil {
		return nil, err
	}
	store, err := windowing.NewStore(windowing.Config{Redis: rdb})
	if err != nil {
		return nil, err
	}
	snk, err := r.sink(rdb, hooks)
	if err != nil {
		return nil, err
	}
	flusher, err := windowing.NewFlusher(windowing.FlusherConfig{Store: store, Deliverer: snk, Logger: r.log, PerWorkspace: perWebhook,
		Concurrency: r.sc.WorkerFlushers})
	if err != nil {
		return nil, err
	}
	consumer, err := processor.New(processor.Config{Brokers: r.k.brokers, Kafka: r.k.conn, Topic: topic, GroupID: group,
		Store: store, Flusher: flusher, Webhooks: hooks, Logger: r.log})
	if err != nil {
		return nil, err
	}
	return newTask(func() error {
		defer drop()
		return stopped(ctx, consumer.Run(ctx), "the consumer")
	}), nil
}

// latencyPlain is the latency baseline: a group Reader with our fetch
// settings that posts every event as it is to the receiver.
func (r *run) latencyPlain(ctx context.Context, topic, group, receiverURL string) *task {
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.k.brokers, Dialer: r.k.conn.Dialer(), GroupID: group, Topic: topic,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond, QueueCapacity: 500,
		CommitInterval: time.Second, StartOffset: kafka.FirstOffset, SessionTimeout: 10 * time.Second})
	client := plainClient(1)
	return newTask(func() error {
		defer rd.Close()
		for {
			m, err := rd.FetchMessage(ctx)
			if err != nil {
				return stopped(ctx, err, "the plain consumer")
			}
			var ev schemas.Event
			if err := json.Unmarshal(m.Value, &ev); err != nil {
				return fmt.Errorf("decoding offset %d/%d: %w", m.Partition, m.Offset, err)
			}
			if err := post(ctx, client, receiverURL+"/hook/"+ev.WorkspaceID, m.Value); err != nil {
				return stopped(ctx, err, "the plain consumer")
			}
			if err := rd.CommitMessages(ctx, m); err != nil {
				return stopped(ctx, err, "the plain consumer")
			}
		}
	})
}

// produceSteady publishes events 0..n-1 at the run's steady rate and returns
// each one's scheduled time (Unix ns). Latency counts from the schedule, not
// from when the producer got to it, so a stalled producer shows as latency
// instead of hiding it.
func (r *run) produceSteady(ctx context.Context, topic string, n int) (sched []int64, errs int64) {
	var failed atomic.Int64
	// A batch holds the few records of a partition's last milliseconds.
	w := r.k.writer(topic, 64, true, func(msgs []kafka.Message, err error) {
		if err != nil {
			failed.Add(int64(len(msgs)))
		}
	})
	defer w.Close()
	interval := time.Second / time.Duration(r.sc.LatencyRate)
	sched = make([]int64, n)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; {
		now := time.Now()
		var msgs []kafka.Message
		for ; i < n && start.Add(time.Duration(i)*interval).Compare(now) <= 0; i++ {
			at := start.Add(time.Duration(i) * interval)
			sched[i] = at.UnixNano()
			ev := r.corpus.event(i, r.corpus.chatOf(i), at)
			b, err := json.Marshal(ev)
			if err != nil {
				failed.Add(1)
				continue
			}
			msgs = append(msgs, kafka.Message{Key: []byte(ev.Chat.ChatID), Value: b})
		}
		if len(msgs) > 0 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				failed.Add(int64(len(msgs)))
			}
		}
		select {
		case <-ctx.Done():
			return sched, int64(n)
		case <-tick.C:
		}
	}
	return sched, failed.Load()
}

// plainClient is the HTTP client of the baselines: Go's own transport, with as
// many idle connections per host as requests in flight so that it never
// reconnects (Go's default keeps 2).
func plainClient(concurrency int) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency, IdleConnTimeout: 90 * time.Second}}
}

func post(ctx context.Context, c *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building a request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("posting: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("posting: receiver answered %s", resp.Status)
	}
	return nil
}

// discardPublisher stands in for the control topic, which only hears from
// the sink when a webhook is auto-disabled: no receiver of the bench fails.
type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, schemas.ControlMessage) error { return nil }

// perWebhook is the worker's --per-webhook default: the flusher's cap on
// deliveries in flight to one workspace's webhook.
const perWebhook = 4

// sink is the real sink as the worker builds it, allowed to call loopback.
func (r *run) sink(rdb redis.UniversalClient, hooks webhook.Lookup) (*sink.Sink, error) {
	return sink.New(sink.Config{Redis: rdb, Webhooks: hooks, Publisher: discardPublisher{}, Logger: r.log,
		Client: sink.ClientConfig{AllowPrivate: true, UserAgent: "outbound/bench"}})
}

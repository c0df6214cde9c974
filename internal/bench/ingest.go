package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/outbound-webhooks/outbound/processor"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// ingestTopic is the pre-filled topic every ingest measurement reads.
type ingestTopic struct {
	name   string
	end    map[int]int64
	events int
	raw    int64 // sum of rawBytes over the events
	values int64 // sum of record value sizes
}

// ingestTopic fills the ingest topic once; the phases after the first reuse it.
func (r *run) ingestTopic(ctx context.Context) (*ingestTopic, error) {
	if r.ingest != nil {
		return r.ingest, nil
	}
	name, err := r.k.createTopic(ctx, "ingest", r.sc.Partitions)
	if err != nil {
		return nil, err
	}
	r.say("ingest: publishing %d events to %s", r.sc.Events, name)
	t0 := time.Now()
	raw, values, err := r.k.fill(ctx, name, r.corpus, 0, r.sc.Events, r.clock.Now())
	if err != nil {
		return nil, err
	}
	end, err := r.k.endOffsets(ctx, name, r.sc.Partitions)
	if err != nil {
		return nil, err
	}
	if got := sum(end); got != int64(r.sc.Events) {
		return nil, fmt.Errorf("topic %s holds %d records, want %d", name, got, r.sc.Events)
	}
	r.say("ingest: published in %.1fs (%.0f events/s)", time.Since(t0).Seconds(), float64(r.sc.Events)/time.Since(t0).Seconds())
	r.ingest = &ingestTopic{name: name, end: end, events: r.sc.Events, raw: raw, values: values}
	return r.ingest, nil
}

// topicSettings describes the ingest input for a row's settings.
func (r *run) topicSettings(t *ingestTopic) string {
	return fmt.Sprintf("%s (%d B average), %d chats in %d workspaces, %d partitions",
		plural(t.events, "event"), t.values/int64(t.events), r.sc.Chats, r.sc.Workspaces, len(t.end))
}

// ingestRounds is how many times the plain consumer, the windowed consumer and
// the consumer of granularity none are measured, in turn, for the rows that
// compare them. One pair's ratio ranged from 0.71 to 0.92 over full runs of the
// same code (windowed), and from 0.63 to 0.86 (none), so one pair decides
// nothing about a goal of 0.85 or 0.75; each row reports its pair of median
// ratio, and its settings list every pair. A pair, not the median of each
// side: both sides speed up from round to round (the broker and Redis warm
// up), and only a pair ran in the same round.
const ingestRounds = 3

func (r *run) phaseIngest(ctx context.Context) error {
	t, err := r.ingestTopic(ctx)
	if err != nil {
		return err
	}
	var plains, wins, nones []ingestResult
	for i := range ingestRounds {
		p, err := r.plainConsumer(ctx, t, roundName("ingest_plain_consumer", i))
		if err != nil {
			return fmt.Errorf("measuring the plain consumer: %w", err)
		}
		w, err := r.consume(ctx, t, webhook.H1, roundName("ingest_windowed", i))
		if err != nil {
			return fmt.Errorf("measuring windowed ingest: %w", err)
		}
		n, err := r.consume(ctx, t, webhook.None, roundName("ingest_none", i))
		if err != nil {
			return fmt.Errorf("measuring ingest of granularity none: %w", err)
		}
		plains, wins, nones = append(plains, p), append(wins, w), append(nones, n)
	}
	median := medianPair(plains, wins)
	plain, win := plains[median], wins[median]
	r.plainRate = plain.rate
	rounds := roundsNote("windowed", plains, wins)
	medianNone := medianPair(plains, nones)
	nonePlain, none := plains[medianNone], nones[medianNone]
	ceiling, err := r.redisCeiling(ctx, t)
	if err != nil {
		return fmt.Errorf("measuring the Redis ceiling: %w", err)
	}

	input := r.topicSettings(t)
	const plainName, redisName = "plain kafka-go consumer", "pipelined HSET loop"
	r.rep.add(row("ingest_windowed", win.rate, "events/s", "higher", plain.rate, plainName).
		target(">= 85% of the plain consumer", win.rate >= 0.85*plain.rate).
		with("1h windows, until every event is in Redis", input, rounds, "that round: "+win.notes, win.cpu))
	r.rep.add(row("ingest_windowed_vs_redis", win.rate, "events/s", "higher", ceiling.rate, redisName).
		target(">= 80% of the Redis ceiling", win.rate >= 0.8*ceiling.rate).
		with("same run as ingest_windowed; ceiling: "+ceiling.settings, ceiling.cpu))
	r.rep.add(row("ingest_none", none.rate, "events/s", "higher", nonePlain.rate, plainName).
		target(">= 75% of the plain consumer", none.rate >= 0.75*nonePlain.rate).
		with("granularity none (each message queued for delivery at once, claimed and acknowledged by the flusher with a no-op deliverer while ingest runs)",
			roundsNote("none", plains, nones), "that round: "+none.notes, none.cpu))
	r.rep.add(row("ingest_none_vs_redis", none.rate, "events/s", "higher", ceiling.rate, redisName).
		with("same run as ingest_none; same ceiling as ingest_windowed_vs_redis"))
	r.rep.add(row("ingest_plain_consumer", plain.rate, "events/s", "higher", 0, "").
		with("the baseline: one kafka-go group Reader (MinBytes 1, MaxWait 100ms, 1 MiB fetches, commits every 1s), "+
			"json.Unmarshal into schemas.Event, nothing else", rounds, "that round: "+plain.notes, plain.cpu))
	perMsg := float64(win.memBytes) / float64(t.events)
	raw := float64(t.raw) / float64(t.events)
	r.rep.add(row("redis_bytes_per_message", perMsg, "B", "lower", raw, "raw message field bytes").
		target("<= raw + 60 B", perMsg <= raw+60).
		with(fmt.Sprintf("used_memory grew %.1f MB for %s buffered in %d 1h windows (chat details once per window)",
			mb(win.memBytes), plural(t.events, "message"), r.sc.Chats),
			fmt.Sprintf("raw = id, direction, 8 B time, sender and recipient name and phone, text, permalink: %.0f B; the JSON event is %d B",
				raw, t.values/int64(t.events))))
	return nil
}

// ingestResult is one measured consumption of the ingest topic.
type ingestResult struct {
	rate      float64 // events/s from the first record consumed to the last applied
	seconds   float64
	commitLag time.Duration // from the last apply to the commit of everything
	cpu       string
	notes     string
	memBytes  int64 // used_memory growth (windowed only)
}

// roundName names round i of a repeated measurement: its group, its
// database and its profile.
func roundName(name string, i int) string {
	if i == 0 {
		return name
	}
	return fmt.Sprintf("%s-%d", name, i+1)
}

// medianPair is the round whose ours / plain ratio is the median (the upper
// one of an even count).
func medianPair(plains, ours []ingestResult) int {
	rounds := make([]int, len(plains))
	for i := range rounds {
		rounds[i] = i
	}
	slices.SortFunc(rounds, func(a, b int) int { return cmp.Compare(ours[a].rate/plains[a].rate, ours[b].rate/plains[b].rate) })
	return rounds[len(rounds)/2]
}

// roundsNote lists the rounds of the plain consumer and ours, which is the
// consumer the row measures, in the order they ran.
func roundsNote(name string, plains, ours []ingestResult) string {
	pairs := make([]string, len(plains))
	for i := range plains {
		pairs[i] = fmt.Sprintf("%s / %s (%.2f)", groupThousands(int64(plains[i].rate)), groupThousands(int64(ours[i].rate)),
			ours[i].rate/plains[i].rate)
	}
	return fmt.Sprintf("the round of median ratio out of %d alternating rounds (plain / %s events/s): %s", len(plains), name, strings.Join(pairs, ", "))
}

// plainConsumer is the ingest baseline: the least a group consumer can do with
// the topic, which is read and decode it.
func (r *run) plainConsumer(ctx context.Context, t *ingestTopic, name string) (ingestResult, error) {
	group := r.k.name(name)
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.k.brokers, Dialer: r.k.conn.Dialer(), GroupID: group, Topic: t.name,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond, QueueCapacity: 500,
		CommitInterval: time.Second, StartOffset: kafka.FirstOffset, SessionTimeout: 10 * time.Second})
	var n atomic.Int64
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loop := newTask(func() error {
		last := make(map[int]kafka.Message, len(t.end))
		commit := func() error {
			msgs := make([]kafka.Message, 0, len(last))
			for _, m := range last {
				msgs = append(msgs, m)
			}
			return rd.CommitMessages(cctx, msgs...)
		}
		for n.Load() < int64(t.events) {
			m, err := rd.FetchMessage(cctx)
			if err != nil {
				return fmt.Errorf("fetching: %w", err)
			}
			var ev schemas.Event
			if err := json.Unmarshal(m.Value, &ev); err != nil {
				return fmt.Errorf("decoding offset %d/%d: %w", m.Partition, m.Offset, err)
			}
			last[m.Partition] = m
			if c := n.Add(1); c%500 == 0 || c == int64(t.events) {
				if err := commit(); err != nil {
					return fmt.Errorf("committing: %w", err)
				}
			}
		}
		return nil
	})
	meter := startCPU(ctx, r.r)
	stop := r.profile(name)
	res, err := r.timeIngest(ctx, t, group, func() bool { return n.Load() > 0 },
		func() bool { return n.Load() == int64(t.events) }, loop.failed)
	stop()
	res.cpu = meter.stop(ctx)
	cancel()
	loop.wait()
	if cerr := rd.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing the plain consumer: %w", cerr)
	}
	res.notes = res.timing("decode")
	if err == nil {
		r.say("%s: %.0f events/s", name, res.rate)
	}
	return res, err
}

// timeIngest measures from the first consumed record (started) to the moment
// every record is applied (finished), then waits for the group to commit the
// whole topic; failed reports a consumer that gave up meanwhile. The rate
// stops at the last apply, not at the commit: both consumers commit on a 1 s
// tick, which would round every run up to the next second and say nothing
// about throughput. How long the commit took after is in the notes.
func (r *run) timeIngest(ctx context.Context, t *ingestTopic, group string, started, finished func() bool, failed func() error) (ingestResult, error) {
	// Joining the group is not ingest: the clock starts at the first record.
	first, err := waitFor(ctx, time.Minute, time.Millisecond, "the first record", func() (bool, error) {
		return started(), failed()
	})
	if err != nil {
		return ingestResult{}, err
	}
	last, err := waitFor(ctx, budget(t.events, 2000), time.Millisecond, "the last record", func() (bool, error) {
		return finished(), failed()
	})
	if err != nil {
		return ingestResult{}, err
	}
	committed, err := waitFor(ctx, time.Minute, 10*time.Millisecond, "the last commit", func() (bool, error) {
		if err := failed(); err != nil {
			return false, err
		}
		return r.k.committedAll(ctx, group, t.name, t.end)
	})
	if err != nil {
		return ingestResult{}, err
	}
	return ingestResult{rate: float64(t.events) / last.Sub(first).Seconds(),
		seconds:   last.Sub(first).Seconds(),
		commitLag: committed.Sub(last)}, nil
}

// timing says how long the measured span was and how long the commit took
// after it.
func (res ingestResult) timing(last string) string {
	return fmt.Sprintf("%.2f s from the first record to the last %s, everything committed %d ms later",
		res.seconds, last, res.commitLag.Milliseconds())
}

// noopDeliverer stands in for the sink where only ingest is measured.
type noopDeliverer struct{ calls atomic.Int64 }

func (d *noopDeliverer) Deliver(context.Context, windowing.Bundle) windowing.Outcome {
	d.calls.Add(1)
	return windowing.Outcome{Done: true}
}

// consume measures the real consumer (processor.Consumer, windowing.Store and
// Flusher) on the ingest topic, into windows of g.
func (r *run) consume(ctx context.Context, t *ingestTopic, g webhook.Granularity, name string) (ingestResult, error) {
	rdb, _, drop, err := r.database(ctx, name)
	if err != nil {
		return ingestResult{}, err
	}
	defer drop()
	memBefore, err := r.r.usedMemory(ctx)
	if err != nil {
		return ingestResult{}, err
	}
	store, err := windowing.NewStore(windowing.Config{Redis: rdb, Clock: r.clock})
	if err != nil {
		return ingestResult{}, err
	}
	// Deliveries never reach this URL: the flusher's deliverer is a no-op.
	hooks, err := r.registry(r.sc.Workspaces, g, "http://127.0.0.1:9")
	if err != nil {
		return ingestResult{}, err
	}
	noop := &noopDeliverer{}
	flusher, err := windowing.NewFlusher(windowing.FlusherConfig{Store: store, Deliverer: noop, Logger: r.log,
		Concurrency: r.sc.WorkerFlushers})
	if err != nil {
		return ingestResult{}, err
	}
	group := r.k.name(name)
	consumer, err := processor.New(processor.Config{Brokers: r.k.brokers, Kafka: r.k.conn, Topic: t.name, GroupID: group,
		Store: store, Flusher: flusher, Webhooks: hooks, Logger: r.log})
	if err != nil {
		return ingestResult{}, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	meter := startCPU(ctx, r.r)
	stop := r.profile(name)
	run := newTask(func() error { return stopped(cctx, consumer.Run(cctx), "the consumer") })
	st := consumer.Stats()
	res, err := r.timeIngest(ctx, t, group, func() bool { return st.Consumed.Load() > 0 },
		func() bool { return st.Appended.Load()+st.Duplicates.Load() >= int64(t.events) }, run.failed)
	stop()
	res.cpu = meter.stop(ctx)
	deliveredMeanwhile := noop.calls.Load()
	cancel()
	if werr := run.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return res, err
	}
	if got := st.Appended.Load(); got != int64(t.events) {
		return res, fmt.Errorf("the consumer appended %d of %d events (duplicates %d, dead-lettered %d)",
			got, t.events, st.Duplicates.Load(), st.DeadLettered.Load())
	}
	res.notes = res.timing("append")
	switch g {
	case webhook.None:
		res.notes += fmt.Sprintf("; %s of %s delivered (no-op) by then",
			groupThousands(deliveredMeanwhile), groupThousands(int64(t.events)))
	default:
		if deliveredMeanwhile > 0 {
			res.notes += fmt.Sprintf("; WARNING: %d windows closed during the run", deliveredMeanwhile)
		}
		// Redis trims the query buffers the big EVALSHA calls left on each
		// connection in its background cron; let it, so that used_memory
		// counts the data.
		time.Sleep(time.Second)
		memAfter, err := r.r.usedMemory(ctx)
		if err != nil {
			return res, err
		}
		res.memBytes = memAfter - memBefore
	}
	r.say("%s: %.0f events/s", name, res.rate)
	return res, nil
}

// ceilingWrites is the least number of writes of the Redis ceiling.
const ceilingWrites = 1_000_000

// ceilingResult is the Redis ceiling.
type ceilingResult struct {
	rate     float64
	cpu      string
	settings string
}

// redisCeiling writes one HSET per event into keys named like the Store's
// windows, its field the message id and its value as many bytes as the rest of
// the message's raw fields take on average (rawBytes): pipelined in batches of
// the consumer's batch size, one pipeline per partition at a time, as the
// consumer runs partitions. It is what Redis can absorb of these writes with nothing else to
// do: no Lua, no de-duplication, no due index, no watermark.
func (r *run) redisCeiling(ctx context.Context, t *ingestTopic) (ceilingResult, error) {
	rdb, _, drop, err := r.database(ctx, "redis ceiling")
	if err != nil {
		return ceilingResult{}, err
	}
	defer drop()
	const batch = 500 // processor.Config.MaxBatch's default
	// At least a million writes, so the measurement lasts about a second even
	// in a quick run; each pass writes keys of its own, as new events would.
	passes := (ceilingWrites + t.events - 1) / t.events
	type hset struct{ key, field string }
	value := strings.Repeat("x", int(t.raw/int64(t.events))-len(messageID(0)))
	keys := make([]string, passes*r.sc.Chats)
	for pass := range passes {
		for c := range r.sc.Chats {
			ws, _, chat := r.corpus.chat(c)
			keys[pass*r.sc.Chats+c] = "ceiling" + strconv.Itoa(pass) + ":{p" + strconv.Itoa(c%r.sc.Partitions) + "}:w:" +
				ws + "\x1f" + chat.ChatID + "\x1f1h\x1f1767225600000\x1f1767229200000\x1f" + strconv.Itoa(c%r.sc.Workspaces+1)
		}
	}
	work := make([][]hset, r.sc.Partitions)
	for pass := range passes {
		for i := range t.events {
			c := r.corpus.chatOf(i)
			p := c % r.sc.Partitions
			work[p] = append(work[p], hset{keys[pass*r.sc.Chats+c], messageID(i)})
		}
	}
	writes := passes * t.events
	meter := startCPU(ctx, r.r)
	stop := r.profile("redis_ceiling")
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for _, cmds := range work {
		g.Go(func() error {
			for len(cmds) > 0 {
				n := min(batch, len(cmds))
				pipe := rdb.Pipeline()
				for _, c := range cmds[:n] {
					pipe.HSet(gctx, c.key, c.field, value)
				}
				if _, err := pipe.Exec(gctx); err != nil {
					return fmt.Errorf("writing a pipeline: %w", err)
				}
				cmds = cmds[n:]
			}
			return nil
		})
	}
	err = g.Wait()
	elapsed := time.Since(t0)
	stop()
	cpu := meter.stop(ctx)
	if err != nil {
		return ceilingResult{}, err
	}
	rate := float64(writes) / elapsed.Seconds()
	r.say("redis ceiling: %.0f HSET/s", rate)
	return ceilingResult{rate: rate, cpu: cpu, settings: fmt.Sprintf(
		"%s of a message id and %d B (the raw message's other fields) into %s, pipelines of %d, %d in flight",
		plural(writes, "HSET"), len(value), plural(len(keys), "key"), batch, len(work))}, nil
}

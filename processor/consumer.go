package processor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/outbound-webhooks/outbound/internal/chanbatch"
	"github.com/outbound-webhooks/outbound/internal/faults"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/retry"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// Config configures a Consumer.
type Config struct {
	Brokers []string
	// Kafka is how to reach the brokers (TLS, SASL); the zero value is plaintext.
	Kafka    kafkaconn.Conn
	Topic    string // events topic (default "chat.messages")
	DLQTopic string // dead-letter topic (default "chat.messages.dlq")
	GroupID  string // consumer group (default "outbound")

	Store    *windowing.Store
	Flusher  *windowing.Flusher
	Webhooks webhook.Lookup
	Logger   *zap.Logger
	// Clock is the clock of commits, caught-up times and dead-letter stamps
	// (default the real one); tests move a fake one.
	Clock clockwork.Clock

	// SessionTimeout is how long the group waits for a silent member before
	// moving its partitions (default 10s; brokers refuse less than their
	// group.min.session.timeout.ms, 6s by default).
	SessionTimeout time.Duration
	// MaxBatch bounds the records applied to Redis in one script (default 500).
	MaxBatch int
	// Applying bounds how many batches, across every owned partition, are
	// decoded and applied at once (default GOMAXPROCS+1: every core decoding
	// while one batch waits on Redis, which runs one script at a time). The
	// worker's ingest working set then depends on it, not on how many
	// partitions it owns.
	Applying int
	// CommitInterval is how often applied offsets are committed (default 1s).
	// Committing less often only lengthens replays, which the watermark absorbs.
	CommitInterval time.Duration
	// MaxEventBytes is the largest event accepted; larger ones are dead-lettered
	// (default 1 MiB).
	MaxEventBytes int
}

// Stats counts what the consumer did since it started. Replays after a crash
// count again.
type Stats struct {
	Consumed          atomic.Int64
	Appended          atomic.Int64
	Duplicates        atomic.Int64
	DeadLettered      atomic.Int64
	SkippedAttachment atomic.Int64
	SkippedNoText     atomic.Int64
	DroppedNoWebhook  atomic.Int64
	DroppedDisabled   atomic.Int64
	// Undeliverable counts invalid records that the dead-letter topic refused
	// for good (logged with their source offset and skipped).
	Undeliverable atomic.Int64
	// Replays counts the times a partition was read again from Kafka because
	// Redis had lost acknowledged writes (see resumeAt).
	Replays atomic.Int64
}

// Consumer is one member of the events consumer group.
type Consumer struct {
	cfg      Config
	dlq      *kafka.Writer
	stats    Stats
	applying *semaphore.Weighted // see Config.Applying
	// client commits offsets with metadata and reads them back, which the
	// consumer group's own CommitOffsets cannot.
	client *kafka.Client

	mu    sync.Mutex
	owned map[int]*partitionState
}

// New validates cfg and fills defaults.
func New(cfg Config) (*Consumer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("processor: Config.Brokers is required")
	}
	if cfg.Store == nil || cfg.Flusher == nil || cfg.Webhooks == nil {
		return nil, errors.New("processor: Config needs Store, Flusher and Webhooks")
	}
	if cfg.Topic == "" {
		cfg.Topic = "chat.messages"
	}
	if cfg.DLQTopic == "" {
		cfg.DLQTopic = cfg.Topic + ".dlq"
	}
	if cfg.GroupID == "" {
		cfg.GroupID = "outbound"
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.Applying <= 0 {
		cfg.Applying = runtime.GOMAXPROCS(0) + 1
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = 1 << 20
	}
	return &Consumer{
		cfg: cfg,
		// kafka-go's Writer defaults (1 s batch timeout, no acks) are slow and
		// unsafe; a dead letter must be on the broker before we commit past it.
		dlq: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Transport:    cfg.Kafka.Transport(),
			Topic:        cfg.DLQTopic,
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			// Explicit limits: a dead letter is at most about 82 KiB
			// (see deadLetter), so any batch of them fits in one request
			// that every broker accepts by default (message.max.bytes 1 MiB).
			BatchSize:              100,
			BatchBytes:             1 << 20,
			Balancer:               &kafka.Hash{},
			AllowAutoTopicCreation: true,
		},
		owned:    map[int]*partitionState{},
		applying: semaphore.NewWeighted(int64(cfg.Applying)),
		client:   &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: cfg.Kafka.Transport()},
	}, nil
}

// Stats returns live counters.
func (c *Consumer) Stats() *Stats { return &c.stats }

// Owned returns the partitions this member currently owns.
func (c *Consumer) Owned() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int, 0, len(c.owned))
	for p := range c.owned {
		out = append(out, p)
	}
	return out
}

// Lag returns, per owned partition, how many records were left after the last
// applied one when it was fetched (the partition's high-water mark then, minus
// the next offset). It is as fresh as the last fetch: an idle partition keeps
// reporting the lag of its last batch, normally 0.
func (c *Consumer) Lag() map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]int64, len(c.owned))
	for p, s := range c.owned {
		out[p] = s.lag.Load()
	}
	return out
}

// Ping checks that a broker answers, for readiness probes.
func (c *Consumer) Ping(ctx context.Context) error {
	var errs []error
	for _, b := range c.cfg.Brokers {
		d := c.cfg.Kafka.Dialer()
		d.Timeout = 2 * time.Second
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			return conn.Close()
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("reaching Kafka: %w", errors.Join(errs...))
}

// Run joins the group and processes assigned partitions until ctx ends. On
// return the group has been left and every partition's last applied offset
// committed (best effort: the watermark covers a missed commit).
func (c *Consumer) Run(ctx context.Context) error {
	defer c.dlq.Close()
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    c.cfg.GroupID,
		Brokers:               c.cfg.Brokers,
		Dialer:                c.cfg.Kafka.Dialer(),
		Topics:                []string{c.cfg.Topic},
		SessionTimeout:        c.cfg.SessionTimeout,
		HeartbeatInterval:     c.cfg.SessionTimeout / 5,
		RebalanceTimeout:      30 * time.Second,
		JoinGroupBackoff:      time.Second,
		StartOffset:           kafka.FirstOffset,
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(zapPrintf(c.cfg.Logger)),
	})
	if err != nil {
		return fmt.Errorf("joining consumer group %s: %w", c.cfg.GroupID, err)
	}
	defer group.Close()
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, kafka.ErrGroupClosed) {
			return nil
		}
		if err != nil {
			// kafka-go retries joins itself; pause anyway so a persistent error
			// cannot spin this loop and flood the log.
			c.cfg.Logger.Warn("waiting for the next group generation", zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-c.cfg.Clock.After(time.Second):
			}
			continue
		}
		assigned := gen.Assignments[c.cfg.Topic]
		parts := make([]int, 0, len(assigned))
		for _, a := range assigned {
			parts = append(parts, a.ID)
		}
		c.cfg.Logger.Info("partitions assigned", zap.Int32("generation", gen.ID), zap.Ints("partitions", parts))
		for _, a := range assigned {
			gen.Start(func(gctx context.Context) {
				c.runPartition(gctx, gen, a.ID)
			})
		}
	}
}

func zapPrintf(l *zap.Logger) func(string, ...any) {
	return func(format string, args ...any) {
		l.Warn("kafka consumer group", zap.String("detail", fmt.Sprintf(format, args...)))
	}
}

// partitionState is the consumption progress of one owned partition.
type partitionState struct {
	caughtUp atomic.Bool  // the last applied record was the partition's last
	lastTime atomic.Int64 // record time (ms) of the last applied record
	// lag is how many records the partition's end was past the last applied
	// record, as of that record's fetch: kept only for metrics, it costs the
	// hot path one atomic store per batch and no broker request.
	lag atomic.Int64
	// applied is the partition's watermark as the applier last saw it: the
	// last offset it applied, or what Redis held when it started.
	applied  atomic.Int64
	appended chan struct{}
	clock    clockwork.Clock
}

func (s *partitionState) Applied() int64 { return s.applied.Load() }

func (s *partitionState) CaughtUpTo() time.Time {
	if s.caughtUp.Load() {
		return s.clock.Now()
	}
	return time.UnixMilli(s.lastTime.Load())
}

func (s *partitionState) Appended() <-chan struct{} { return s.appended }

func (s *partitionState) notify() {
	select {
	case s.appended <- struct{}{}:
	default:
	}
}

// runPartition owns one partition for the life of a generation. It never returns
// before gctx ends: kafka-go ends the whole generation when any partition
// function returns. Should Redis lose writes while it runs, it replays them
// from Kafka and goes on (see resume).
func (c *Consumer) runPartition(gctx context.Context, gen *kafka.Generation, partition int) {
	log := c.cfg.Logger.With(zap.Int("partition", partition))
	applied := int64(-1) // the watermark this member last saw; -1 before it looked
	for {
		start, wm, err := c.resume(gctx, log, partition, applied)
		if err != nil {
			return // generation ended
		}
		var lost bool
		applied, lost = c.consume(gctx, gen, partition, start, wm, log)
		if !lost {
			return
		}
	}
}

// consume reads the partition from start into Redis, whose watermark is wm,
// until gctx ends or Redis turns out to have lost writes (lost). It returns the
// last offset it applied.
func (c *Consumer) consume(gctx context.Context, gen *kafka.Generation, partition int, start, wm int64, log *zap.Logger) (applied int64, lost bool) {
	state := &partitionState{appended: make(chan struct{}, 1), clock: c.cfg.Clock}
	state.applied.Store(wm)
	c.mu.Lock()
	c.owned[partition] = state
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.owned, partition)
		c.mu.Unlock()
	}()

	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   c.cfg.Brokers,
		Dialer:    c.cfg.Kafka.Dialer(),
		Topic:     c.cfg.Topic,
		Partition: partition,
		MinBytes:  1,
		// A fetch asks for up to 1 MiB (about 1 300 events); the reader
		// decodes it record by record into its queue, and the rest waits in
		// the socket, so memory is bounded by the queue and the records
		// channel below, not by MaxBytes. (A single larger record is still
		// returned whole.)
		MaxBytes: 1 << 20,
		MaxWait:  100 * time.Millisecond,
		// The records channel is the batch's lookahead; the reader's own
		// queue only needs to cover a fetch's round trip.
		QueueCapacity:  100,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
	})
	defer reader.Close()
	if err := reader.SetOffset(start); err != nil {
		log.Error("seeking partition", zap.Int64("offset", start), zap.Error(err))
		<-gctx.Done()
		return wm, false
	}
	if lag, err := reader.ReadLag(gctx); err == nil {
		state.lag.Store(lag)
		state.caughtUp.Store(lag == 0)
	}

	records := make(chan kafka.Message, c.cfg.MaxBatch)
	g, ctx := errgroup.WithContext(gctx)
	g.Go(func() error {
		defer close(records)
		for {
			m, err := reader.FetchMessage(ctx)
			if err != nil && ctx.Err() == nil {
				// A fetch error must not end the fetcher: the partition would
				// stop consuming, silently, until the next rebalance.
				err = untilDurable.Do(ctx, log, "fetching records", func() (err error) {
					m, err = reader.FetchMessage(ctx)
					return err
				})
			}
			if err != nil {
				return nil // ctx ended
			}
			select {
			case records <- m:
			case <-ctx.Done():
				return nil
			}
		}
	})
	g.Go(func() error { return c.cfg.Flusher.RunPartition(ctx, partition, state) })
	g.Go(func() error { return c.commitLoop(ctx, gen, partition, state, log) })
	g.Go(func() error {
		for {
			batch, ok := nextBatch(ctx, records, c.cfg.MaxBatch, c.applying)
			if !ok {
				return nil
			}
			last := batch[len(batch)-1]
			if err := c.apply(ctx, log, partition, batch, wm); err != nil {
				return err // Redis lost writes, or the generation ended while Redis or the DLQ was failing
			}
			faults.Crash(faults.AfterAppend)
			wm = last.Offset
			state.applied.Store(wm)
			state.lastTime.Store(last.Time.UnixMilli())
			state.lag.Store(last.HighWaterMark - last.Offset - 1)
			state.caughtUp.Store(last.HighWaterMark == last.Offset+1 && len(records) == 0)
			state.notify()
		}
	})
	err := g.Wait()
	applied = state.applied.Load()
	var lostErr *windowing.LostError
	if errors.As(err, &lostErr) && gctx.Err() == nil {
		return applied, true
	}
	// The generation may already be over; a failed final commit only means the
	// next owner re-reads records that the watermark turns into no-ops.
	if applied >= 0 {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.SessionTimeout)
		defer cancel()
		if cp, err := c.cfg.Store.Checkpoint(ctx, partition); err == nil && cp.Watermark >= applied {
			_ = c.commit(ctx, gen, partition, applied, cp)
		}
	}
	return applied, false
}

// nextBatch blocks for one record, then for an apply slot (apply releases it),
// then takes whatever else is fetched by then.
func nextBatch(ctx context.Context, records <-chan kafka.Message, max int, slots *semaphore.Weighted) ([]kafka.Message, bool) {
	first, ok := chanbatch.First(ctx, records)
	if !ok || slots.Acquire(ctx, 1) != nil {
		return nil, false
	}
	// A channel found closed ends the next call.
	batch, _ := chanbatch.Fill(records, []kafka.Message{first}, max)
	return batch, true
}

// commitLoop commits the applied offset every CommitInterval, with the
// partition's checkpoint as metadata. Each tick also checks that Redis still
// holds what was applied, so that a loss on an idle partition is found too; it
// returns a *windowing.LostError when it does not.
func (c *Consumer) commitLoop(ctx context.Context, gen *kafka.Generation, partition int, state *partitionState, log *zap.Logger) error {
	t := c.cfg.Clock.NewTicker(c.cfg.CommitInterval)
	defer t.Stop()
	committed := state.applied.Load()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
		}
		// Applied first: the checkpoint read after it covers every record up to it.
		off := state.applied.Load()
		cp, err := c.cfg.Store.Checkpoint(ctx, partition)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("reading the checkpoint to commit", zap.Error(err))
			}
			continue
		}
		if cp.Watermark < off {
			return &windowing.LostError{Partition: partition, Applied: off, Watermark: cp.Watermark}
		}
		if off == committed {
			continue
		}
		if err := c.commit(ctx, gen, partition, off, cp); err != nil {
			if ctx.Err() == nil {
				log.Warn("committing offset", zap.Int64("offset", off+1), zap.Error(err))
			}
			continue
		}
		committed = off
	}
}

// untilDurable retries Redis and broker calls until they succeed or the
// generation ends. Nothing is skipped: a batch that cannot be made durable holds
// its partition (and only its partition) until Redis or the broker is back.
var untilDurable = retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

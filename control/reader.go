package control

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/retry"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

// DefaultTopic is the control topic's name.
const DefaultTopic = "webhooks.control"

// Reasons a Reader rejects a control record, as counted by RejectedByReason.
const (
	RejectInvalidJSON        = "invalid_json"
	RejectUnknownType        = "unknown_type"
	RejectMissingWorkspace   = "missing_workspace"
	RejectInvalidWorkspace   = "invalid_workspace"
	RejectInvalidID          = "invalid_id"
	RejectInvalidURL         = "invalid_url"
	RejectInvalidGranularity = "invalid_granularity"
	RejectUnknownWorkspace   = "unknown_workspace"
	// RejectSchema is any other violation of webhook.control.v1 (a missing
	// owner_email, a malformed secret, ...).
	RejectSchema = "schema"
)

// ReaderConfig configures a Reader. Brokers, Redis and Registry are required.
type ReaderConfig struct {
	Brokers []string
	// Kafka is how to reach the brokers (TLS, SASL); the zero value is plaintext.
	Kafka kafkaconn.Conn
	// Topic is the control topic; DefaultTopic when empty.
	Topic string
	// Redis holds the materialisation: loaded at start, written after every
	// record.
	Redis redis.UniversalClient
	// Keys names its keys (DefaultKeys when empty).
	Keys Keys
	// Registry receives every record. It must be fed by this Reader only.
	Registry *Registry
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Activity, when set, receives configure, enable and disable actions for
	// the workspaces' activity logs; a delete purges the workspace's logs and
	// every other key under webhooklog.WorkspaceKey.
	Activity *webhooklog.Log
	// MaxWait bounds how long an idle fetch waits at the broker (2s by default).
	// It does not delay changes: the fetch is a long poll that the broker answers
	// as soon as a record arrives, so a change reaches every worker within one
	// round trip. Do not set it below about 1.5s: kafka-go leaves only a quarter
	// of a shorter MaxWait for the round trip, and on a busy machine the idle
	// fetches then time out and the reader reconnects over and over.
	MaxWait time.Duration
	// PartitionRefresh is how often the topic's partition list is re-read, so
	// that partitions added later are consumed too (30s by default).
	PartitionRefresh time.Duration
	// MinBackoff and MaxBackoff bound the delays between retries of transient
	// Kafka and Redis failures (100ms and 5s by default).
	MinBackoff, MaxBackoff time.Duration
}

// Reader consumes every partition of the control topic, not as a group member:
// every worker needs every record. It applies each record to its Registry and to
// the Redis materialisation, in partition order.
type Reader struct {
	cfg    ReaderConfig
	log    *zap.Logger
	client *kafka.Client
	retry  retry.Policy // transient Kafka and Redis failures

	started  atomic.Bool
	caughtUp chan struct{} // closed once every partition reached its start-time end
	stopped  chan struct{} // closed when Run returns

	mu       sync.Mutex
	pending  map[int]bool // partitions not yet caught up
	running  map[int]bool // partitions with a consuming goroutine
	rejected map[string]int64

	applied       atomic.Int64
	replayed      atomic.Int64
	rejectedTotal atomic.Int64
}

// NewReader validates cfg, fills its defaults and returns a Reader ready to Run.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("configuring control reader: no Kafka brokers")
	}
	if cfg.Redis == nil {
		return nil, errors.New("configuring control reader: no Redis client")
	}
	if cfg.Registry == nil {
		return nil, errors.New("configuring control reader: no Registry")
	}
	cfg.Topic = cmp.Or(cfg.Topic, DefaultTopic)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	defaultDuration(&cfg.MaxWait, 2*time.Second)
	defaultDuration(&cfg.PartitionRefresh, 30*time.Second)
	defaultDuration(&cfg.MinBackoff, 100*time.Millisecond)
	defaultDuration(&cfg.MaxBackoff, 5*time.Second)
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("configuring control reader: MaxBackoff %s is below MinBackoff %s", cfg.MaxBackoff, cfg.MinBackoff)
	}
	return &Reader{
		cfg:      cfg,
		log:      cfg.Logger.With(zap.String("topic", cfg.Topic)),
		client:   &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: cfg.Kafka.Transport()},
		retry:    retry.Policy{Initial: cfg.MinBackoff, Max: cfg.MaxBackoff},
		caughtUp: make(chan struct{}),
		stopped:  make(chan struct{}),
		pending:  make(map[int]bool),
		running:  make(map[int]bool),
		rejected: make(map[string]int64),
	}, nil
}

// defaultDuration sets *d to v unless *d is positive: a config's zero value,
// or a negative one, means the default.
func defaultDuration(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Run loads the materialised state into the Registry, then consumes every
// partition from the offset after the materialised one (from the beginning when
// Redis has none) until ctx ends. Transient Kafka and Redis failures are retried;
// invalid records are logged, counted and skipped. Run returns nil when ctx ends,
// and may be called once.
func (r *Reader) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("running control reader: already running")
	}
	defer close(r.stopped)

	err := r.run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *Reader) run(ctx context.Context) error {
	var st State
	err := r.retry.Do(ctx, r.log, "loading control state from Redis", func() (err error) {
		st, err = LoadState(ctx, r.cfg.Redis, r.cfg.Keys)
		return err
	})
	if err != nil {
		return err
	}
	r.cfg.Registry.restore(st.Webhooks, st.Offsets)

	var parts []partitionInfo
	err = r.retry.Do(ctx, r.log, "listing control partitions", func() (err error) {
		parts, err = r.partitions(ctx)
		return err
	})
	if err != nil {
		return err
	}
	r.log.Info("control state loaded",
		zap.Int("webhooks", len(st.Webhooks)), zap.Int("partitions", len(parts)))

	starts := make([]int64, len(parts))
	for i, p := range parts {
		if starts[i], err = r.startOffset(ctx, p); err != nil {
			return err
		}
	}
	r.mu.Lock()
	for i, p := range parts {
		if starts[i] < p.end {
			r.pending[p.id] = true
		}
		r.running[p.id] = true
	}
	r.mu.Unlock()
	r.checkCaughtUp()

	g, gctx := errgroup.WithContext(ctx)
	for i, p := range parts {
		g.Go(func() error { return r.consume(gctx, p, starts[i]) })
	}

	g.Go(func() error { return r.discover(gctx, g) })
	return g.Wait()
}

// partitionInfo is one partition with its log start and end (the high watermark:
// the offset the next record will get) when it was listed.
type partitionInfo struct {
	id         int
	first, end int64
}

// partitions lists the topic's partitions with their current first and end offsets.
func (r *Reader) partitions(ctx context.Context) ([]partitionInfo, error) {
	meta, err := r.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{r.cfg.Topic}})
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	var ids []int
	for _, t := range meta.Topics {
		if t.Name != r.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("fetching metadata of %s: %w", r.cfg.Topic, t.Error)
		}
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("fetching metadata of %s: topic has no partitions", r.cfg.Topic)
	}
	slices.Sort(ids)

	// First and last offsets go in two requests: a broker refuses a request that
	// names the same partition twice.
	list := func(at func(int) kafka.OffsetRequest) (map[int]int64, error) {
		reqs := make([]kafka.OffsetRequest, len(ids))
		for i, id := range ids {
			reqs[i] = at(id)
		}
		res, err := r.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
			Topics: map[string][]kafka.OffsetRequest{r.cfg.Topic: reqs},
		})
		if err != nil {
			return nil, fmt.Errorf("listing offsets of %s: %w", r.cfg.Topic, err)
		}
		out := make(map[int]int64, len(ids))
		for _, po := range res.Topics[r.cfg.Topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("listing offsets of %s/%d: %w", r.cfg.Topic, po.Partition, po.Error)
			}
			out[po.Partition] = max(po.FirstOffset, po.LastOffset)
		}
		if len(out) != len(ids) {
			return nil, fmt.Errorf("listing offsets of %s: got %d partitions, want %d", r.cfg.Topic, len(out), len(ids))
		}
		return out, nil
	}
	firsts, err := list(kafka.FirstOffsetOf)
	if err != nil {
		return nil, err
	}
	ends, err := list(kafka.LastOffsetOf)
	if err != nil {
		return nil, err
	}
	parts := make([]partitionInfo, len(ids))
	for i, id := range ids {
		parts[i] = partitionInfo{id: id, first: firsts[id], end: ends[id]}
	}
	return parts, nil
}

// startOffset is where partition p is consumed from: after the last applied
// offset, or its first offset when none was applied.
func (r *Reader) startOffset(ctx context.Context, p partitionInfo) (int64, error) {
	last, ok := r.cfg.Registry.Offset(p.id)
	switch {
	case !ok:
		return p.first, nil
	case last >= p.end:
		// Offsets beyond the partition's end: the topic was deleted and created
		// again. Its records are new ones; apply them all.
		r.log.Error("control offset beyond the partition's end; replaying the partition",
			zap.Int("partition", p.id), zap.Int64("offset", last), zap.Int64("end", p.end))
		r.cfg.Registry.forgetPartition(p.id)
		err := r.retry.Do(ctx, r.log, "resetting materialised control offset", func() error {
			return forgetOffset(ctx, r.cfg.Redis, r.cfg.Keys, p.id)
		})
		return p.first, err
	case last+1 < p.first:
		r.log.Warn("control records lost to retention; the control topic must not expire records",
			zap.Int("partition", p.id), zap.Int64("next", last+1), zap.Int64("first", p.first))
		return p.first, nil
	}
	return last + 1, nil
}

// discover starts a consumer for every partition added to the topic after Run
// started. A new partition starts from its beginning; it does not delay
// WaitCaughtUp, which is about the state at start.
func (r *Reader) discover(ctx context.Context, g *errgroup.Group) error {
	t := time.NewTicker(r.cfg.PartitionRefresh)
	defer t.Stop()
	failures := newStreak(r.log, "refreshing control partitions")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		parts, err := r.partitions(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures.fail(err)
			continue
		}
		failures.ok()
		for _, p := range parts {
			r.mu.Lock()
			known := r.running[p.id]
			r.running[p.id] = true
			r.mu.Unlock()
			if known {
				continue
			}
			r.log.Info("consuming new control partition", zap.Int("partition", p.id))
			start, err := r.startOffset(ctx, p)
			if err != nil {
				return nil // only ctx ends startOffset with an error
			}
			g.Go(func() error { return r.consume(ctx, p, start) })
		}
	}
}

// consume reads partition p from offset start until ctx ends.
func (r *Reader) consume(ctx context.Context, p partitionInfo, start int64) error {
	log := r.log.With(zap.Int("partition", p.id))
	fetchFailures := newStreak(log, "fetching control records")
	kr := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   r.cfg.Brokers,
		Dialer:    r.cfg.Kafka.Dialer(),
		Topic:     r.cfg.Topic,
		Partition: p.id,
		MinBytes:  1,
		MaxBytes:  1 << 20,
		MaxWait:   r.cfg.MaxWait,
		// kafka-go retries broker failures inside the reader; report them as one
		// streak instead of one line per attempt.
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			fetchFailures.fail(fmt.Errorf(format, args...))
		}),
	})
	defer func() {
		if err := kr.Close(); err != nil {
			log.Debug("closing control partition reader", zap.Error(err))
		}
	}()
	if err := kr.SetOffset(start); err != nil {
		return fmt.Errorf("seeking control partition %d to %d: %w", p.id, start, err)
	}

	for {
		m, ok := fetchNext(ctx, log, kr, r.retry, fetchFailures)
		if !ok {
			return nil
		}
		if err := r.handle(ctx, log, p.id, m); err != nil {
			return nil // only ctx ends handle with an error
		}
		if m.Offset+1 >= p.end {
			r.markCaughtUp(p.id)
		}
	}
}

// handle applies one record to the Registry, then to Redis (retrying until Redis
// takes it or ctx ends). The Registry goes first so that the worker follows the
// control topic even while Redis is slow; the materialisation catches up.
func (r *Reader) handle(ctx context.Context, log *zap.Logger, partition int, m kafka.Message) error {
	msg, err := schemas.DecodeControl(m.Value)
	var ch change
	if err == nil {
		if msg.At == nil && !m.Time.IsZero() {
			// The record's time stands in for a missing "at", so that every
			// worker stamps the same UpdatedAt.
			msg.At = &schemas.Timestamp{Time: m.Time.UTC()}
		}
		ch, err = r.cfg.Registry.apply(partition, m.Offset, msg)
	}
	ws, w, ok := "", webhook.Webhook{}, false
	switch {
	case err != nil:
		reason := rejectReason(err, m.Value)
		r.reject(reason)
		log.Warn("rejecting control record",
			zap.String("reason", reason), zap.Int64("offset", m.Offset),
			zap.ByteString("key", m.Key), zap.Error(err))
	case !ch.applied:
		r.replayed.Add(1)
		return nil // a replay: its effect is already materialised
	default:
		r.applied.Add(1)
		if ch.changed() {
			ws, w, ok = ch.workspace, ch.new, ch.newOK
		}
	}
	var first bool
	err = r.retry.Do(ctx, log, "materialising control record", func() (err error) {
		first, err = materialise(ctx, r.cfg.Redis, r.cfg.Keys, partition, m.Offset, ws, w, ok)
		return err
	})
	if err == nil && first && ws != "" && r.cfg.Activity != nil {
		// Every worker applies every record, but only the one whose apply
		// advanced the offset in Redis logs it: the activity appears once.
		r.recordChange(ctx, log, msg, ws)
	}
	return err
}

// purge deletes a deleted workspace's per-workspace state: its logs hold
// customer messages, and its health hashes would only wait for their TTL. A
// failure is logged, not retried: the logs and hashes expire by themselves.
func (r *Reader) purge(ctx context.Context, log *zap.Logger, ws string) {
	if err := r.cfg.Activity.Purge(ctx, ws); err != nil {
		log.Warn("purging a deleted workspace's logs and health; they expire by themselves", zap.String("workspace", ws), zap.Error(err))
	}
}

// recordChange adds an operator's change to the workspace's activity log,
// or purges the logs of a deleted one. Auto-disables are logged by the sink
// that caused them.
func (r *Reader) recordChange(ctx context.Context, log *zap.Logger, msg schemas.ControlMessage, ws string) {
	a := webhooklog.Activity{At: time.Now().UTC(), Detail: msg.Reason}
	switch msg.Type {
	case schemas.TypeConfigure:
		a.Action, a.Detail = webhooklog.ActionConfigured, fmt.Sprintf("granularity %s, url %s", msg.Granularity, urls.Redact(msg.URL))
	case schemas.TypeEnable:
		a.Action = webhooklog.ActionEnabled
	case schemas.TypeDisable:
		a.Action = webhooklog.ActionDisabled
	case schemas.TypeDelete:
		r.purge(ctx, log, ws)
		return
	default:
		return
	}
	if msg.At != nil {
		a.At = msg.At.Time
	}
	if err := r.cfg.Activity.RecordActivity(ctx, ws, a); err != nil {
		log.Warn("recording control activity", zap.String("workspace", ws), zap.Error(err))
	}
}

// rejectReason names why a record was rejected, as finely as the error allows.
func rejectReason(err error, data []byte) string {
	switch {
	case errors.Is(err, schemas.ErrInvalidJSON):
		return RejectInvalidJSON
	case errors.Is(err, schemas.ErrSchema):
		// The schema error does not say which rule failed in a form worth
		// parsing; run the package's own checks on a lenient decode instead.
		var msg schemas.ControlMessage
		if json.Unmarshal(data, &msg) == nil {
			if verr := Validate(msg); verr != nil {
				return rejectReason(verr, nil)
			}
		}
		return RejectSchema
	}
	for _, r := range rejectReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return RejectSchema
}

// rejectReasons maps the package's validation errors to their reject reasons.
var rejectReasons = []struct {
	err    error
	reason string
}{
	{ErrUnknownType, RejectUnknownType},
	{ErrMissingWorkspace, RejectMissingWorkspace},
	{ErrInvalidWorkspace, RejectInvalidWorkspace},
	{ErrInvalidID, RejectInvalidID},
	{ErrInvalidURL, RejectInvalidURL},
	{ErrInvalidGranularity, RejectInvalidGranularity},
	{ErrUnknownWorkspace, RejectUnknownWorkspace},
}

func (r *Reader) reject(reason string) {
	r.rejectedTotal.Add(1)
	r.mu.Lock()
	r.rejected[reason]++
	r.mu.Unlock()
}

func (r *Reader) markCaughtUp(partition int) {
	r.mu.Lock()
	delete(r.pending, partition)
	r.mu.Unlock()
	r.checkCaughtUp()
}

func (r *Reader) checkCaughtUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 && !r.CaughtUp() {
		r.log.Info("control topic caught up")
		close(r.caughtUp)
	}
}

// WaitCaughtUp returns once every partition has been applied up to the end it had
// when Run started, so that the Registry knows every workspace configured before
// this worker started. A worker must wait for it before consuming events, or it
// would drop the events of workspaces it has not learnt yet. It returns an error
// if ctx ends or Run stops first.
func (r *Reader) WaitCaughtUp(ctx context.Context) error {
	select {
	case <-r.caughtUp:
		return nil
	case <-r.stopped:
		if r.CaughtUp() {
			return nil
		}
		return errors.New("waiting for the control topic: reader stopped before catching up")
	case <-ctx.Done():
		return fmt.Errorf("waiting for the control topic: %w", ctx.Err())
	}
}

// CaughtUp reports whether WaitCaughtUp would return nil now (for /readyz).
func (r *Reader) CaughtUp() bool {
	select {
	case <-r.caughtUp:
		return true
	default:
		return false
	}
}

// Applied is the number of valid records applied since NewReader.
func (r *Reader) Applied() int64 { return r.applied.Load() }

// Replayed is the number of records read that the Registry had already applied.
// It stays 0 when the Reader resumes from the materialised offsets.
func (r *Reader) Replayed() int64 { return r.replayed.Load() }

// Rejected is the number of invalid records skipped since NewReader.
func (r *Reader) Rejected() int64 { return r.rejectedTotal.Load() }

// RejectedByReason returns the number of skipped records per Reject* reason.
func (r *Reader) RejectedByReason() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.rejected)
}

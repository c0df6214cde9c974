package sink

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/internal/faults"
	"github.com/outbound-webhooks/outbound/internal/redisbatch"
	"github.com/outbound-webhooks/outbound/internal/retry"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

var (
	//go:embed lua/gate.lua
	gateLua string
	//go:embed lua/failure.lua
	failureLua    string
	gateScript    = redis.NewScript(gateLua)
	failureScript = redis.NewScript(failureLua)
)

// Publisher publishes a control message (webhook.auto_disabled).
type Publisher interface {
	Publish(ctx context.Context, msg schemas.ControlMessage) error
}

// Config configures a Sink.
type Config struct {
	Redis     redis.UniversalClient
	Prefix    string // key prefix (default "outbound")
	Webhooks  webhook.Lookup
	Publisher Publisher
	Log       *webhooklog.Log
	Logger    *zap.Logger
	Client    ClientConfig
	// Timeouts are the flusher's (windowing.FlusherConfig.Timeouts). A delivery's
	// request ends at its context's deadline, which the flusher sets inside the
	// lease, or after Timeouts.Request when the context has none; the books of
	// an attempt get Timeouts.Grace of their own. Client.RequestTimeout defaults
	// to Timeouts.Request.
	Timeouts windowing.Timeouts
	// Product names the product in the aggregation's link sentence (default
	// "TimelinesAI").
	Product string
	// BundleLimits bound one request; a larger bundle goes out in parts, one
	// per claim of its chat (see RenderPart).
	BundleLimits BundleLimits
	// MaxErrors is how many consecutive failed attempts are tolerated; the next
	// one disables the webhook (default 10: "more than 10" disables).
	MaxErrors int
	// Backoff after a failed attempt, for the whole webhook: BackoffInitial
	// (default 5s) doubling up to BackoffMax (default 30m), jittered by 20%.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// RetryAfterMax clamps a receiver's Retry-After on 429 and 503 (default 1h).
	RetryAfterMax time.Duration
	// TimeScale divides the backoff durations, like windows (default 1).
	TimeScale float64
	Now       func() time.Time
}

// Stats counts delivery outcomes since start.
type Stats struct {
	Delivered    atomic.Int64
	Failed       atomic.Int64
	Dropped      atomic.Int64
	AutoDisabled atomic.Int64
}

// Sink delivers bundles to webhooks and keeps their books: consecutive errors,
// backoff, auto-disable, the activity log and the request log.
type Sink struct {
	cfg    Config
	client *http.Client
	stats  Stats
	// batch sends the books of concurrent successful deliveries as one
	// pipeline.
	batch *redisbatch.Batcher

	// Observe, when set, is called after every HTTP attempt (metrics).
	Observe func(workspace string, ok bool, took time.Duration)
}

// New validates cfg and fills defaults.
func New(cfg Config) (*Sink, error) {
	if cfg.Redis == nil || cfg.Webhooks == nil || cfg.Publisher == nil {
		return nil, errors.New("sink: Config needs Redis, Webhooks and Publisher")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "outbound"
	}
	if cfg.Log == nil {
		cfg.Log = webhooklog.New(cfg.Redis, cfg.Prefix)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Product == "" {
		cfg.Product = "TimelinesAI"
	}
	if cfg.MaxErrors <= 0 {
		cfg.MaxErrors = 10
	}
	if cfg.BackoffInitial <= 0 {
		cfg.BackoffInitial = 5 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 30 * time.Minute
	}
	if cfg.RetryAfterMax <= 0 {
		cfg.RetryAfterMax = time.Hour
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	if cfg.TimeScale < 1 {
		return nil, fmt.Errorf("sink: TimeScale must be >= 1, got %v", cfg.TimeScale)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Timeouts = cfg.Timeouts.WithDefaults()
	cfg.BundleLimits = cfg.BundleLimits.WithDefaults()
	if cfg.Client.RequestTimeout == 0 {
		cfg.Client.RequestTimeout = cfg.Timeouts.Request
	}
	client, err := NewHTTPClient(cfg.Client)
	if err != nil {
		return nil, err
	}
	cfg.Client = cfg.Client.WithDefaults()
	return &Sink{cfg: cfg, client: client, batch: redisbatch.New(cfg.Redis, 0)}, nil
}

// Stats returns live counters.
func (s *Sink) Stats() *Stats { return &s.stats }

func (s *Sink) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.cfg.TimeScale)
}

// HealthKey is where the consecutive-error count of a webhook epoch lives. A new
// epoch (configure, enable) starts from zero without anyone resetting anything.
// It is a workspace key (webhooklog.WorkspaceKey), so a delete purges it.
func HealthKey(prefix, workspace string, epoch int64) string {
	return webhooklog.WorkspaceKey(prefix, workspace, "health:"+strconv.FormatInt(epoch, 10))
}

// ConsecutiveErrors reads the current count of a webhook epoch.
func ConsecutiveErrors(ctx context.Context, rdb redis.UniversalClient, prefix, workspace string, epoch int64) (int, error) {
	n, err := rdb.HGet(ctx, HealthKey(prefix, workspace, epoch), "errors").Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

const healthTTL = 30 * 24 * time.Hour

var _ windowing.Admitter = (*Sink)(nil)

// Deliver implements windowing.Deliverer. It never waits for a webhook that
// is in backoff: it answers with a RetryAt instead. (How many deliveries run
// against one webhook at once is the flusher's business: FlusherConfig.PerWorkspace.)
func (s *Sink) Deliver(ctx context.Context, b windowing.Bundle) windowing.Outcome {
	now := s.cfg.Now()
	wh, ok := s.cfg.Webhooks.Lookup(b.Workspace)
	if !ok || !wh.Enabled || b.Epoch < wh.EnabledSince {
		// Pending at a disable or delete: the integration stopped, the bundle
		// goes. A deleted workspace's logs were purged and nobody reads them:
		// a drop logged there would outlive the delete.
		s.stats.Dropped.Add(1)
		if ok {
			s.activity(ctx, b.Workspace, webhooklog.Activity{At: now, Action: webhooklog.ActionDropped,
				BundleID: b.ID, ChatID: b.ChatID, Messages: len(b.Messages), Detail: "webhook disabled while the bundle was pending"})
		}
		return windowing.Outcome{Done: true, Dropped: true}
	}
	health := HealthKey(s.cfg.Prefix, b.Workspace, wh.Epoch)
	ctx, cancel := s.requestContext(ctx, now)
	defer cancel()
	if b.Admission != (healthy{wh.Epoch}) {
		if out, ok := s.gate(ctx, b.Workspace, wh, health, now); !ok {
			return out
		}
	}

	res, entry := s.attempt(ctx, b, wh)
	if s.Observe != nil {
		s.Observe(b.Workspace, res.ok(), res.took)
	}
	// The books are kept even when we are stopping or the request used all of
	// its time.
	bg, cancelBooks := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeouts.Grace)
	defer cancelBooks()
	if errors.Is(ctx.Err(), context.Canceled) && !res.ok() {
		// Our own shutdown is not the receiver's fault: release the probe, retry.
		// (A request that ran out of time is: its deadline is the receiver's.)
		s.record(bg, s.tx, b.Workspace, func(pipe redis.Pipeliner) { pipe.HSet(bg, health, "probe", 0) }, entry, webhooklog.Activity{At: now, Action: webhooklog.ActionFailed, BundleID: res.id,
			ChatID: b.ChatID, Messages: res.messages, Detail: "interrupted by shutdown; not counted: " + res.reason})
		return windowing.Outcome{RetryAt: now}
	}
	if res.ok() {
		// One round trip, shared with the deliveries that finish meanwhile:
		// reset the count (any success does), log, and let the flusher
		// acknowledge the bundle (or record the part) with them.
		out := windowing.Outcome{Done: true}
		if !res.last {
			// The chat's next claim sends the next part; nothing else of the
			// chat can go between.
			out = windowing.Outcome{PartMessages: res.messages, RetryAt: now}
		}
		var reset *redis.IntCmd
		s.record(bg, s.batch.Do, b.Workspace, func(pipe redis.Pipeliner) {
			// Plain commands, not a script: a reset reads nothing, and a
			// script call costs Redis about 8 µs more per delivery.
			reset = pipe.HSet(bg, health, "errors", 0, "next", 0, "probe", 0)
			pipe.Expire(bg, health, healthTTL)
			if b.Settle != nil {
				b.Settle(bg, pipe, out)
			}
		}, entry, webhooklog.Activity{At: now, Action: webhooklog.ActionDelivered, BundleID: res.id,
			ChatID: b.ChatID, Messages: res.messages, Status: res.status, DurationMS: res.took.Milliseconds()})
		out.Settled = b.Settle != nil
		if err := reset.Err(); err != nil {
			s.cfg.Logger.Warn("recording delivery success", zap.String("workspace", b.Workspace), zap.Error(err))
		}
		s.stats.Delivered.Add(1)
		return out
	}

	s.stats.Failed.Add(1)
	gone := res.status == http.StatusGone
	r, err := failureScript.Run(bg, s.cfg.Redis, []string{health}, s.cfg.MaxErrors, boolArg(gone),
		int(healthTTL.Seconds()), s.cfg.Now().Add(s.cfg.Timeouts.Grace).UnixMilli(), res.reason, now.Add(alertClaim).UnixMilli()).Int64Slice()
	if err != nil {
		s.cfg.Logger.Warn("recording delivery failure", zap.String("workspace", b.Workspace), zap.Error(err))
		return windowing.Outcome{RetryAt: now.Add(s.scaled(s.cfg.BackoffInitial))}
	}
	errs, disabledNow := int(r[0]), r[1] == 1
	wait := s.backoff(errs, res.retryAfter, res.hasRetryAfter)
	next := now.Add(wait)
	s.record(bg, s.tx, b.Workspace, func(pipe redis.Pipeliner) { pipe.HSet(bg, health, "next", next.UnixMilli(), "probe", 0) }, entry, webhooklog.Activity{At: now, Action: webhooklog.ActionFailed, BundleID: res.id,
		ChatID: b.ChatID, Messages: res.messages, Status: res.status, DurationMS: res.took.Milliseconds(),
		Detail: fmt.Sprintf("%s (consecutive errors: %d)", res.reason, errs)})
	if disabledNow {
		s.stats.AutoDisabled.Add(1)
		s.publishAutoDisabled(ctx, b.Workspace, wh, health, errs, res.reason)
	}
	return windowing.Outcome{RetryAt: next}
}

// gate runs the gate script: ok when the delivery may be attempted, else
// the outcome that reschedules it.
func (s *Sink) gate(ctx context.Context, ws string, wh webhook.Webhook, health string, now time.Time) (windowing.Outcome, bool) {
	// A probe holds the webhook until its attempt is over and recorded.
	deadline, _ := ctx.Deadline()
	g, err := gateScript.Run(ctx, s.cfg.Redis, []string{health},
		now.UnixMilli(), deadline.Add(s.cfg.Timeouts.Grace).UnixMilli(), s.scaled(time.Second).Milliseconds(), now.Add(alertClaim).UnixMilli()).Int64Slice()
	if err != nil {
		s.cfg.Logger.Warn("checking webhook backoff", zap.String("workspace", ws), zap.Error(err))
		return windowing.Outcome{RetryAt: now.Add(time.Second)}, false
	}
	switch g[0] {
	case -1:
		// Auto-disabled; the control topic will tell every worker. If the event
		// was never confirmed published, the gate handed its claim to us.
		if g[1] == 1 {
			s.republishAutoDisabled(ctx, ws, wh, health)
		}
		return windowing.Outcome{RetryAt: now.Add(s.scaled(time.Second))}, false
	case 0:
		return windowing.Outcome{RetryAt: time.UnixMilli(g[1])}, false
	}
	return windowing.Outcome{}, true
}

// healthy is the Admission of a bundle whose webhook, at this epoch, had no
// error since its last success and was not disabled when its chat was
// claimed: the gate script would only have read that and said go.
type healthy struct{ epoch int64 }

// Admission implements windowing.Admitter: it reads, with the claim's reads,
// the two health fields on which the gate lets a healthy webhook go, so that
// a bundle of a healthy webhook costs no round trip of its own before the
// request. A webhook that failed goes through the gate script (backoff, one
// probe at a time).
func (s *Sink) Admission(ctx context.Context, pipe redis.Pipeliner, workspaces []string) func(string) any {
	type read struct {
		epoch int64
		cmd   *redis.SliceCmd
	}
	reads := make(map[string]read, len(workspaces))
	for _, ws := range workspaces {
		if wh, ok := s.cfg.Webhooks.Lookup(ws); ok && wh.Enabled {
			reads[ws] = read{wh.Epoch, pipe.HMGet(ctx, HealthKey(s.cfg.Prefix, ws, wh.Epoch), "errors", "disabled")}
		}
	}
	return func(ws string) any {
		r, ok := reads[ws]
		if !ok || r.cmd.Err() != nil {
			return nil
		}
		v := r.cmd.Val()
		errs, _ := v[0].(string)
		disabled, _ := v[1].(string)
		if (errs == "" || errs == "0") && disabled != "1" {
			return healthy{r.epoch}
		}
		return nil
	}
}

// requestContext bounds a delivery by ctx's deadline, which the flusher sets
// inside the chat's lease, or by one request timeout when ctx has none.
func (s *Sink) requestContext(ctx context.Context, now time.Time) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, now.Add(s.cfg.Timeouts.Request))
}

func boolArg(b bool) int {
	if b {
		return 1
	}
	return 0
}

// backoff is the wait before the webhook's next attempt after its n-th
// consecutive failure; a receiver's Retry-After wins, within a clamp.
func (s *Sink) backoff(n int, retryAfter time.Duration, hasRetryAfter bool) time.Duration {
	if hasRetryAfter {
		return min(max(retryAfter, s.scaled(time.Second)), s.scaled(s.cfg.RetryAfterMax))
	}
	return retry.Policy{Initial: s.scaled(s.cfg.BackoffInitial), Max: s.scaled(s.cfg.BackoffMax)}.Delay(n)
}

// attemptResult is one HTTP attempt's outcome.
type attemptResult struct {
	status        int
	reason        string // why it failed, for logs
	retryAfter    time.Duration
	hasRetryAfter bool
	took          time.Duration
	// The part attempted: its id, its messages, and whether it is the last.
	id       string
	messages int
	last     bool
}

func (r attemptResult) ok() bool { return r.reason == "" }

// attempt makes one HTTP attempt and returns its outcome and its request log
// entry, for the caller to record with the outcome's bookkeeping.
func (s *Sink) attempt(ctx context.Context, b windowing.Bundle, wh webhook.Webhook) (attemptResult, webhooklog.Request) {
	start := s.cfg.Now()
	entry := webhooklog.Request{At: start, BundleID: b.ID, ChatID: b.ChatID, Attempt: b.Attempt, Method: http.MethodPost, URL: urls.Redact(wh.URL)}
	var res attemptResult
	part, err := RenderPart(b, s.cfg.Product, s.cfg.BundleLimits)
	if err != nil {
		res = attemptResult{id: b.ID, messages: len(b.Messages), last: true, reason: fmt.Sprintf("rendering payload: %v", err)}
	} else {
		entry.BundleID = part.ID
		res = s.send(ctx, part, wh, &entry)
		res.id, res.messages, res.last = part.ID, part.Messages, part.Last
	}
	res.took = s.cfg.Now().Sub(start)
	entry.DurationMS = res.took.Milliseconds()
	entry.Error = res.reason
	return res, entry
}

// record sends, with what books queues, the attempt's request log entry and
// activity. They are sent even when the entries cannot be encoded: books may
// carry the flusher's record of the outcome (Bundle.Settle).
func (s *Sink) record(ctx context.Context, send func(context.Context, func(redis.Pipeliner)) error, ws string,
	books func(redis.Pipeliner), r webhooklog.Request, a webhooklog.Activity) {
	// Encoded here, not in the shared pipeline's sender: each delivery pays
	// for its own.
	w, err := s.cfg.Log.Encode(ws, r, a)
	xerr := send(ctx, func(pipe redis.Pipeliner) {
		books(pipe)
		if w != nil {
			w.Queue(ctx, pipe)
		}
	})
	if !redis.HasErrorPrefix(xerr, "NOSCRIPT") {
		// A script Redis had lost is run again by whoever queued it.
		err = errors.Join(err, xerr)
	}
	if err == nil {
		err = w.Check(ctx, s.cfg.Redis)
	}
	if err != nil {
		s.cfg.Logger.Warn("recording delivery attempt", zap.String("workspace", ws), zap.Error(err))
	}
}

// tx sends what queue adds as one transaction of its own.
func (s *Sink) tx(ctx context.Context, queue func(redis.Pipeliner)) error {
	pipe := s.cfg.Redis.TxPipeline()
	queue(pipe)
	_, err := pipe.Exec(ctx)
	return err
}

func (s *Sink) send(ctx context.Context, part Part, wh webhook.Webhook, entry *webhooklog.Request) attemptResult {
	body := part.Body
	entry.Body = string(body)
	if err := urls.CheckHTTP(wh.URL); err != nil {
		return attemptResult{reason: fmt.Sprintf("invalid webhook URL %s: %v", urls.Redact(wh.URL), err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(body))
	if err != nil {
		return attemptResult{reason: fmt.Sprintf("building request: %v", withoutURL(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	SetWebhookHeaders(req.Header, wh.Secret, part.ID, s.cfg.Now(), body)
	entry.Headers = req.Header.Clone()
	entry.Headers.Set("User-Agent", s.cfg.Client.UserAgent)
	if wh.Secret != "" {
		entry.Headers.Set(HeaderWebhookSignature, "v1,<redacted>")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return attemptResult{reason: describe(err)}
	}
	defer resp.Body.Close()
	kept, truncated, readErr := ReadCapped(resp.Body, s.cfg.Client.MaxResponseBody)
	entry.Response = &webhooklog.Response{Status: resp.StatusCode, Headers: resp.Header, Body: string(kept), Truncated: truncated}
	res := attemptResult{status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if readErr != nil {
			// The receiver said yes; a broken body read does not undo that.
			s.cfg.Logger.Debug("reading response body", zap.Error(readErr))
		}
		return res
	case resp.StatusCode == http.StatusGone:
		res.reason = "the receiver answered HTTP 410 Gone: the webhook is turned off at once"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.reason = fmt.Sprintf("the receiver answered HTTP %s; redirects are not followed", resp.Status)
	default:
		res.reason = fmt.Sprintf("the receiver answered HTTP %s", resp.Status)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.retryAfter, res.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.cfg.Now())
	}
	return res
}

// describe turns a transport error into a reason an owner can act on. The
// reason is stored (request log, last_error) and published (auto_disabled,
// email), so it never quotes the URL, which may carry a token.
func describe(err error) string {
	err = withoutURL(err)
	var blocked *BlockedAddressError
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &blocked):
		// Error() tells operators which flag lifts the refusal; the owner
		// reading this can only change the URL.
		why := blocked.Reason
		if !blocked.ByPort {
			why = "the address is " + why + "; webhooks must point to a public address"
		}
		return fmt.Sprintf("not allowed to connect to %s: %s", blocked.Addr, why)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("timed out: %v", err)
	case errors.As(err, &dns):
		return fmt.Sprintf("could not resolve the receiver's host name: %v", err)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Sprintf("could not connect: %v", err)
	}
	return fmt.Sprintf("the request failed: %v", err)
}

// withoutURL drops the *url.Error that http.Client and url.Parse wrap errors
// in: its text quotes the whole URL, query string and password included, and
// where the error is shown the URL is already there, redacted.
func withoutURL(err error) error {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// parseRetryAfter reads delay-seconds or an HTTP date; ok is false when the
// header is absent or unusable, and the backoff applies.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func (s *Sink) activity(ctx context.Context, ws string, a webhooklog.Activity) {
	if err := s.cfg.Log.RecordActivity(context.WithoutCancel(ctx), ws, a); err != nil {
		s.cfg.Logger.Warn("recording activity", zap.String("workspace", ws), zap.Error(err))
	}
}

// alertClaim is how long the worker that claimed an unpublished
// webhook.auto_disabled event has to publish it before the next delivery that
// meets the disabled webhook claims it again. It exceeds a publish's timeout.
const alertClaim = 30 * time.Second

// republishAutoDisabled publishes the auto-disable event of a webhook whose
// claimer died or failed before confirming it, with the count and last error
// that the health hash kept.
func (s *Sink) republishAutoDisabled(ctx context.Context, ws string, wh webhook.Webhook, health string) {
	v, err := s.cfg.Redis.HMGet(ctx, health, "errors", "last_error").Result()
	if err != nil {
		// The claim runs out and the next delivery tries again.
		s.cfg.Logger.Warn("reading an unpublished auto-disable", zap.String("workspace", ws), zap.Error(err))
		return
	}
	errs := 0
	if n, ok := v[0].(string); ok {
		errs, _ = strconv.Atoi(n)
	}
	reason, _ := v[1].(string)
	s.publishAutoDisabled(ctx, ws, wh, health, errs, reason)
}

// publishAutoDisabled emits webhook.auto_disabled for the alert claim the
// caller holds (see lua/failure.lua). The event's id is derived from the
// workspace and epoch, so a republish after a crash is the same event: the
// Notifier emails once per id, and the Registry ignores the repeat. The claim
// is confirmed (alert 0) only after the publish; on failure it is released at
// once, and a worker that dies here lets it run out.
func (s *Sink) publishAutoDisabled(ctx context.Context, ws string, wh webhook.Webhook, health string, errs int, reason string) {
	faults.Crash(faults.AfterAlertClaim)
	bg := context.WithoutCancel(ctx)
	log := s.cfg.Logger.With(zap.String("workspace", ws))
	at := schemas.Timestamp{Time: s.cfg.Now().UTC()}
	msg := webhook.AutoDisabledEvent(wh, errs, reason)
	msg.At = &at
	if err := s.cfg.Publisher.Publish(ctx, msg); err != nil {
		log.Error("publishing webhook.auto_disabled", zap.Error(err))
		if err := s.cfg.Redis.HSet(bg, health, "alert", 1).Err(); err != nil {
			log.Warn("releasing the auto-disable alert claim; it runs out by itself", zap.Error(err))
		}
		return
	}
	if err := s.cfg.Redis.HSet(bg, health, "alert", 0).Err(); err != nil {
		// The claim runs out and the event is published again under the same
		// id: a repeat, not a second alert.
		log.Warn("confirming the auto-disable alert", zap.Error(err))
	}
	s.activity(ctx, ws, webhooklog.Activity{At: at.Time, Action: webhooklog.ActionAutoDisabled,
		Detail: fmt.Sprintf("disabled after %d consecutive errors; last error: %s", errs, reason)})
	log.Warn("webhook auto-disabled", zap.Int("consecutive_errors", errs), zap.String("last_error", reason))
}

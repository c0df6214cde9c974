// Package webhooklog keeps the two logs a workspace's owner reads about its
// webhook, in Redis so they survive restarts and every worker writes to the same
// place: the activity log (the 10 most recent actions) and the request log (the
// 100 most recent requests with the request sent and response received). Both
// are newest first, and bounded: a body is kept up to MaxBody, the request log
// up to Config.MaxRequestBytes, and both expire Config.TTL after their last
// write. Beside them, every attempt is counted in its hour (delivered or
// failed) for HoursKept, however many the request log has let go.
package webhooklog

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/redisconn"
)

// Sizes the product promises.
const (
	ActivitySize = 10
	RequestsSize = 100
)

// Bounds of what one entry keeps. A bundle's body can be many megabytes and a
// receiver's answer or status line is up to it: the log keeps enough to see
// what was sent and answered, and says when it kept less.
const (
	// MaxBody is how much of a request or response body an entry keeps.
	MaxBody = 64 << 10
	// MaxDetail is how much of an activity's detail or an attempt's error
	// an entry keeps.
	MaxDetail = 1 << 10
)

// Defaults of Config.
const (
	DefaultMaxRequestBytes = 2 << 20
	DefaultTTL             = 30 * 24 * time.Hour
)

// Actions of the activity log.
const (
	ActionDelivered    = "delivered"
	ActionFailed       = "attempt_failed"
	ActionAutoDisabled = "auto_disabled"
	ActionDisabled     = "disabled"
	ActionEnabled      = "enabled"
	ActionConfigured   = "configured"
	ActionDropped      = "dropped"
)

// Activity is one action on a webhook.
type Activity struct {
	At         time.Time `json:"at"`
	Action     string    `json:"action"`
	BundleID   string    `json:"bundle_id,omitempty"`
	ChatID     string    `json:"chat_id,omitempty"`
	Messages   int       `json:"messages,omitempty"`
	Status     int       `json:"status,omitempty"` // HTTP status, 0 if none
	DurationMS int64     `json:"duration_ms,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// Describe is the activity's details in a line, for people (ctl status, the
// console).
func (a Activity) Describe() string {
	var parts []string
	if a.ChatID != "" {
		parts = append(parts, "chat "+a.ChatID)
	}
	if a.Messages > 0 {
		parts = append(parts, fmt.Sprintf("%d message(s)", a.Messages))
	}
	if a.BundleID != "" {
		parts = append(parts, "bundle "+a.BundleID)
	}
	if a.Status != 0 {
		parts = append(parts, fmt.Sprintf("HTTP %d", a.Status))
	}
	if a.DurationMS != 0 {
		parts = append(parts, fmt.Sprintf("%dms", a.DurationMS))
	}
	if a.Detail != "" {
		parts = append(parts, a.Detail)
	}
	return strings.Join(parts, ", ")
}

// HoursKept is how long the count of one hour's attempts lives past the
// hour's start: the page draws the last 24 hours.
const HoursKept = 25 * time.Hour

// Hour counts a workspace's attempts in the hour from Start.
type Hour struct {
	Start             time.Time
	Delivered, Failed int
}

// Request is one HTTP attempt, as sent and as answered.
type Request struct {
	At         time.Time `json:"at"`
	BundleID   string    `json:"bundle_id"`
	ChatID     string    `json:"chat_id"`
	Attempt    int       `json:"attempt"`
	DurationMS int64     `json:"duration_ms"`
	Method     string    `json:"method"`
	URL        string    `json:"url"`
	// Headers as sent; the signature is redacted.
	Headers http.Header `json:"headers"`
	// Body is the request body, or its first MaxBody bytes when
	// BodyTruncated; BodySize is then the size of the whole body.
	Body          string    `json:"body"`
	BodyTruncated bool      `json:"request_body_truncated,omitempty"`
	BodySize      int       `json:"request_body_size,omitempty"`
	Response      *Response `json:"response,omitempty"`
	Error         string    `json:"error,omitempty"`
}

// Delivered reports whether the attempt delivered: the receiver answered 2xx.
func (r Request) Delivered() bool {
	return r.Error == "" && r.Response != nil && r.Response.Status/100 == 2
}

// Response is what the receiver answered, the body read up to a cap.
type Response struct {
	Status    int         `json:"status"`
	Headers   http.Header `json:"headers"`
	Body      string      `json:"body"`
	Truncated bool        `json:"truncated"`
}

// Config configures a Log. Redis is required.
type Config struct {
	Redis redis.UniversalClient
	// Prefix starts every key (default "outbound").
	Prefix string
	// MaxRequestBytes caps a workspace's request log: the oldest entries go
	// until the rest fit, though the newest always stays (default 2 MiB).
	MaxRequestBytes int64
	// TTL is how long a workspace's logs outlive their last write (default
	// 30 days), so the logs of a workspace nobody deletes go too.
	TTL time.Duration
}

// Log reads and writes the logs of every workspace.
type Log struct {
	cfg Config
}

// New returns a Log on rdb with the default bounds; prefix starts every key
// (default "outbound").
func New(rdb redis.UniversalClient, prefix string) *Log {
	return NewWithConfig(Config{Redis: rdb, Prefix: prefix})
}

// NewWithConfig returns a Log with cfg's defaults filled.
func NewWithConfig(cfg Config) *Log {
	if cfg.Prefix == "" {
		cfg.Prefix = "outbound"
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	return &Log{cfg: cfg}
}

// WorkspaceKey is the Redis key of a workspace's state called name. Every
// per-workspace key of the module is built here, so that Purge finds them
// all; the hash tag keeps them in one slot on Redis Cluster.
func WorkspaceKey(prefix, workspace, name string) string {
	if prefix == "" {
		prefix = "outbound"
	}
	return prefix + ":wh:{" + workspace + "}:" + name
}

// Purge deletes every key of workspace: its logs, and whatever else the
// module keeps under WorkspaceKey (the sink's health hash of every epoch). It
// SCANs for them, since a health hash exists per epoch and nothing lists the
// epochs; a delete is rare, and SCAN does not block Redis. On a cluster it
// scans every master: a SCAN sent through the cluster client reaches one node.
func (l *Log) Purge(ctx context.Context, workspace string) error {
	match := globEscape(l.key(workspace, "")) + "*"
	err := redisconn.ForEachMaster(ctx, l.cfg.Redis, func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, match, 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := node.Unlink(ctx, batch...).Err()
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 100 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return fmt.Errorf("purging %s: %w", workspace, err)
	}
	return nil
}

// globEscape quotes the characters a SCAN MATCH pattern gives a meaning to:
// a workspace id may hold any of them.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^-`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (l *Log) key(workspace, log string) string {
	return WorkspaceKey(l.cfg.Prefix, workspace, log)
}

//go:embed push.lua
var pushLua string

var pushScript = redis.NewScript(pushLua)

// entry is one entry on its way into one of a workspace's log lists.
type entry struct {
	log     string
	size    int
	byteCap int64 // 0: the list has none
	v       any
}

func (l *Log) request(r Request) entry {
	return entry{"requests", RequestsSize, l.cfg.MaxRequestBytes, r.bounded()}
}

func activity(a Activity) entry { return entry{"activity", ActivitySize, 0, a.bounded()} }

// push names the keys and arguments of one push.lua call that adds entries
// to workspace's lists.
func (l *Log) push(workspace string, entries ...entry) ([]string, []any, error) {
	keys := make([]string, 0, 2*len(entries))
	args := make([]any, 0, 1+3*len(entries))
	args = append(args, int64(l.cfg.TTL/time.Second))
	for _, e := range entries {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		// Bodies are HTML and JSON: escaping <, > and & would make them up to
		// six times longer in the log than they were on the wire.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(e.v); err != nil {
			return nil, nil, fmt.Errorf("encoding %s entry of %s: %w", e.log, workspace, err)
		}
		key := l.key(workspace, e.log)
		keys = append(keys, key, key+"_bytes")
		args = append(args, bytes.TrimSuffix(b.Bytes(), []byte("\n")), e.size, e.byteCap)
	}
	return keys, args, nil
}

// Write is a push encoded and waiting to be queued on a pipeline, for a
// caller that has more to send in the same round trip (the sink records a
// delivery's outcome with it, in a pipeline shared with other deliveries:
// encoding first keeps that work off the goroutine that sends them all). All
// of a workspace's keys share one hash slot.
type Write struct {
	l         *Log
	workspace string
	r         *Request // counted in its hour when set
	keys      []string
	args      []any
	cmd       *redis.Cmd
}

// Encode encodes a request and an action for one script call. Queue adds it to
// a pipeline; once that is sent, Check says how the write went.
func (l *Log) Encode(workspace string, r Request, a Activity) (*Write, error) {
	return l.encode(workspace, &r, l.request(r), activity(a))
}

// encode encodes entries for one push.lua call which, when r is not nil,
// also counts r in its hour.
func (l *Log) encode(workspace string, r *Request, entries ...entry) (*Write, error) {
	keys, args, err := l.push(workspace, entries...)
	if err != nil {
		return nil, err
	}
	return &Write{l: l, workspace: workspace, r: r, keys: keys, args: args}, nil
}

// Queue adds the write to pipe.
func (w *Write) Queue(ctx context.Context, pipe redis.Pipeliner) {
	w.cmd = pushScript.EvalSha(ctx, pipe, w.keys, w.args...)
	if w.r != nil {
		w.l.countHour(ctx, pipe, w.workspace, *w.r)
	}
}

// Check reports how a queued write went once its pipeline was sent, and
// writes it again when Redis had lost the script (a restart empties its
// cache, and a pipeline cannot load it).
func (w *Write) Check(ctx context.Context, rdb redis.Scripter) error {
	err := w.cmd.Err()
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		err = pushScript.Run(ctx, rdb, w.keys, w.args...).Err()
	}
	return err
}

// countHour adds r to its hour's count on pipe.
func (l *Log) countHour(ctx context.Context, pipe redis.Pipeliner, workspace string, r Request) {
	start := r.At.UTC().Truncate(time.Hour)
	// An attempt of an hour no longer kept counts nowhere (an old entry
	// replayed, a test's fixed date).
	if ttl := time.Until(start.Add(HoursKept)); ttl > 0 {
		key := l.hourKey(workspace, start)
		field := "failed"
		if r.Delivered() {
			field = "delivered"
		}
		pipe.HIncrBy(ctx, key, field, 1)
		pipe.Expire(ctx, key, ttl)
	}
}

func (l *Log) hourKey(workspace string, start time.Time) string {
	return l.key(workspace, "hour:"+strconv.FormatInt(start.Unix(), 10))
}

// bounded returns r with its bodies cut to MaxBody and its error to MaxDetail.
func (r Request) bounded() Request {
	if len(r.Body) > MaxBody {
		r.BodySize, r.BodyTruncated = len(r.Body), true
		r.Body = truncate(r.Body, MaxBody)
	}
	if r.Response != nil && len(r.Response.Body) > MaxBody {
		resp := *r.Response
		resp.Body, resp.Truncated = truncate(resp.Body, MaxBody), true
		r.Response = &resp
	}
	r.Error = truncate(r.Error, MaxDetail)
	return r
}

func (a Activity) bounded() Activity {
	a.Detail = truncate(a.Detail, MaxDetail)
	return a
}

// truncate cuts s to at most n bytes, at a rune boundary so that the JSON of
// the entry does not end in a replacement character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RecordActivity adds an action to the workspace's activity log.
func (l *Log) RecordActivity(ctx context.Context, workspace string, a Activity) error {
	if err := l.record(ctx, workspace, activity(a)); err != nil {
		return fmt.Errorf("recording activity of %s: %w", workspace, err)
	}
	return nil
}

// RecordRequest adds an attempt to the workspace's request log.
func (l *Log) RecordRequest(ctx context.Context, workspace string, r Request) error {
	w, err := l.encode(workspace, &r, l.request(r))
	if err == nil {
		pipe := l.cfg.Redis.Pipeline()
		w.Queue(ctx, pipe)
		_, err = pipe.Exec(ctx)
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			err = w.Check(ctx, l.cfg.Redis)
		}
	}
	if err != nil {
		return fmt.Errorf("recording request of %s: %w", workspace, err)
	}
	return nil
}

func (l *Log) record(ctx context.Context, workspace string, e entry) error {
	keys, args, err := l.push(workspace, e)
	if err != nil {
		return err
	}
	return pushScript.Run(ctx, l.cfg.Redis, keys, args...).Err()
}

func list[T any](ctx context.Context, rdb redis.UniversalClient, key string) ([]T, error) {
	raw, err := rdb.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(raw))
	for _, s := range raw {
		var v T
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("decoding log entry: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Activity returns the workspace's activity log, newest first.
func (l *Log) Activity(ctx context.Context, workspace string) ([]Activity, error) {
	out, err := list[Activity](ctx, l.cfg.Redis, l.key(workspace, "activity"))
	if err != nil {
		return nil, fmt.Errorf("reading activity of %s: %w", workspace, err)
	}
	return out, nil
}

// Requests returns the workspace's request log, newest first.
func (l *Log) Requests(ctx context.Context, workspace string) ([]Request, error) {
	out, err := list[Request](ctx, l.cfg.Redis, l.key(workspace, "requests"))
	if err != nil {
		return nil, fmt.Errorf("reading requests of %s: %w", workspace, err)
	}
	return out, nil
}

// Hours returns the counts of the n hours up to the one holding now, oldest
// first, in one round trip (a workspace's keys share a slot).
func (l *Log) Hours(ctx context.Context, workspace string, now time.Time, n int) ([]Hour, error) {
	first := now.UTC().Truncate(time.Hour).Add(-time.Duration(n-1) * time.Hour)
	pipe := l.cfg.Redis.Pipeline()
	cmds := make([]*redis.SliceCmd, n)
	for i := range n {
		cmds[i] = pipe.HMGet(ctx, l.hourKey(workspace, first.Add(time.Duration(i)*time.Hour)), "delivered", "failed")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading the hourly counts of %s: %w", workspace, err)
	}
	out := make([]Hour, n)
	for i, c := range cmds {
		v := c.Val() // nil for a field, or an hour, with nothing counted
		delivered, _ := v[0].(string)
		failed, _ := v[1].(string)
		out[i] = Hour{Start: first.Add(time.Duration(i) * time.Hour)}
		out[i].Delivered, _ = strconv.Atoi(delivered)
		out[i].Failed, _ = strconv.Atoi(failed)
	}
	return out, nil
}

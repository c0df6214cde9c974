// Package webhooklog keeps the two logs a workspace's owner reads about its
// webhook, in Redis so they survive restarts and every worker writes to the same
// place: the activity log (the 10 most recent actions) and the request log (the
// 100 most recent requests with the full request sent and response received).
// Both are newest first.
package webhooklog

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sizes the product promises.
const (
	ActivitySize = 10
	RequestsSize = 100
)

// Actions of the activity log.
const (
	ActionDelivered    = "delivered"
	ActionFailed       = "attempt_failed"
	ActionAutoDisabled = "auto_disabled"
	ActionDisabled     = "disabled"
	ActionEnabled      = "enabled"
	ActionConfigured   = "configured"
	ActionDeleted      = "deleted"
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
	Headers  http.Header `json:"headers"`
	Body     string      `json:"body"`
	Response *Response   `json:"response,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// Response is what the receiver answered, the body read up to a cap.
type Response struct {
	Status    int         `json:"status"`
	Headers   http.Header `json:"headers"`
	Body      string      `json:"body"`
	Truncated bool        `json:"truncated"`
}

// Log reads and writes the logs of every workspace.
type Log struct {
	rdb    *redis.Client
	prefix string
}

// New returns a Log on rdb; prefix starts every key (default "outbound").
func New(rdb *redis.Client, prefix string) *Log {
	if prefix == "" {
		prefix = "outbound"
	}
	return &Log{rdb: rdb, prefix: prefix}
}

func (l *Log) key(workspace, log string) string {
	// The hash tag keeps a workspace's keys in one slot on Redis Cluster.
	return l.prefix + ":wh:{" + workspace + "}:" + log
}

func (l *Log) push(ctx context.Context, key string, size int, v any) error {
	pipe := l.rdb.TxPipeline()
	if err := queue(ctx, pipe, key, size, v); err != nil {
		return err
	}
	_, err := pipe.Exec(ctx)
	return err
}

func queue(ctx context.Context, pipe redis.Pipeliner, key string, size int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	pipe.LPush(ctx, key, b)
	pipe.LTrim(ctx, key, 0, int64(size-1))
	return nil
}

// Queue adds a request and an action to pipe, for a caller that has more to
// send in the same round trip (the sink records a delivery's outcome with them).
// All of a workspace's keys share one hash slot.
func (l *Log) Queue(ctx context.Context, pipe redis.Pipeliner, workspace string, r Request, a Activity) error {
	if err := queue(ctx, pipe, l.key(workspace, "requests"), RequestsSize, r); err != nil {
		return fmt.Errorf("encoding request of %s: %w", workspace, err)
	}
	if err := queue(ctx, pipe, l.key(workspace, "activity"), ActivitySize, a); err != nil {
		return fmt.Errorf("encoding activity of %s: %w", workspace, err)
	}
	return nil
}

// RecordActivity adds an action to the workspace's activity log.
func (l *Log) RecordActivity(ctx context.Context, workspace string, a Activity) error {
	if err := l.push(ctx, l.key(workspace, "activity"), ActivitySize, a); err != nil {
		return fmt.Errorf("recording activity of %s: %w", workspace, err)
	}
	return nil
}

// RecordRequest adds an attempt to the workspace's request log.
func (l *Log) RecordRequest(ctx context.Context, workspace string, r Request) error {
	if err := l.push(ctx, l.key(workspace, "requests"), RequestsSize, r); err != nil {
		return fmt.Errorf("recording request of %s: %w", workspace, err)
	}
	return nil
}

func list[T any](ctx context.Context, rdb *redis.Client, key string) ([]T, error) {
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
	out, err := list[Activity](ctx, l.rdb, l.key(workspace, "activity"))
	if err != nil {
		return nil, fmt.Errorf("reading activity of %s: %w", workspace, err)
	}
	return out, nil
}

// Requests returns the workspace's request log, newest first.
func (l *Log) Requests(ctx context.Context, workspace string) ([]Request, error) {
	out, err := list[Request](ctx, l.rdb, l.key(workspace, "requests"))
	if err != nil {
		return nil, fmt.Errorf("reading requests of %s: %w", workspace, err)
	}
	return out, nil
}

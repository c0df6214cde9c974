package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap/zaptest"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// rig is a sink wired to real Redis, a real control topic and the real
// windowing store and flusher, with time scaled so backoff takes milliseconds.
type rig struct {
	t       *testing.T
	rdb     redis.UniversalClient
	prefix  string // of every key: tests share the Redis Cluster
	store   *windowing.Store
	sink    *sink.Sink
	logs    *webhooklog.Log
	control string
	offset  int64
}

const scale = 5000 // backoff: 1ms doubling, capped at 360ms

func newRig(t *testing.T, hooks webhook.Fixed, configure ...func(*sink.Config)) *rig {
	t.Helper()
	rdb := testenv.Redis(t)
	prefix := testenv.KeyPrefix()
	r := &rig{t: t, rdb: rdb, prefix: prefix, control: testenv.NewTopic(t, 1), logs: webhooklog.New(rdb, prefix)}
	pub, err := control.NewPublisher(control.PublisherConfig{Brokers: testenv.KafkaBrokers(t), Topic: r.control})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	r.store, err = windowing.NewStore(windowing.Config{Redis: rdb, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sink.Config{Redis: rdb, Prefix: prefix, Webhooks: hooks, Publisher: pub, Log: r.logs, Logger: zaptest.NewLogger(t),
		TimeScale: scale, Client: sink.ClientConfig{AllowPrivate: true, RequestTimeout: 5 * time.Second}}
	for _, c := range configure {
		c(&cfg)
	}
	r.sink, err = sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := windowing.NewFlusher(windowing.FlusherConfig{Store: r.store, Deliverer: r.sink, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.RunPartition(ctx, 0, caughtUp{}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

type caughtUp struct{}

func (caughtUp) CaughtUpTo() time.Time     { return time.Now() }
func (caughtUp) Appended() <-chan struct{} { return nil }
func (caughtUp) Applied() int64            { return -1 }

// send buffers messages of granularity none for ws, chat by chat.
func (r *rig) send(ws string, chats, perChat int) {
	r.t.Helper()
	var es []windowing.Entry
	for i := range perChat {
		for c := range chats {
			r.offset++
			es = append(es, windowing.Entry{Offset: r.offset, Workspace: ws, Epoch: 1, Granularity: webhook.None,
				Chat:    schemas.Chat{ChatID: fmt.Sprint("chat-", c), FullName: "Chat"},
				Message: windowing.Message{ID: fmt.Sprintf("%s-c%d-m%03d", ws, c, i), Direction: "sent", At: time.Now(), Text: "hi"}})
		}
	}
	if _, err := r.store.Append(context.Background(), 0, es, r.offset, -1); err != nil {
		r.t.Fatal(err)
	}
}

// autoDisabledEvents reads the control topic from the start for a while.
func (r *rig) autoDisabledEvents(wait time.Duration) []schemas.ControlMessage {
	r.t.Helper()
	kr := kafka.NewReader(kafka.ReaderConfig{Brokers: testenv.KafkaBrokers(r.t), Topic: r.control, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer kr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out []schemas.ControlMessage
	for {
		m, err := kr.ReadMessage(ctx)
		if err != nil {
			return out
		}
		msg, err := schemas.DecodeControl(m.Value)
		if err != nil {
			r.t.Fatalf("control topic holds an invalid message: %v", err)
		}
		if msg.Type == schemas.TypeAutoDisabled {
			out = append(out, msg)
		}
	}
}

func hook(ws, url string) webhook.Webhook {
	return webhook.Webhook{Workspace: ws, URL: url, Granularity: webhook.None, Enabled: true, Epoch: 1, EnabledSince: 1}
}

// TestFailingReceiverIsDisabledAfterElevenAttempts: more than 10 consecutive
// errors disable the webhook: exactly 11 attempts, one auto_disabled event, and
// both logs tell the story.
func TestFailingReceiverIsDisabledAfterElevenAttempts(t *testing.T) {
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attempts.Add(1)
		http.Error(w, "database is down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	r := newRig(t, webhook.Fixed{"ws": hook("ws", srv.URL)})
	r.send("ws", 3, 4) // three chats: the first attempts run concurrently
	testenv.Eventually(t, "11 attempts", 30*time.Second, func() bool { return attempts.Load() >= 11 })
	events := r.autoDisabledEvents(2 * time.Second) // also lets any extra attempt show
	if n := attempts.Load(); n != 11 {
		t.Fatalf("receiver saw %d attempts, want exactly 11", n)
	}
	if len(events) != 1 {
		t.Fatalf("%d webhook.auto_disabled events, want exactly 1", len(events))
	}
	if e := events[0]; e.WorkspaceID != "ws" || e.ConsecutiveErrors != 11 || e.Epoch != 1 || e.LastError == "" || e.ID == "" || e.At == nil {
		t.Fatalf("auto_disabled event = %+v", e)
	}
	ctx := context.Background()
	activity, err := r.logs.Activity(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	if len(activity) != webhooklog.ActivitySize || activity[0].Action != webhooklog.ActionAutoDisabled {
		t.Fatalf("activity log has %d entries, newest %+v; want 10, newest auto_disabled", len(activity), activity[0])
	}
	requests, err := r.logs.Requests(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	if len(requests) != 11 {
		t.Fatalf("request log has %d entries, want 11", len(requests))
	}
	for i, q := range requests {
		if q.Response == nil || q.Response.Status != 500 || q.Response.Body != "database is down\n" || q.Body == "" || q.Error == "" {
			t.Fatalf("request %d lacks the full exchange: %+v", i, q)
		}
	}
	// The log is newest first by when each attempt was recorded. Attempts
	// admitted while the webhook was healthy (at most one per chat: its first,
	// claimed before any failure was recorded) run concurrently, and on a busy
	// machine one may be recorded after later probes; every other attempt is a
	// probe, one at a time. So all but those three start in log order.
	if n := longestNewestFirst(requests); n < len(requests)-3 {
		t.Fatalf("only %d of the %d logged attempts started in log order, want all but the 3 first attempts of the chats", n, len(requests))
	}
	if n, _ := sink.ConsecutiveErrors(ctx, r.rdb, r.prefix, "ws", 1); n != 11 {
		t.Fatalf("consecutive errors = %d, want 11", n)
	}
}

// longestNewestFirst is the length of the longest run of log entries, not
// necessarily adjacent, whose start times fall strictly as the log goes on.
func longestNewestFirst(requests []webhooklog.Request) int {
	best := 0
	longest := make([]int, len(requests)) // longest such run ending at i
	for i, q := range requests {
		longest[i] = 1
		for j := range i {
			if q.At.Before(requests[j].At) {
				longest[i] = max(longest[i], longest[j]+1)
			}
		}
		best = max(best, longest[i])
	}
	return best
}

// TestRecoveringReceiverKeepsTheWebhook: five failures, then success: the count
// resets, the webhook stays enabled, every message arrives once, in chat order.
func TestRecoveringReceiverKeepsTheWebhook(t *testing.T) {
	var (
		mu       sync.Mutex
		calls    int
		accepted = map[string][]string{}
		ids      = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p schemas.MessagePayload
		_ = json.NewDecoder(req.Body).Decode(&p)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 5 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		accepted[p.Chat.ChatID] = append(accepted[p.Chat.ChatID], p.Message.MessageID)
		ids[req.Header.Get("webhook-id")]++
	}))
	defer srv.Close()
	r := newRig(t, webhook.Fixed{"ws": hook("ws", srv.URL)})
	r.send("ws", 2, 5)
	testenv.Eventually(t, "10 accepted deliveries", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) == 10
	})
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for id, n := range ids {
		if n != 1 {
			t.Errorf("bundle %s accepted %d times", id, n)
		}
	}
	for c := range 2 {
		chat := fmt.Sprint("chat-", c)
		want := fmt.Sprint([]string{"ws-c" + fmt.Sprint(c) + "-m000", "ws-c" + fmt.Sprint(c) + "-m001", "ws-c" + fmt.Sprint(c) + "-m002", "ws-c" + fmt.Sprint(c) + "-m003", "ws-c" + fmt.Sprint(c) + "-m004"})
		if got := fmt.Sprint(accepted[chat]); got != want {
			t.Errorf("chat %s accepted %s, want %s", chat, got, want)
		}
	}
	if n, _ := sink.ConsecutiveErrors(context.Background(), r.rdb, r.prefix, "ws", 1); n != 0 {
		t.Errorf("consecutive errors = %d after a success, want 0", n)
	}
	if s := r.sink.Stats(); s.AutoDisabled.Load() != 0 || s.Failed.Load() != 5 || s.Delivered.Load() != 10 {
		t.Errorf("stats: delivered %d failed %d auto-disabled %d", s.Delivered.Load(), s.Failed.Load(), s.AutoDisabled.Load())
	}
}

// TestSlowReceiverDoesNotHoldBackOthers: one workspace's receiver takes 2 s per
// request; another workspace's deliveries all complete before the slow one has
// finished its second.
func TestSlowReceiverDoesNotHoldBackOthers(t *testing.T) {
	var slowDone, fastDone atomic.Int64
	var fastFinishedAtSlow atomic.Int64
	fastFinishedAtSlow.Store(-1)
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		time.Sleep(2 * time.Second)
		slowDone.Add(1)
	}))
	defer slow.Close()
	fast := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		if fastDone.Add(1) == 40 {
			fastFinishedAtSlow.Store(slowDone.Load())
		}
	}))
	defer fast.Close()
	r := newRig(t, webhook.Fixed{"slow": hook("slow", slow.URL), "fast": hook("fast", fast.URL)})
	r.send("slow", 8, 3) // more chats than the per-webhook cap of 4
	r.send("fast", 8, 5)
	testenv.Eventually(t, "all fast deliveries", 30*time.Second, func() bool { return fastDone.Load() == 40 })
	if n := fastFinishedAtSlow.Load(); n > 4 {
		t.Fatalf("the fast workspace finished only after %d slow deliveries: it waited on the slow one", n)
	}
	t.Logf("fast workspace finished 40 deliveries while the slow one had completed %d", fastFinishedAtSlow.Load())
}

// TestDeliveriesVerifyWithStandardWebhooks: a receiver using the reference
// Standard Webhooks library accepts what the sink sends, and the request log
// keeps the request without the signature.
func TestDeliveriesVerifyWithStandardWebhooks(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var verified, rejected atomic.Int64
	var sawID sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body json.RawMessage
		_ = json.NewDecoder(req.Body).Decode(&body)
		if err := verifier.Verify(body, req.Header); err != nil {
			rejected.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if req.Header.Get("User-Agent") == "" || req.Header.Get("Content-Type") != "application/json" {
			rejected.Add(1)
		}
		sawID.Store(req.Header.Get("webhook-id"), true)
		verified.Add(1)
	}))
	defer srv.Close()
	h := hook("ws", srv.URL)
	h.Secret = secret
	r := newRig(t, webhook.Fixed{"ws": h})
	r.send("ws", 2, 3)
	testenv.Eventually(t, "6 verified deliveries", 20*time.Second, func() bool { return verified.Load()+rejected.Load() >= 6 })
	if rejected.Load() != 0 {
		t.Fatalf("%d deliveries failed verification", rejected.Load())
	}
	reqs, _ := r.logs.Requests(context.Background(), "ws")
	for _, q := range reqs {
		if sig := q.Headers.Get("webhook-signature"); sig != "v1,<redacted>" {
			t.Fatalf("request log keeps the signature: %q", sig)
		}
		if _, ok := sawID.Load(q.Headers.Get("webhook-id")); !ok {
			t.Fatalf("logged webhook-id %q was not what the receiver saw", q.Headers.Get("webhook-id"))
		}
	}
}

// TestGoneDisablesAtOnce: 410 Gone is the receiver saying "stop": one attempt,
// one auto_disabled event.
func TestGoneDisablesAtOnce(t *testing.T) {
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusGone)
	}))
	defer srv.Close()
	r := newRig(t, webhook.Fixed{"ws": hook("ws", srv.URL)})
	r.send("ws", 1, 3)
	testenv.Eventually(t, "an attempt", 10*time.Second, func() bool { return attempts.Load() >= 1 })
	events := r.autoDisabledEvents(2 * time.Second)
	if attempts.Load() != 1 || len(events) != 1 {
		t.Fatalf("%d attempts and %d auto_disabled events, want 1 and 1", attempts.Load(), len(events))
	}
}

// TestTransportErrorsAreLoggedAttempts: a refused connection and an unusable URL
// are failed attempts with their reason in the request log. (The SSRF guard's
// refusals have their own table in guard_test.go.)
func TestTransportErrorsAreLoggedAttempts(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close() // nothing listens there any more
	cases := []struct {
		name, url, reason string
	}{
		{"connection refused", dead, "connection refused"},
		{"invalid URL", "ftp://example.com/hook", "invalid webhook URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, webhook.Fixed{"ws": hook("ws", tc.url)})
			r.send("ws", 1, 1)
			testenv.Eventually(t, "a failed attempt", 10*time.Second, func() bool {
				q, _ := r.logs.Requests(context.Background(), "ws")
				return len(q) > 0
			})
			q, _ := r.logs.Requests(context.Background(), "ws")
			if !strings.Contains(q[0].Error, tc.reason) {
				t.Fatalf("logged error %q, want it to mention %q", q[0].Error, tc.reason)
			}
		})
	}
}

// TestRequestLogHidesURLPasswords: a webhook URL with basic-auth credentials is
// logged with the password redacted.
func TestRequestLogHidesURLPasswords(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	withAuth := strings.Replace(srv.URL, "http://", "http://zapier:s3cret-pass@", 1)
	r := newRig(t, webhook.Fixed{"ws": hook("ws", withAuth)})
	r.send("ws", 1, 1)
	testenv.Eventually(t, "a logged request", 10*time.Second, func() bool {
		q, _ := r.logs.Requests(context.Background(), "ws")
		return len(q) > 0
	})
	q, _ := r.logs.Requests(context.Background(), "ws")
	if strings.Contains(q[0].URL, "s3cret-pass") || !strings.Contains(q[0].URL, "zapier:") {
		t.Fatalf("logged URL %q: want the user kept and the password redacted", q[0].URL)
	}
}

// TestSuccessResetsTheCountEvenAfterRedisLostItsScripts: the success path sends
// the reset script by hash in a pipeline; after a Redis restart emptied the
// script cache it must still reset the count.
func TestSuccessResetsTheCountEvenAfterRedisLostItsScripts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	r := newRig(t, webhook.Fixed{"ws": hook("ws", srv.URL)})
	ctx := context.Background()
	if err := r.rdb.HSet(ctx, sink.HealthKey(r.prefix, "ws", 1), "errors", 3).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r.send("ws", 1, 1)
	testenv.Eventually(t, "the delivery", 10*time.Second, func() bool { return r.sink.Stats().Delivered.Load() == 1 })
	if n, err := sink.ConsecutiveErrors(ctx, r.rdb, r.prefix, "ws", 1); err != nil || n != 0 {
		t.Fatalf("consecutive errors = %d, %v after a success; want 0", n, err)
	}
	if q, _ := r.logs.Requests(ctx, "ws"); len(q) != 1 {
		t.Fatalf("%d requests logged, want 1", len(q))
	}
}

// TestUnconfirmedAutoDisableIsPublishedAgain sets up the health hash as a worker
// leaves it when it dies between disabling a webhook and publishing the event,
// and as it is while a live claimer still works on it or after it confirmed.
// Only an unconfirmed alert whose claim ran out is published, once, by the next
// delivery that meets the webhook, with the count and error the hash kept.
func TestUnconfirmedAutoDisableIsPublishedAgain(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		alert  int64
		events int
	}{
		{"the claimer died before publishing and its claim ran out", now.Add(-time.Second).UnixMilli(), 1},
		{"a live claimer still holds the claim", now.Add(time.Hour).UnixMilli(), 0},
		{"the event was confirmed", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hook("ws", "https://receiver.example/hook")
			r := newRig(t, webhook.Fixed{"ws": h})
			health := sink.HealthKey(r.prefix, "ws", h.Epoch)
			if err := r.rdb.HSet(context.Background(), health, "errors", 11, "disabled", 1, "alert", tc.alert,
				"last_error", "receiver answered 500").Err(); err != nil {
				t.Fatal(err)
			}
			r.send("ws", 1, 1)
			got := r.autoDisabledEvents(3 * time.Second)
			if len(got) != tc.events {
				t.Fatalf("%d webhook.auto_disabled events, want %d: %+v", len(got), tc.events, got)
			}
			if tc.events == 0 {
				return
			}
			want := webhook.AutoDisabledEvent(h, 11, "receiver answered 500")
			if e := got[0]; e.ID != want.ID || e.ConsecutiveErrors != 11 || e.LastError != want.LastError || e.Epoch != h.Epoch {
				t.Errorf("event = %+v, want id %s, 11 errors, last error %q, epoch %d", e, want.ID, want.LastError, h.Epoch)
			}
			if a, err := r.rdb.HGet(context.Background(), health, "alert").Int64(); err != nil || a != 0 {
				t.Errorf("alert = %d (%v) after the publish, want 0 (confirmed)", a, err)
			}
		})
	}
}

// TestRequestLogEntryOfAHugeBundleIsSmall: a bundle part of seven messages of
// 64 KiB is a POST of nearly 1 MiB; its request log entry keeps 64 KiB of it
// and says so.
func TestRequestLogEntryOfAHugeBundleIsSmall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	r := newRig(t, webhook.Fixed{"ws": hook("ws", srv.URL)})
	text := strings.Repeat("x", 64<<10)
	var es []windowing.Entry
	for i := range 7 {
		r.offset++
		es = append(es, windowing.Entry{Offset: r.offset, Workspace: "ws", Epoch: 1, Granularity: webhook.H1,
			Chat:    schemas.Chat{ChatID: "chat", FullName: "Chat"},
			Message: windowing.Message{ID: fmt.Sprintf("m%03d", i), Direction: "sent", At: time.Now().Add(-2 * time.Hour), Text: text}})
	}
	if _, err := r.store.Append(context.Background(), 0, es, r.offset, -1); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the delivery", 30*time.Second, func() bool { return r.sink.Stats().Delivered.Load() == 1 })
	ctx := context.Background()
	q, err := r.logs.Requests(ctx, "ws")
	if err != nil || len(q) != 1 {
		t.Fatalf("%d requests logged, %v; want 1", len(q), err)
	}
	if !q[0].BodyTruncated || q[0].BodySize < 7*len(text) || len(q[0].Body) != webhooklog.MaxBody {
		t.Errorf("entry keeps %d bytes of the body, truncated %v, size %d; want %d, true and the whole size",
			len(q[0].Body), q[0].BodyTruncated, q[0].BodySize, webhooklog.MaxBody)
	}
	key := webhooklog.WorkspaceKey(r.prefix, "ws", "requests")
	entry, err := r.rdb.LIndex(ctx, key, 0).Result()
	if err != nil || len(entry) > 70<<10 {
		t.Fatalf("the stored entry is %d bytes (%v), want at most 70 KiB", len(entry), err)
	}
	// Redis allocates a 70 KiB element in jemalloc's 80 KiB size class.
	mem, err := r.rdb.MemoryUsage(ctx, key).Result()
	if err != nil || mem > 96<<10 {
		t.Fatalf("MEMORY USAGE of the request log = %d bytes (%v), want at most 96 KiB", mem, err)
	}
	t.Logf("request log: entry of %d bytes, MEMORY USAGE %d bytes", len(entry), mem)
}

// TestTheRequestEndsAtTheContextDeadline: the flusher's deadline (the rest of
// the lease minus its grace) cuts the request short of the client's timeout,
// and running out of it is the receiver's failure, counted like any other.
func TestTheRequestEndsAtTheContextDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	r := newRig(t, webhook.Fixed{"ws": hook("ws", srv.URL)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := r.sink.Deliver(ctx, windowing.Bundle{ID: "obw_1", Workspace: "ws", ChatID: "chat", Granularity: webhook.None, Epoch: 1,
		Messages: []windowing.Message{{ID: "m1", Direction: "sent", At: time.Now(), Text: "hi"}}})
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("delivery took %s; the context allowed 200ms (client timeout 5s)", took)
	}
	if out.Done {
		t.Fatal("a request that timed out was acknowledged")
	}
	if n, err := sink.ConsecutiveErrors(context.Background(), r.rdb, r.prefix, "ws", 1); err != nil || n != 1 {
		t.Fatalf("consecutive errors = %d (%v), want the timeout counted", n, err)
	}
}

// TestConcurrentDeliveriesSettleInSharedPipelines: many deliveries finishing
// at once share their books' pipelines, and each still gets its own: every
// bundle is delivered and acknowledged once, and one workspace whose request
// log Redis refuses (a key of the wrong type) loses only its own log entries.
func TestConcurrentDeliveriesSettleInSharedPipelines(t *testing.T) {
	const workspaces, chats, perChat = 16, 4, 5
	var mu sync.Mutex
	seen := map[string]int{} // webhook-id -> deliveries
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		mu.Lock()
		seen[req.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer srv.Close()
	hooks := webhook.Fixed{}
	for w := range workspaces {
		ws := fmt.Sprint("ws", w)
		hooks[ws] = hook(ws, srv.URL)
	}
	r := newRig(t, hooks)
	ctx := context.Background()
	if err := r.rdb.Set(ctx, webhooklog.WorkspaceKey(r.prefix, "ws0", "requests"), "not a list", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for ws := range hooks {
		r.send(ws, chats, perChat)
	}
	const total = workspaces * chats * perChat
	testenv.Eventually(t, "every bundle acknowledged", 60*time.Second, func() bool {
		_, queued, err := r.store.Pending(ctx, 0)
		return err == nil && queued == 0 && r.sink.Stats().Delivered.Load() >= total
	})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != total {
		t.Errorf("%d distinct bundles delivered, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("bundle %s delivered %d times, want once", id, n)
		}
	}
	if n := r.sink.Stats().Delivered.Load(); n != total {
		t.Errorf("%d deliveries, want %d", n, total)
	}
	for ws := range hooks {
		reqs, err := r.logs.Requests(ctx, ws)
		switch {
		case ws == "ws0" && err == nil:
			t.Errorf("%s: request log readable (%d entries), want the refused key", ws, len(reqs))
		case ws != "ws0" && (err != nil || len(reqs) != chats*perChat):
			t.Errorf("%s: %d requests logged (%v), want %d", ws, len(reqs), err, chats*perChat)
		}
		if n, err := sink.ConsecutiveErrors(ctx, r.rdb, r.prefix, ws, 1); err != nil || n != 0 {
			t.Errorf("%s: consecutive errors %d (%v), want 0", ws, n, err)
		}
	}
}

package control_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// webhook.delete leaves no key of the workspace behind: configure, deliver
// (a failure and a success, so that both logs and a health hash exist, under
// two epochs), delete; then no key of the workspace remains, and the other
// workspace's keys are as they were.
func TestDeleteRemovesEveryKeyOfTheWorkspace(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.NewTopic(t, 1)
	rdb := testenv.Redis(t)
	logs := webhooklog.New(rdb, "")
	reg := control.NewRegistry()
	r, err := control.NewReader(control.ReaderConfig{Brokers: brokers, Topic: topic, Redis: rdb, Registry: reg,
		Activity: logs, Logger: zaptest.NewLogger(t), PartitionRefresh: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runInBackground(t, "Reader.Run", r.Run))
	pub := newPublisher(t, brokers, topic)

	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	// The workspace ids hold SCAN's glob characters: the purge must match them
	// literally, and "ws*" must not take "ws_b" with it.
	const gone, kept = "ws*[a]", "ws_b"
	goneCfg := configure(gone, srv.URL, "none")
	goneCfg.OwnerEmail = "owner@example.com"
	publish(t, pub, goneCfg, configure(kept, srv.URL, "none"))
	publish(t, pub, schemas.ControlMessage{Type: schemas.TypeEnable, WorkspaceID: gone})
	now := time.Now()
	s, err := sink.New(sink.Config{Redis: rdb, Webhooks: reg, Publisher: pub, Log: logs,
		Client: sink.ClientConfig{AllowPrivate: true}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deliver := func(ws string) {
		t.Helper()
		w, _ := reg.Lookup(ws) // deleted: the sink drops the bundle
		s.Deliver(ctx, windowing.Bundle{ID: "b", Workspace: ws, ChatID: "c", Granularity: webhook.None, Epoch: w.Epoch, Attempt: 1,
			Chat: schemas.Chat{ChatID: "c"}, Messages: []windowing.Message{{ID: "m", Direction: schemas.DirectionSent, At: now, Text: "hi"}}})
		now = now.Add(time.Hour) // past any backoff
	}
	eventually(t, "three records applied", func() string {
		if n := r.Applied(); n < 3 {
			return fmt.Sprintf("%d applied", n)
		}
		return ""
	})
	fail.Store(true)
	deliver(gone)
	deliver(kept)
	fail.Store(false)
	deliver(gone)
	deliver(kept)
	// A health hash of an earlier epoch, as a re-configure leaves it.
	if err := rdb.HSet(ctx, sink.HealthKey("", gone, 1), "errors", 3).Err(); err != nil {
		t.Fatal(err)
	}

	keysOf := func(ws string) []string {
		t.Helper()
		var out []string
		iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			if strings.Contains(iter.Val(), "{"+ws+"}") {
				out = append(out, iter.Val())
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	before, keptBefore := keysOf(gone), keysOf(kept)
	if len(before) < 4 || len(keptBefore) < 3 {
		t.Fatalf("before the delete: %q and %q; want logs and health hashes of both", before, keptBefore)
	}
	keptValues := dump(t, rdb, keptBefore)

	publish(t, pub, schemas.ControlMessage{Type: schemas.TypeDelete, WorkspaceID: gone})
	eventually(t, "the delete applied", func() string {
		if _, ok := reg.Lookup(gone); ok {
			return "still configured"
		}
		if k := keysOf(gone); len(k) > 0 {
			return "left: " + strings.Join(k, ", ")
		}
		return ""
	})
	// A bundle still pending for the deleted workspace is dropped without
	// writing its logs again.
	deliver(gone)
	if k := keysOf(gone); len(k) > 0 {
		t.Errorf("a drop after the delete wrote %q", k)
	}
	if after := keysOf(kept); !slices.Equal(after, keptBefore) || !maps.Equal(dump(t, rdb, after), keptValues) {
		t.Errorf("%s's keys changed: %q, want %q", kept, after, keptBefore)
	}
}

// dump returns each key's value as DUMP serialises it.
func dump(t *testing.T, rdb interface {
	Dump(context.Context, string) *redis.StringCmd
}, keys []string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := rdb.Dump(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

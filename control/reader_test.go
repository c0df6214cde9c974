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
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// Two workers (two Readers, one Redis as in production) learn every workspace
// configured before they started by the time WaitCaughtUp returns, and both follow
// a later change.
func TestReadersConvergeAndFollowChanges(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.NewTopic(t, 3)
	rdb, keys := newRedis(t)
	pub := newPublisher(t, brokers, topic)

	workspaces := []string{"ws_1", "ws_2", "ws_3"}
	for i, ws := range workspaces {
		publish(t, pub, configure(ws, fmt.Sprintf("https://hooks.example/%d", i), schemas.Granularities[i]))
	}

	regs := []*control.Registry{control.NewRegistry(), control.NewRegistry()}
	readers := make([]*control.Reader, len(regs))
	for i, reg := range regs {
		readers[i] = startReader(t, brokers, topic, rdb, keys, reg)
	}
	for i, r := range readers {
		waitCaughtUp(t, r)
		// No polling here: WaitCaughtUp promises everything published before Run.
		for j, ws := range workspaces {
			w, ok := regs[i].Lookup(ws)
			if !ok || !w.Enabled || w.URL != fmt.Sprintf("https://hooks.example/%d", j) {
				t.Fatalf("worker %d after WaitCaughtUp: Lookup(%s) = %+v, %v", i, ws, w, ok)
			}
		}
	}
	if a, b := regs[0].All(), regs[1].All(); !equalWebhooks(a, b) {
		t.Fatalf("workers disagree:\n  %+v\n  %+v", a, b)
	}

	// Let the readers go idle, so the disable meets a fetch waiting at the broker.
	time.Sleep(500 * time.Millisecond)
	published := time.Now()
	publish(t, pub, schemas.ControlMessage{Type: schemas.TypeDisable, WorkspaceID: "ws_2", Reason: "receiver migration"})
	for i, reg := range regs {
		eventually(t, fmt.Sprintf("worker %d sees ws_2 disabled", i), func() string {
			w, _ := reg.Lookup("ws_2")
			if w.Enabled || w.DisabledReason != "receiver migration" {
				return fmt.Sprintf("ws_2 = %+v", w)
			}
			return ""
		})
	}
	// Informational only: the promise is "within a second", but a wall-clock
	// assertion would flake on a loaded machine.
	t.Logf("disable visible on both workers %s after Publish returned", time.Since(published).Round(time.Millisecond))
	if a, b := regs[0].All(), regs[1].All(); !equalWebhooks(a, b) {
		t.Fatalf("workers disagree after the disable:\n  %+v\n  %+v", a, b)
	}
	eventually(t, "Redis materialisation shows ws_2 disabled", func() string {
		w, ok, err := control.LoadWebhook(context.Background(), rdb, keys, "ws_2")
		if err != nil || !ok || w.Enabled {
			return fmt.Sprintf("LoadWebhook = %+v, %v, %v", w, ok, err)
		}
		if want, _ := regs[0].Lookup("ws_2"); !equalWebhooks([]webhook.Webhook{w}, []webhook.Webhook{want}) {
			return fmt.Sprintf("LoadWebhook = %+v, registry has %+v", w, want)
		}
		return ""
	})
	for i, r := range readers {
		if n := r.Rejected(); n != 0 {
			t.Errorf("worker %d rejected %d records, want 0", i, n)
		}
	}
}

// Invalid records are counted by reason and skipped; the reader goes on with the
// valid record behind them, and the materialised offset moves past them too.
func TestReaderRejectsInvalidRecords(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.NewTopic(t, 1) // one partition: "after them" means after them
	rdb, keys := newRedis(t)

	invalid := []struct {
		reason string
		key    string
		value  string
	}{
		{control.RejectInvalidJSON, "ws_1", `{"type": "webhook.configure", `},
		{control.RejectUnknownType, "ws_1", `{"type": "webhook.explode", "workspace_id": "ws_1"}`},
		{control.RejectInvalidURL, "ws_1", `{"type": "webhook.configure", "workspace_id": "ws_1", "url": "ftp://files.example/x", "granularity": "1h", "enabled": true, "owner_email": "o@example.com"}`},
		{control.RejectInvalidGranularity, "ws_1", `{"type": "webhook.configure", "workspace_id": "ws_1", "url": "https://a.example/h", "granularity": "2h", "enabled": true, "owner_email": "o@example.com"}`},
		{control.RejectMissingWorkspace, "", `{"type": "webhook.disable"}`},
		{control.RejectUnknownWorkspace, "ws_nobody", `{"type": "webhook.enable", "workspace_id": "ws_nobody"}`},
		// Crafted ids: the key separator, a reserved window field, 900 000 bytes.
		{control.RejectInvalidWorkspace, "ws_ok", `{"type": "webhook.disable", "workspace_id": "ws_ok\u001f"}`},
		{control.RejectInvalidWorkspace, "ws_ok", `{"type": "webhook.delete", "workspace_id": "\u0000d"}`},
		{control.RejectInvalidWorkspace, "w", `{"type": "webhook.delete", "workspace_id": "` + strings.Repeat("w", 900_000) + `"}`},
		{control.RejectInvalidID, "ws_ok", `{"type": "webhook.disable", "workspace_id": "ws_ok", "id": "c\u0085"}`},
	}
	valid := `{"type": "webhook.configure", "workspace_id": "ws_ok", "url": "https://a.example/h", "granularity": "none", "enabled": true, "owner_email": "o@example.com"}`

	var records []kafka.Message
	wantReasons := map[string]int64{}
	for _, rec := range invalid {
		records = append(records, kafka.Message{Key: []byte(rec.key), Value: []byte(rec.value)})
		wantReasons[rec.reason]++
	}
	records = append(records, kafka.Message{Key: []byte("ws_ok"), Value: []byte(valid)})
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.WriteMessages(ctx, records...); err != nil {
		t.Fatalf("writing raw records: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	reg := control.NewRegistry()
	core, logs := observer.New(zap.WarnLevel)
	r := startReaderLogged(t, brokers, topic, rdb, keys, reg, zap.New(core))
	waitCaughtUp(t, r)

	// Every rejection is logged with its reason, in topic order.
	var logged []string
	for _, e := range logs.FilterMessage("rejecting control record").All() {
		logged = append(logged, e.ContextMap()["reason"].(string))
	}
	var wantLogged []string
	for _, rec := range invalid {
		wantLogged = append(wantLogged, rec.reason)
	}
	if !slices.Equal(logged, wantLogged) {
		t.Errorf("logged rejection reasons %v, want %v", logged, wantLogged)
	}
	if got, ok := reg.Lookup("ws_ok"); !ok || got.Granularity != webhook.None {
		t.Fatalf("valid record after the invalid ones: Lookup(ws_ok) = %+v, %v", got, ok)
	}
	if n := r.Rejected(); n != int64(len(invalid)) {
		t.Errorf("Rejected() = %d, want %d", n, len(invalid))
	}
	if got := r.RejectedByReason(); !maps.Equal(got, wantReasons) {
		t.Errorf("RejectedByReason() = %v, want %v", got, wantReasons)
	}
	if n := r.Applied(); n != 1 {
		t.Errorf("Applied() = %d, want 1", n)
	}
	if _, ok := reg.Lookup("ws_1"); ok {
		t.Error("an invalid configure created ws_1")
	}
	eventually(t, "materialised offset covers every record", func() string {
		st, err := control.LoadState(ctx, rdb, keys)
		if err != nil {
			return err.Error()
		}
		if st.Offsets[0] != int64(len(records)-1) || len(st.Webhooks) != 1 {
			return fmt.Sprintf("offsets %v, %d webhooks", st.Offsets, len(st.Webhooks))
		}
		return ""
	})
}

// A Reader started on a Redis that holds the materialisation resumes after the
// stored offsets (it applies none of the old records again) with the same state; a
// Reader on an empty Redis reads the topic from the start.
func TestReaderRestartResumesFromRedis(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.NewTopic(t, 2)
	rdb, keys := newRedis(t)
	pub := newPublisher(t, brokers, topic)

	history := []schemas.ControlMessage{
		configure("ws_a", "https://a.example/h", "1h"),
		configure("ws_b", "https://b.example/h", "24h"),
		configure("ws_c", "https://c.example/h", "none"),
		{Type: schemas.TypeDisable, WorkspaceID: "ws_a"},
		{Type: schemas.TypeDelete, WorkspaceID: "ws_c"},
	}
	publish(t, pub, history...)

	first := control.NewRegistry()
	func() {
		r, err := control.NewReader(control.ReaderConfig{Brokers: brokers, Topic: topic, Redis: rdb, Keys: keys, Registry: first})
		if err != nil {
			t.Fatal(err)
		}
		stop := runInBackground(t, "first Reader.Run", r.Run)
		defer stop()
		waitCaughtUp(t, r)
		if n := r.Applied(); n != int64(len(history)) {
			t.Fatalf("first reader applied %d records, want %d", n, len(history))
		}
		// The materialisation is written after the Registry; wait for it to
		// hold everything before the "crash".
		eventually(t, "materialisation complete", func() string {
			st, err := control.LoadState(context.Background(), rdb, keys)
			if err != nil {
				return err.Error()
			}
			if !maps.Equal(st.Offsets, first.Offsets()) {
				return fmt.Sprintf("Redis offsets %v, registry offsets %v", st.Offsets, first.Offsets())
			}
			return ""
		})
	}()
	want := first.All()
	if len(want) != 2 {
		t.Fatalf("first reader's state = %+v, want ws_a and ws_b", want)
	}

	tests := []struct {
		name        string
		redis       func(testing.TB) (redis.UniversalClient, control.Keys)
		wantApplied int64
	}{
		{"same Redis resumes after the stored offsets", func(testing.TB) (redis.UniversalClient, control.Keys) { return rdb, keys }, 0},
		{"empty Redis reads from the beginning", newRedis, int64(len(history))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := control.NewRegistry()
			rdb, keys := tc.redis(t)
			r := startReader(t, brokers, topic, rdb, keys, reg)
			waitCaughtUp(t, r)
			if n := r.Applied(); n != tc.wantApplied {
				t.Errorf("Applied() after catching up = %d, want %d", n, tc.wantApplied)
			}
			if n := r.Replayed(); n != 0 {
				t.Errorf("Replayed() = %d: the reader re-read records the materialisation already held", n)
			}
			if got := reg.All(); !equalWebhooks(got, want) {
				t.Errorf("state after restart:\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}

	// The resumed reader still follows the topic: one new record, one apply.
	reg := control.NewRegistry()
	r := startReader(t, brokers, topic, rdb, keys, reg)
	waitCaughtUp(t, r)
	publish(t, pub, schemas.ControlMessage{Type: schemas.TypeEnable, WorkspaceID: "ws_a"})
	eventually(t, "resumed reader applies the new enable", func() string {
		if w, _ := reg.Lookup("ws_a"); !w.Enabled || r.Applied() != 1 {
			return fmt.Sprintf("ws_a = %+v, Applied() = %d", w, r.Applied())
		}
		return ""
	})
}

// equalWebhooks compares webhook lists, UpdatedAt as an instant.
func equalWebhooks(a, b []webhook.Webhook) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.UpdatedAt.Equal(y.UpdatedAt) {
			return false
		}
		x.UpdatedAt, y.UpdatedAt = time.Time{}, time.Time{}
		if x != y {
			return false
		}
	}
	return true
}

// webhook.delete leaves no key of the workspace behind: configure, deliver
// (a failure and a success, so that both logs and a health hash exist, under
// two epochs), delete; then no key of the workspace remains, and the other
// workspace's keys are as they were.
func TestDeleteRemovesEveryKeyOfTheWorkspace(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.NewTopic(t, 1)
	rdb, keys := newRedis(t)
	logs := webhooklog.New(rdb, string(keys))
	reg := control.NewRegistry()
	r, err := control.NewReader(control.ReaderConfig{Brokers: brokers, Topic: topic, Redis: rdb, Keys: keys, Registry: reg,
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
	s, err := sink.New(sink.Config{Redis: rdb, Prefix: string(keys), Webhooks: reg, Publisher: pub, Log: logs,
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
	if err := rdb.HSet(ctx, sink.HealthKey(string(keys), gone, 1), "errors", 3).Err(); err != nil {
		t.Fatal(err)
	}

	keysOf := func(ws string) []string {
		t.Helper()
		var out []string
		// A SCAN through a cluster client reaches one master: ask each.
		err := redisconn.ForEachMaster(ctx, rdb, func(ctx context.Context, node *redis.Client) error {
			iter := node.Scan(ctx, 0, string(keys)+":*", 1000).Iterator()
			for iter.Next(ctx) {
				if strings.Contains(iter.Val(), "{"+ws+"}") {
					out = append(out, iter.Val())
				}
			}
			return iter.Err()
		})
		if err != nil {
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

package control_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/smtptest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
)

// Each auto-disable event is emailed once to the workspace's owner: not again when
// the event is published twice with one id, not twice by two notifiers in one
// group, and still once when the first SMTP attempt fails. Superseded events and
// workspaces without an owner send nothing.
func TestNotifierEmailsOwnerOncePerEvent(t *testing.T) {
	tests := []struct {
		name string
		// withReader runs a worker's Reader, so the owner comes from the Redis
		// materialisation; without it the notifier falls back to its own view.
		withReader bool
		notifiers  int
	}{
		{name: "owner from the materialisation, two notifiers in one group", withReader: true, notifiers: 2},
		{name: "owner from the notifier's own view", withReader: false, notifiers: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			brokers := testenv.KafkaBrokers(t)
			topic := testenv.NewTopic(t, 3)
			rdb, keys := newRedis(t)
			mail := smtptest.Start(t)
			pub := newPublisher(t, brokers, topic)

			publish(t, pub,
				configure("ws_1", "https://hooks.example/ws_1", "1h"),
				configure("ws_2", "https://hooks.example/ws_2", "none"),
				configure("ws_3", "https://hooks.example/ws_3", "6h"),
			)
			if tc.withReader {
				waitCaughtUp(t, startReader(t, brokers, topic, rdb, keys, control.NewRegistry()))
			}

			mail.FailNext(1) // the first attempt fails; the retry must not double-send
			group := "notifier-" + topic
			var notifiers []*control.Notifier
			for i := range tc.notifiers {
				notifiers = append(notifiers, startNotifier(t, brokers, topic, group, rdb, keys, mail, tc.withReader, i))
			}

			at := &schemas.Timestamp{Time: time.Now().UTC().Truncate(time.Second)}
			event := func(id, ws string, errs int, lastErr string, epoch int64) schemas.ControlMessage {
				return schemas.ControlMessage{Type: schemas.TypeAutoDisabled, ID: id, At: at, WorkspaceID: ws,
					ConsecutiveErrors: errs, LastError: lastErr, Epoch: epoch}
			}
			publish(t, pub,
				event("evt_1", "ws_1", 11, "HTTP 503 Service Unavailable", 0),
				event("evt_2", "ws_2", 12, "dial tcp 10.0.0.1:443: connect: connection refused", 0),
				event("evt_1", "ws_1", 11, "HTTP 503 Service Unavailable", 0), // republished: same id
				event("evt_3", "ws_3", 11, "HTTP 500", 12345),                 // an epoch ws_3 is not in
				event("evt_4", "ws_nobody", 11, "HTTP 500", 0),                // no such workspace
			)

			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if _, err := mail.WaitFor(ctx, 2); err != nil {
				t.Fatal(err)
			}
			// Every event is committed only once it is done, so a group at the end
			// of every partition has handled all five.
			waitGroupAtEnd(t, brokers, group, topic)

			msgs := mail.Messages()
			if len(msgs) != 2 {
				var subjects []string
				for _, m := range msgs {
					subjects = append(subjects, m.Subject)
				}
				t.Fatalf("got %d emails %q, want 2", len(msgs), subjects)
			}
			slices.SortFunc(msgs, func(a, b smtptest.Message) int { return strings.Compare(a.Subject, b.Subject) })
			want := []struct {
				ws, to, subject string
				body            []string
			}{
				{"ws_1", "owner+ws_1@example.com", "Your webhook for workspace ws_1 was turned off after 11 consecutive errors",
					[]string{"https://hooks.example/ws_1", "11 deliveries in a row", "HTTP 503 Service Unavailable",
						"turn the webhook back on in the workspace settings", "evt_1", "https://console.example/o/link-of-ws_1"}},
				{"ws_2", "owner+ws_2@example.com", "Your webhook for workspace ws_2 was turned off after 12 consecutive errors",
					[]string{"https://hooks.example/ws_2", "12 deliveries in a row", "connect: connection refused",
						"turn the webhook back on in the workspace settings", "evt_2"}},
			}
			for i, w := range want {
				m := msgs[i]
				if m.Subject != w.subject {
					t.Errorf("email %d: Subject = %q, want %q", i, m.Subject, w.subject)
				}
				if !slices.Equal(m.To, []string{w.to}) || m.Header.Get("To") != "<"+w.to+">" {
					t.Errorf("email %d: envelope To %q, header To %q; want %s", i, m.To, m.Header.Get("To"), w.to)
				}
				if m.From != "outbound@example.com" {
					t.Errorf("email %d: envelope From = %q", i, m.From)
				}
				for _, s := range w.body {
					if !strings.Contains(m.Body, s) {
						t.Errorf("email %d: body lacks %q:\n%s", i, s, m.Body)
					}
				}
			}

			var total control.NotifierStats
			for _, n := range notifiers {
				s := n.Stats()
				total.Sent += s.Sent
				total.Duplicates += s.Duplicates
				total.Superseded += s.Superseded
				total.NoOwner += s.NoOwner
			}
			if total.Sent != 2 || total.Duplicates < 1 || total.Superseded < 1 || total.NoOwner < 1 {
				t.Errorf("stats summed over notifiers = %+v, want Sent 2 and at least one duplicate, superseded and no-owner", total)
			}
			for _, id := range []string{"evt_1", "evt_2"} {
				if v, err := rdb.Get(ctx, string(keys)+":notified:"+id).Result(); err != nil || v != "sent" {
					t.Errorf("dedupe key of %s = %q, %v; want \"sent\"", id, v, err)
				}
			}
		})
	}
}

func startNotifier(t *testing.T, brokers []string, topic, group string, rdb redis.UniversalClient, keys control.Keys, mail *smtptest.Server, materialised bool, i int) *control.Notifier {
	t.Helper()
	lookupWait := waitTimeout
	if !materialised {
		lookupWait = 200 * time.Millisecond // nobody materialises: do not wait long
	}
	n, err := control.NewNotifier(control.NotifierConfig{
		Brokers: brokers, Topic: topic, GroupID: group, Redis: rdb, Keys: keys,
		SMTPURL: mail.URL(), From: "outbound@example.com",
		Logger:     zaptest.NewLogger(t).Named(fmt.Sprintf("notifier%d", i)),
		LookupWait: lookupWait, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		PageLink:       func(ws string) string { return "https://console.example/o/link-of-" + ws },
	})
	if err != nil {
		t.Fatalf("NewNotifier: %v", err)
	}
	t.Cleanup(runInBackground(t, fmt.Sprintf("notifier %d", i), n.Run))
	return n
}

// waitGroupAtEnd waits until group has committed the end offset of every
// partition of topic.
func waitGroupAtEnd(t *testing.T, brokers []string, group, topic string) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	eventually(t, "notifier group commits every event", func() string {
		ctx := context.Background()
		meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(meta.Topics) != 1 {
			return fmt.Sprintf("metadata: %v", err)
		}
		var reqs []kafka.OffsetRequest
		var ids []int
		for _, p := range meta.Topics[0].Partitions {
			reqs = append(reqs, kafka.LastOffsetOf(p.ID))
			ids = append(ids, p.ID)
		}
		ends, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return fmt.Sprintf("listing offsets: %v", err)
		}
		committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
		if err != nil {
			return fmt.Sprintf("fetching committed offsets: %v", err)
		}
		got := map[int]int64{}
		for _, p := range committed.Topics[topic] {
			got[p.Partition] = p.CommittedOffset
		}
		for _, p := range ends.Topics[topic] {
			if got[p.Partition] != p.LastOffset {
				return fmt.Sprintf("partition %d: committed %d, end %d", p.Partition, got[p.Partition], p.LastOffset)
			}
		}
		return ""
	})
}

func TestNewNotifierValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled by NewNotifier
	defer rdb.Close()
	valid := func() control.NotifierConfig {
		return control.NotifierConfig{Brokers: []string{"127.0.0.1:9092"}, Redis: rdb,
			SMTPURL: "smtp://user:pw@mail.example", From: "outbound@example.com"}
	}
	tests := []struct {
		name    string
		mutate  func(*control.NotifierConfig)
		wantErr string
	}{
		{"valid", func(*control.NotifierConfig) {}, ""},
		{"smtps", func(c *control.NotifierConfig) { c.SMTPURL = "smtps://mail.example:2465" }, ""},
		{"no brokers", func(c *control.NotifierConfig) { c.Brokers = nil }, "no Kafka brokers"},
		{"no redis", func(c *control.NotifierConfig) { c.Redis = nil }, "no Redis client"},
		{"wrong scheme", func(c *control.NotifierConfig) { c.SMTPURL = "http://mail.example" }, "scheme must be smtp or smtps"},
		{"no host", func(c *control.NotifierConfig) { c.SMTPURL = "smtp://" }, "no host"},
		{"bad from", func(c *control.NotifierConfig) { c.From = "not an address" }, "parsing From"},
		{"claim shorter than a send", func(c *control.NotifierConfig) {
			c.ClaimTTL, c.SendTimeout = time.Second, time.Minute
		}, "must exceed SendTimeout"},
		{"max age beyond the dedupe memory", func(c *control.NotifierConfig) {
			c.MaxAge, c.SentTTL = 48*time.Hour, 24*time.Hour
		}, "exceeds SentTTL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.mutate(&cfg)
			_, err := control.NewNotifier(cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("NewNotifier: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("NewNotifier: err = %v, want one containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "pw"):
				t.Fatalf("error leaks the SMTP password: %v", err)
			}
		})
	}
}

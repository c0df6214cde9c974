package apptest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
)

// Receiver is a webhook endpoint at Srv.URL + "/<workspace>" that records
// every delivery it answers with a 2xx.
type Receiver struct {
	Srv *httptest.Server
	// Status is the status answered to a call for a workspace (default 200).
	// Set it before the first delivery.
	Status func(ws string) int

	mu         sync.Mutex
	deliveries []Delivery // in arrival order
}

// Delivery is one call the receiver accepted.
type Delivery struct {
	Workspace string
	ID        string   // the webhook-id header
	Messages  []string // message ids, in payload order
}

// NewReceiver starts a receiver, closed at the test's cleanup.
func NewReceiver(t *testing.T) *Receiver {
	r := &Receiver{Status: func(string) int { return http.StatusOK }}
	r.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := Delivery{Workspace: strings.TrimPrefix(req.URL.Path, "/"), ID: req.Header.Get("webhook-id")}
		var p struct {
			Message  *schemas.Message  `json:"message"`
			Messages []schemas.Message `json:"messages"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("receiver: undecodable payload: %v", err)
		}
		if p.Message != nil {
			d.Messages = []string{p.Message.MessageID}
		}
		for _, m := range p.Messages {
			d.Messages = append(d.Messages, m.MessageID)
		}
		code := r.Status(d.Workspace)
		if code/100 == 2 {
			r.mu.Lock()
			r.deliveries = append(r.deliveries, d)
			r.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Srv.Close)
	return r
}

// FailFor makes the receiver answer 500 to the calls for workspaces, and 200
// to the others. Call it before the first delivery.
func (r *Receiver) FailFor(workspaces ...string) {
	r.Status = func(ws string) int {
		if slices.Contains(workspaces, ws) {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
}

// Snapshot returns the deliveries accepted so far, in arrival order.
func (r *Receiver) Snapshot() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Unique counts messages over distinct webhook-ids: redelivering a bundle with
// the same id is at-least-once and fine; a message in two different bundles is a
// duplicate.
func (r *Receiver) Unique() map[string]int {
	seen := map[string]bool{}
	count := map[string]int{}
	for _, d := range r.Snapshot() {
		if seen[d.ID] {
			continue
		}
		seen[d.ID] = true
		for _, m := range d.Messages {
			count[m]++
		}
	}
	return count
}

// Cluster is what the workers of one test share: fresh topics, a fresh Redis
// database (on the Redis Cluster, with OUTBOUND_TEST_REDIS=cluster: a key
// prefix of their own) and a consumer group of their own.
type Cluster struct {
	T       *testing.T
	Brokers []string
	// Kafka and KafkaConn are how a worker and the cluster's own clients
	// reach Brokers: plaintext, or SASL_SSL with OUTBOUND_TEST_KAFKA=sasl.
	Kafka                       kafkaconn.Config
	KafkaConn                   kafkaconn.Conn
	Events, Control, DLQ, Group string
	Redis                       redisconn.Config
	KeyPrefix                   string
}

// NewCluster makes a cluster whose events topic has partitions partitions.
func NewCluster(t *testing.T, partitions int) *Cluster {
	k := testenv.Kafka(t)
	return &Cluster{
		T: t, Brokers: k.Brokers, Kafka: k.Config, KafkaConn: k.Conn,
		Events: testenv.NewTopic(t, partitions), Control: testenv.NewTopic(t, 3), DLQ: testenv.NewTopic(t, 1),
		Redis: testenv.RedisConfig(t), KeyPrefix: testenv.KeyPrefix(), Group: fmt.Sprintf("e2e-%d", time.Now().UnixNano()),
	}
}

// KafkaArgs returns the flags and environment that point `outbound worker`,
// `ctl` or `produce` at brokers with k; the password goes by environment, as
// docs/operations.md tells operators to pass it.
func KafkaArgs(brokers []string, k kafkaconn.Config) (flags, env []string) {
	flags = []string{"--kafka-brokers", strings.Join(brokers, ",")}
	if k.TLS {
		flags = append(flags, "--kafka-tls", "--kafka-tls-ca", k.CAFile)
	}
	if k.SASLMechanism != "" {
		flags = append(flags, "--kafka-sasl-mechanism", k.SASLMechanism, "--kafka-sasl-user", k.Username)
		env = []string{"OUTBOUND_KAFKA_SASL_PASSWORD=" + k.Password}
	}
	return flags, env
}

// RedisFlags are the flags that point `outbound worker` or `outbound ctl` at
// the cluster's Redis and keys.
func (c *Cluster) RedisFlags() []string {
	f := []string{"--redis-url", c.Redis.URL, "--redis-key-prefix", c.KeyPrefix}
	if c.Redis.Cluster {
		f = append(f, "--redis-cluster")
	}
	return f
}

// OpenRedis returns a client of the cluster's Redis, closed at cleanup.
func (c *Cluster) OpenRedis() redis.UniversalClient {
	c.T.Helper()
	rdb, err := redisconn.Open(c.Redis)
	if err != nil {
		c.T.Fatal(err)
	}
	c.T.Cleanup(func() { rdb.Close() })
	return rdb
}

// Publish writes msgs to the control topic, as `outbound ctl` would.
func (c *Cluster) Publish(msgs ...schemas.ControlMessage) {
	c.T.Helper()
	pub, err := control.NewPublisher(control.PublisherConfig{Brokers: c.Brokers, Kafka: c.KafkaConn, Topic: c.Control})
	if err != nil {
		c.T.Fatal(err)
	}
	defer pub.Close()
	for _, m := range msgs {
		if err := pub.Publish(context.Background(), m); err != nil {
			c.T.Fatal(err)
		}
	}
}

// Writer returns a writer to the events topic keyed like upstream: by chat id.
func (c *Cluster) Writer() *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(c.Brokers...), Transport: c.KafkaConn.Transport(), Topic: c.Events, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
}

// Configure is the webhook.configure of an enabled webhook of ws, owned by
// owner+<ws>@example.com.
func Configure(ws, url, granularity string) schemas.ControlMessage {
	on := true
	return schemas.ControlMessage{Type: schemas.TypeConfigure, WorkspaceID: ws, URL: url, Granularity: granularity,
		Enabled: &on, OwnerEmail: "owner+" + ws + "@example.com"}
}

// Event is a valid text message of ws in chat, keyed by chat.
func Event(ws, chat, id string, at time.Time) kafka.Message {
	ev := schemas.Event{
		WorkspaceID:     ws,
		WhatsAppAccount: schemas.Account{FullName: "Amnon Haha", Email: "amnon@acme.com", Phone: "+972500000000"},
		Chat:            schemas.Chat{ChatID: chat, FullName: "Chat " + chat, ChatURL: "https://app.timelines.ai/chat/" + chat + "/messages/"},
		Message: schemas.EventMessage{MessageID: id, Direction: "sent", Timestamp: schemas.Timestamp{Time: at},
			Sender: schemas.Party{FullName: "John Doe"}, Recipient: schemas.Party{FullName: "Jane Smith"}, Text: "hello " + id},
	}
	b, _ := json.Marshal(ev)
	return kafka.Message{Key: []byte(chat), Value: b}
}

// RunUntilCleanup runs run in the background until the test ends, then stops it
// and waits for it, so that nothing logs after the test is over.
func RunUntilCleanup(t *testing.T, name string, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

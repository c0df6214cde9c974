package testenv

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

func TestKafkaProduceAndReadBack(t *testing.T) {
	t.Parallel()
	brokers := KafkaBrokers(t)
	topic := NewTopic(t, 3)
	if !strings.HasPrefix(topic, "TestKafkaProduceAndReadBack-") {
		t.Errorf("topic %q does not start with the test name", topic)
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]string{}
	var msgs []kafka.Message
	for i := range 10 {
		k, v := fmt.Sprintf("chat-%d", i), fmt.Sprintf("hello %d", i)
		want[k] = v
		msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(v)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}

	got := map[string]string{}
	for p := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		last, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatalf("dial leader of partition %d: %v", p, err)
		}
		end, err := last.ReadLastOffset()
		last.Close()
		if err != nil {
			t.Fatalf("last offset of partition %d: %v", p, err)
		}
		for i := int64(0); i < end; i++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read partition %d: %v", p, err)
			}
			got[string(m.Key)] = string(m.Value)
		}
		r.Close()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read back %v, want %v", got, want)
	}
}

// TestKafkaConsumerGroup checks that kafka-go's consumer group protocol versions are
// still accepted by the Kafka 4.x test broker, and that the short session timeout the
// broker is configured for is allowed.
func TestKafkaConsumerGroup(t *testing.T) {
	t.Parallel()
	brokers := KafkaBrokers(t)
	topic := NewTopic(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("write: %v", err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           brokers,
		GroupID:           topic + "-group",
		Topic:             topic,
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    2 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond,
		MaxWait:           100 * time.Millisecond,
	})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("fetch in group: %v", err)
	}
	if string(m.Value) != "v" {
		t.Fatalf("got %q, want %q", m.Value, "v")
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func TestRedisFreshDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := Redis(t).(*redis.Client), Redis(t).(*redis.Client)
	if a.Options().DB == b.Options().DB {
		t.Fatalf("two Redis() calls share database %d", a.Options().DB)
	}
	for i, c := range []*redis.Client{a, b} {
		db := c.Options().DB
		if db == 0 {
			t.Errorf("client %d: got database 0, which holds the allocator", i)
		}
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			t.Fatalf("client %d: DBSIZE: %v", i, err)
		}
		if n != 0 {
			t.Errorf("client %d: database %d has %d keys, want empty", i, db, n)
		}
	}
	if err := a.Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("key written through one client is visible through the other: exists=%d err=%v", n, err)
	}

	u := RedisURL(t)
	if !regexp.MustCompile(`^redis://127\.0\.0\.1:\d+/\d+$`).MatchString(u) {
		t.Errorf("RedisURL() = %q, want redis://127.0.0.1:P/DB", u)
	}
}

func TestTopicName(t *testing.T) {
	legal := regexp.MustCompile(`^[a-zA-Z0-9-]{1,249}$`)
	for _, name := range []string{"TestX", "TestX/sub_case#01", "Test/../é", strings.Repeat("a", 300), "///"} {
		got := topicName(name)
		if !legal.MatchString(got) {
			t.Errorf("topicName(%q) = %q, not a plain legal topic name", name, got)
		}
		if got == topicName(name) {
			t.Errorf("topicName(%q) is not unique", name)
		}
	}
	if got := topicName("TestX/sub_case#01"); !strings.HasPrefix(got, "TestX-sub-case-01-") {
		t.Errorf("topicName keeps no readable prefix: %q", got)
	}
}

// fatalTB records the first Fatalf and stops the calling goroutine, like testing.T.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestMissingServicesFailWithHowTo(t *testing.T) {
	for _, tc := range []struct {
		env  string
		call func(testing.TB)
	}{
		{EnvKafkaBrokers, func(tb testing.TB) { KafkaBrokers(tb) }},
		{EnvRedisAddr, func(tb testing.TB) { Redis(tb) }},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, "")
			f := &fatalTB{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); tc.call(f) }()
			<-done
			if !strings.Contains(f.msg, "make test") || !strings.Contains(f.msg, tc.env) {
				t.Errorf("message does not say how to get the service: %q", f.msg)
			}
		})
	}
}

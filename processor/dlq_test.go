package processor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/processor"
	"github.com/outbound-webhooks/outbound/webhook"
)

// TestMalformedEventsGoToTheDeadLetterTopic sends 1 000 bad events of ten kinds
// between good ones: every bad one reaches the DLQ with its reason and source,
// and the good ones are all delivered.
func TestMalformedEventsGoToTheDeadLetterTopic(t *testing.T) {
	hooks := webhook.Fixed{"ws": {Workspace: "ws", Enabled: true, Granularity: webhook.None, Epoch: 1}}
	p := startPipeline(t, hooks, 3)
	good := func(id string) []byte {
		b, _ := json.Marshal(event("ws", "c1", id, time.Now(), "ok"))
		return b
	}
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(good("x"), &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	msg := func(m map[string]any) map[string]any { return m["message"].(map[string]any) }
	kinds := []struct {
		name    string
		key     []byte
		value   []byte
		reason  string // part of the reason header
		dlqKind string
	}{
		{"truncated JSON", []byte("c1"), good("t")[:40], "", processor.KindInvalidJSON},
		{"wrong type", []byte("c1"), mutate(func(m map[string]any) { msg(m)["text"] = 42 }), "text", processor.KindSchema},
		{"missing message_id", []byte("c1"), mutate(func(m map[string]any) { delete(msg(m), "message_id") }), "message_id", processor.KindSchema},
		{"unknown direction", []byte("c1"), mutate(func(m map[string]any) { msg(m)["direction"] = "sideways" }), "direction", processor.KindSchema},
		{"huge text", []byte("c1"), mutate(func(m map[string]any) { msg(m)["text"] = strings.Repeat("a", 70000) }), "text", processor.KindSchema},
		{"binary garbage", []byte("c1"), []byte{0xff, 0x00, 0xfe, 0x13, 0x37}, "", processor.KindInvalidJSON},
		{"empty value", []byte("c1"), nil, "", processor.KindInvalidJSON},
		{"null key", nil, good("nk"), "key", processor.KindKey},
		{"key is not the chat", []byte("c2"), good("kc"), "c2", processor.KindKey},
		{"unparsable timestamp", []byte("c1"), mutate(func(m map[string]any) { msg(m)["timestamp"] = "yesterday" }), "timestamp", processor.KindSchema},
	}
	var recs []kafka.Message
	wantKind := map[string]int{}
	for i := range 1000 {
		k := kinds[i%len(kinds)]
		recs = append(recs, kafka.Message{Key: k.key, Value: k.value, Headers: []kafka.Header{{Key: "case", Value: []byte(k.name)}}})
		wantKind[k.dlqKind]++
		if i%100 == 0 {
			recs = append(recs, kafka.Message{Key: []byte("c1"), Value: good(fmt.Sprint("good-", i))})
		}
	}
	produce(t, p.topic, recs...)
	testenv.Eventually(t, "10 good deliveries", 30*time.Second, func() bool { return p.got.count() >= 10 })

	gotKind := map[string]int{}
	for _, m := range readDeadLetters(t, p, 1000) {
		h := headers(m)
		var k = kinds[0]
		for _, c := range kinds {
			if c.name == h["case"] {
				k = c
			}
		}
		if h[processor.HeaderKind] != k.dlqKind || !strings.Contains(h[processor.HeaderReason], k.reason) {
			t.Errorf("%s: dead letter has kind %q reason %q; want kind %q and a reason naming %q",
				k.name, h[processor.HeaderKind], h[processor.HeaderReason], k.dlqKind, k.reason)
		}
		if h[processor.HeaderTopic] != p.topic || h[processor.HeaderPartition] == "" || h[processor.HeaderOffset] == "" {
			t.Errorf("%s: dead letter lacks its source: %v", k.name, h)
		}
		if len(h[processor.HeaderReason]) > 1024 {
			t.Errorf("%s: reason header is %d bytes", k.name, len(h[processor.HeaderReason]))
		}
		gotKind[h[processor.HeaderKind]]++
	}
	if fmt.Sprint(gotKind) != fmt.Sprint(wantKind) {
		t.Errorf("dead letters by kind = %v, want %v", gotKind, wantKind)
	}
	if d := p.consumer.Stats().DeadLettered.Load(); d != 1000 {
		t.Errorf("DeadLettered = %d, want 1000", d)
	}
}

// TestOversizedInvalidRecordsNeverStallThePartition sends invalid records that
// are as large as the broker takes, with large headers and keys. A full copy of
// any of them with the dead-letter headers added would exceed the writer's and
// the broker's 1 MiB limit and hold the partition for good; bounded dead
// letters reach the DLQ and the good events behind them are delivered.
func TestOversizedInvalidRecordsNeverStallThePartition(t *testing.T) {
	hooks := webhook.Fixed{"ws": {Workspace: "ws", Enabled: true, Granularity: webhook.None, Epoch: 1}}
	p := startPipeline(t, hooks, 1)
	good, err := json.Marshal(event("ws", "c1", "after", time.Now(), "ok"))
	if err != nil {
		t.Fatal(err)
	}
	bigHeaders := []kafka.Header{{Key: "trace", Value: []byte(strings.Repeat("h", 40<<10))}}
	longKey := []byte(strings.Repeat("k", 520<<10))
	cases := []struct {
		name     string
		rec      kafka.Message
		origSize int
	}{
		{"invalid JSON just under 1 MiB with 40 KiB of headers",
			kafka.Message{Key: []byte("c1"), Value: []byte("{" + strings.Repeat("a", 1_000_000)), Headers: bigHeaders}, 1_000_001},
		{"valid event under a 520 KiB key that is not its chat",
			kafka.Message{Key: longKey, Value: good}, len(good)},
	}
	var recs []kafka.Message
	for _, c := range cases {
		c.rec.Headers = append(c.rec.Headers, kafka.Header{Key: "case", Value: []byte(c.name)})
		recs = append(recs, c.rec)
	}
	produce(t, p.topic, recs...)
	produce(t, p.topic, kafka.Message{Key: []byte("c1"), Value: good})
	testenv.Eventually(t, "the good event behind the oversized ones", 30*time.Second, func() bool { return p.got.count() >= 1 })

	for i, m := range readDeadLetters(t, p, len(cases)) {
		h := headers(m)
		size := len(m.Key) + len(m.Value)
		for _, x := range m.Headers {
			size += len(x.Key) + len(x.Value)
		}
		c := cases[i]
		if size > 100<<10 {
			t.Errorf("%s: dead letter is %d bytes, want at most 100 KiB", c.name, size)
		}
		if h[processor.HeaderSize] != fmt.Sprint(c.origSize) {
			t.Errorf("%s: %s = %q, want %d", c.name, processor.HeaderSize, h[processor.HeaderSize], c.origSize)
		}
		if len(h[processor.HeaderReason]) > 1024 || h[processor.HeaderOffset] == "" {
			t.Errorf("%s: reason %d bytes, source offset %q", c.name, len(h[processor.HeaderReason]), h[processor.HeaderOffset])
		}
		if !strings.HasPrefix(string(c.rec.Value), string(m.Value)) {
			t.Errorf("%s: the dead letter's value is not a prefix of the original", c.name)
		}
	}
	if d, u := p.consumer.Stats().DeadLettered.Load(), p.consumer.Stats().Undeliverable.Load(); d != 2 || u != 0 {
		t.Errorf("DeadLettered = %d, Undeliverable = %d; want 2 and 0", d, u)
	}
}

// TestNULPrefixedMessageIDsAreDeadLettered: a window keeps one hash field per
// message id next to reserved fields that start with NUL ("\x00d" details,
// "\x00n" new chat, "\x00a" attempts). Events whose message_id is one of them
// are dead-lettered at decode, and the chats around them, their own included,
// are delivered whole, with their details and is_new_chat untouched.
func TestNULPrefixedMessageIDsAreDeadLettered(t *testing.T) {
	hooks := webhook.Fixed{"ws": {Workspace: "ws", Enabled: true, Granularity: webhook.H1, Epoch: 1}}
	p := startPipeline(t, hooks, 1)
	hostile := []string{"\x00d", "\x00n", "\x00a", "\x00"}
	want := map[string]string{}
	var recs []kafka.Message
	now := time.Now()
	for i := range 30 {
		chat := fmt.Sprint("c", i%3)
		id := fmt.Sprint("m", i)
		want[id] = chat
		recs = append(recs, record(t, event("ws", chat, id, now, "hello")))
		if i < len(hostile) {
			bad := event("ws", "c0", hostile[i], now, "i am a reserved field")
			bad.Chat.FullName, bad.Chat.IsNewChat = "hijacked", true
			recs = append(recs, record(t, bad))
		}
	}
	produce(t, p.topic, recs...)
	testenv.Eventually(t, "every good message", 30*time.Second, func() bool { return p.got.count() >= len(want) })
	time.Sleep(300 * time.Millisecond) // anything extra would show up by now

	p.got.mu.Lock()
	checkExact(t, p.got.bundles, want, hooks)
	for _, b := range p.got.bundles {
		if b.Chat.FullName != "Chat "+b.ChatID || b.Chat.IsNewChat {
			t.Errorf("bundle of %s has chat %q, is_new_chat %v: a hostile event changed it", b.ChatID, b.Chat.FullName, b.Chat.IsNewChat)
		}
	}
	p.got.mu.Unlock()

	for i, m := range readDeadLetters(t, p, len(hostile)) {
		h := headers(m)
		const reason = "message.message_id: must not contain control characters"
		if h[processor.HeaderKind] != processor.KindSchema || !strings.Contains(h[processor.HeaderReason], reason) {
			t.Errorf("dead letter %d: kind %q reason %q; want kind %q and a reason naming %q",
				i, h[processor.HeaderKind], h[processor.HeaderReason], processor.KindSchema, reason)
		}
	}
	if d := p.consumer.Stats().DeadLettered.Load(); d != int64(len(hostile)) {
		t.Errorf("DeadLettered = %d, want %d", d, len(hostile))
	}
}

// readDeadLetters reads the first n records of the pipeline's dead-letter
// topic, failing the test if they do not all arrive within 30 seconds.
func readDeadLetters(t *testing.T, p *pipeline, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: testenv.KafkaBrokers(t), Topic: p.dlq, Partition: 0, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make([]kafka.Message, 0, n)
	for i := range n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %d dead letters, then: %v", i, err)
		}
		out = append(out, m)
	}
	return out
}

// headers returns a record's headers by key.
func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

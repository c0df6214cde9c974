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

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: testenv.KafkaBrokers(t), Topic: p.dlq, Partition: 0, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gotKind := map[string]int{}
	for i := range 1000 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %d dead letters, then: %v", i, err)
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
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

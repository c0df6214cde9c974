package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
)

// Publish fills id and at, keys by workspace (one workspace, one partition, in
// order) and refuses what a Reader would reject.
func TestPublisher(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.NewTopic(t, 3)
	pub := newPublisher(t, brokers, topic)

	rejected := []struct {
		name    string
		msg     schemas.ControlMessage
		wantErr error
	}{
		{"unknown type", schemas.ControlMessage{Type: "webhook.explode", WorkspaceID: "ws_1"}, schemas.ErrSchema},
		{"missing workspace", schemas.ControlMessage{Type: schemas.TypeDisable}, schemas.ErrSchema},
		{"bad url", configure("ws_1", "ftp://a.example", "1h"), schemas.ErrSchema},
		{"bad granularity", configure("ws_1", "https://a.example", "2h"), schemas.ErrSchema},
		{"bad owner email", func() schemas.ControlMessage {
			m := configure("ws_1", "https://a.example", "1h")
			m.OwnerEmail = "nobody"
			return m
		}(), schemas.ErrSchema},
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, tc := range rejected {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			if err := pub.Publish(ctx, tc.msg); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Publish: err = %v, want %v", err, tc.wantErr)
			}
		})
	}

	before := time.Now().UTC().Truncate(time.Second)
	sent := []schemas.ControlMessage{
		configure("ws_1", "https://a.example/h", "1h"),
		{Type: schemas.TypeDisable, WorkspaceID: "ws_1", Reason: "one"},
		{Type: schemas.TypeEnable, WorkspaceID: "ws_1", ID: "given-id"},
	}
	publish(t, pub, sent...)

	// Exactly one partition holds the records, in publication order; none of the
	// refused messages was written.
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	partition, used := -1, 0
	for _, p := range res.Topics[topic] {
		if p.LastOffset > 0 {
			partition, used = p.Partition, used+1
			if p.LastOffset != int64(len(sent)) {
				t.Errorf("partition %d holds %d records, want %d", p.Partition, p.LastOffset, len(sent))
			}
		}
	}
	if used != 1 {
		t.Fatalf("records spread over %d partitions, want 1", used)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition, MaxWait: 2 * time.Second})
	defer r.Close()
	idPattern := regexp.MustCompile(`^ctl_[0-9a-f]{32}$`)
	for i, want := range sent {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("reading record %d: %v", i, err)
		}
		var got schemas.ControlMessage
		if err := json.Unmarshal(m.Value, &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if string(m.Key) != "ws_1" || got.Type != want.Type {
			t.Errorf("record %d: key %q type %q, want ws_1 %s", i, m.Key, got.Type, want.Type)
		}
		switch {
		case want.ID != "" && got.ID != want.ID:
			t.Errorf("record %d: id %q, want the given %q", i, got.ID, want.ID)
		case want.ID == "" && !idPattern.MatchString(got.ID):
			t.Errorf("record %d: id %q, want ctl_ and 32 hex digits", i, got.ID)
		}
		if got.At == nil || got.At.Before(before) || got.At.Location() != time.UTC {
			t.Errorf("record %d: at = %v, want a UTC time after %v", i, got.At, before)
		}
	}
}

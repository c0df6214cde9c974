package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/windowing"
)

// Reason kinds written to the dead-letter header "dlq.kind".
const (
	KindInvalidJSON = "invalid_json"
	KindSchema      = "schema"
	KindTooLarge    = "too_large"
	KindKey         = "bad_key"
)

// Dead-letter record headers.
const (
	HeaderReason    = "dlq.reason"
	HeaderKind      = "dlq.kind"
	HeaderTopic     = "dlq.source.topic"
	HeaderPartition = "dlq.source.partition"
	HeaderOffset    = "dlq.source.offset"
	HeaderAt        = "dlq.at"
)

// rejection is why a record cannot be delivered at all.
type rejection struct {
	kind   string
	reason string
}

// decode turns a record into an event or says why it must go to the dead-letter
// topic. The record key must be the chat id: per-chat order and window identity
// rest on every message of a chat landing in one partition.
func (c *Consumer) decode(m kafka.Message) (schemas.Event, *rejection) {
	if len(m.Value) > c.cfg.MaxEventBytes {
		return schemas.Event{}, &rejection{KindTooLarge, fmt.Sprintf("event is %d bytes, the limit is %d", len(m.Value), c.cfg.MaxEventBytes)}
	}
	ev, err := schemas.DecodeEvent(m.Value)
	switch {
	case errors.Is(err, schemas.ErrInvalidJSON):
		return ev, &rejection{KindInvalidJSON, err.Error()}
	case err != nil:
		return ev, &rejection{KindSchema, err.Error()}
	}
	if !windowing.ValidID(ev.WorkspaceID) || !windowing.ValidID(ev.Chat.ChatID) {
		return ev, &rejection{KindSchema, "workspace_id and chat.chat_id must not contain control characters"}
	}
	if m.Key == nil {
		return ev, &rejection{KindKey, "record has no key; the key must be chat.chat_id"}
	}
	if string(m.Key) != ev.Chat.ChatID {
		return ev, &rejection{KindKey, fmt.Sprintf("record key %q does not match chat.chat_id %q", m.Key, ev.Chat.ChatID)}
	}
	return ev, nil
}

// apply routes one batch and makes its effects durable: dead letters first, then
// the Redis append that also advances the watermark to the batch's last offset.
// Records at or below wm were applied before this partition was (re)assigned.
func (c *Consumer) apply(ctx context.Context, partition int, batch []kafka.Message, wm int64) error {
	var (
		entries []windowing.Entry
		dead    []kafka.Message
	)
	for _, m := range batch {
		if m.Offset <= wm {
			continue
		}
		c.stats.Consumed.Add(1)
		ev, rej := c.decode(m)
		if rej != nil {
			dead = append(dead, c.deadLetter(m, rej))
			continue
		}
		msg := ev.Message
		switch {
		case len(msg.Attachments) > 0:
			c.stats.SkippedAttachment.Add(1)
			continue
		case msg.Text == "":
			c.stats.SkippedNoText.Add(1)
			continue
		}
		wh, ok := c.cfg.Webhooks.Lookup(ev.WorkspaceID)
		switch {
		case !ok:
			c.stats.DroppedNoWebhook.Add(1)
			continue
		case !wh.Enabled:
			c.stats.DroppedDisabled.Add(1)
			continue
		}
		entries = append(entries, windowing.Entry{
			Offset:      m.Offset,
			Workspace:   ev.WorkspaceID,
			Epoch:       wh.Epoch,
			Granularity: wh.Granularity,
			Account:     ev.WhatsAppAccount,
			Chat:        ev.Chat,
			Message: windowing.Message{
				ID:        msg.MessageID,
				Direction: msg.Direction,
				At:        msg.Timestamp.Time,
				Sender:    msg.Sender,
				Recipient: msg.Recipient,
				Text:      msg.Text,
				Permalink: msg.Permalink,
			},
		})
	}
	if len(dead) > 0 {
		if err := c.dlq.WriteMessages(ctx, dead...); err != nil {
			return fmt.Errorf("writing %d records to the dead-letter topic: %w", len(dead), err)
		}
		c.stats.DeadLettered.Add(int64(len(dead)))
	}
	res, err := c.cfg.Store.Append(ctx, partition, entries, batch[len(batch)-1].Offset)
	if err != nil {
		return err
	}
	c.stats.Appended.Add(int64(res.Applied))
	c.stats.Duplicates.Add(int64(res.Duplicates))
	return nil
}

// deadLetter keeps the record as it came (key, value, headers) and adds why and
// where from, so it can be fixed and replayed.
func (c *Consumer) deadLetter(m kafka.Message, r *rejection) kafka.Message {
	return kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: append(m.Headers[:len(m.Headers):len(m.Headers)],
			kafka.Header{Key: HeaderReason, Value: []byte(r.reason)},
			kafka.Header{Key: HeaderKind, Value: []byte(r.kind)},
			kafka.Header{Key: HeaderTopic, Value: []byte(m.Topic)},
			kafka.Header{Key: HeaderPartition, Value: []byte(itoa(int64(m.Partition)))},
			kafka.Header{Key: HeaderOffset, Value: []byte(itoa(m.Offset))},
			kafka.Header{Key: HeaderAt, Value: []byte(c.cfg.Clock.Now().UTC().Format(time.RFC3339))},
		),
	}
}

package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/internal/clip"
	"github.com/outbound-webhooks/outbound/internal/retry"
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
	// HeaderSize is the original value's size in bytes; HeaderTruncated is
	// "true" when the dead letter keeps only a prefix of it.
	HeaderSize      = "dlq.source.size"
	HeaderTruncated = "dlq.truncated"
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
	if m.Key == nil {
		return ev, &rejection{KindKey, "record has no key; the key must be chat.chat_id"}
	}
	if string(m.Key) != ev.Chat.ChatID {
		return ev, &rejection{KindKey, fmt.Sprintf("record key %s does not match chat.chat_id %s", quote(string(m.Key)), quote(ev.Chat.ChatID))}
	}
	return ev, nil
}

// routed is what one batch turns into, before any of it is made durable.
type routed struct {
	entries []windowing.Entry
	dead    []kafka.Message
	// counts of records that cause neither an entry nor a dead letter, added to
	// Stats once the batch is applied, so a retried batch counts once.
	consumed, attachment, noText, noWebhook, disabled int64
}

// route decodes and routes the records of batch above wm (those at or below it
// were applied before this partition was (re)assigned). It has no side effect.
func (c *Consumer) route(batch []kafka.Message, wm int64) routed {
	var r routed
	for _, m := range batch {
		if m.Offset <= wm {
			continue
		}
		r.consumed++
		ev, rej := c.decode(m)
		if rej != nil {
			r.dead = append(r.dead, c.deadLetter(m, rej))
			continue
		}
		msg := ev.Message
		switch {
		case len(msg.Attachments) > 0:
			r.attachment++
			continue
		case msg.Text == "":
			r.noText++
			continue
		}
		wh, ok := c.cfg.Webhooks.Lookup(ev.WorkspaceID)
		switch {
		case !ok:
			r.noWebhook++
			continue
		case !wh.Enabled:
			r.disabled++
			continue
		}
		r.entries = append(r.entries, windowing.Entry{
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
	return r
}

// apply routes one batch and makes its effects durable, each step retried on
// its own: dead letters first, then the Redis append that also advances the
// watermark to the batch's last offset. A Redis error therefore never writes
// the dead letters again, and the counters move once per record. It returns an
// error only when ctx ends, or a *windowing.LostError when Redis's watermark is
// below wm: Redis lost writes, and the caller replays them.
//
// It is called holding an apply slot (Config.Applying) and returns with it
// released. A failed step gives the slot back while it waits to be retried: a
// partition stuck on an unreachable Redis master must not hold up the others.
func (c *Consumer) apply(ctx context.Context, log *zap.Logger, partition int, batch []kafka.Message, wm int64) error {
	held := true
	defer func() {
		if held {
			c.applying.Release(1)
		}
	}()
	inSlot := func(op func() error) func() error {
		return func() error {
			if !held {
				if err := c.applying.Acquire(ctx, 1); err != nil {
					return err
				}
				held = true
			}
			err := op()
			if err != nil {
				c.applying.Release(1)
				held = false
			}
			return err
		}
	}
	r := c.route(batch, wm)
	if len(r.dead) > 0 {
		if err := untilDurable.Do(ctx, log, "writing dead letters", inSlot(func() error { return c.writeDeadLetters(ctx, log, r.dead) })); err != nil {
			return err
		}
	}
	var res windowing.AppendResult
	err := untilDurable.Do(ctx, log, "appending batch", inSlot(func() (err error) {
		res, err = c.cfg.Store.Append(ctx, partition, r.entries, batch[len(batch)-1].Offset, wm)
		if lost := (*windowing.LostError)(nil); errors.As(err, &lost) {
			return retry.Permanent(err) // no retry brings the lost writes back: replay
		}
		return err
	}))
	if err != nil {
		return err
	}
	st := &c.stats
	st.Consumed.Add(r.consumed)
	st.SkippedAttachment.Add(r.attachment)
	st.SkippedNoText.Add(r.noText)
	st.DroppedNoWebhook.Add(r.noWebhook)
	st.DroppedDisabled.Add(r.disabled)
	st.Appended.Add(int64(res.Applied))
	st.Duplicates.Add(int64(res.Duplicates))
	return nil
}

// writeDeadLetters writes dead letters with acks from every in-sync replica. A
// broker or network error is returned, to be retried: the batch waits, nothing
// is committed past it. A record the broker can never take (too large, invalid)
// is not retried forever: it is logged with its source offset, counted in
// Stats.Undeliverable and skipped; the original stays in the source topic.
func (c *Consumer) writeDeadLetters(ctx context.Context, log *zap.Logger, dead []kafka.Message) error {
	err := c.dlq.WriteMessages(ctx, dead...)
	if err == nil {
		c.stats.DeadLettered.Add(int64(len(dead)))
		return nil
	}
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(dead) {
		if isPermanentWriteError(err) && len(dead) == 1 {
			c.skipDeadLetter(log, dead[0], err)
			return nil
		}
		return fmt.Errorf("writing %d records to the dead-letter topic: %w", len(dead), err)
	}
	// Per-record results: keep the written ones, skip the hopeless ones, retry
	// only the rest.
	var again []kafka.Message
	for i, werr := range werrs {
		switch {
		case werr == nil:
			c.stats.DeadLettered.Add(1)
		case isPermanentWriteError(werr):
			c.skipDeadLetter(log, dead[i], werr)
		default:
			again = append(again, dead[i])
		}
	}
	if len(again) == 0 {
		return nil
	}
	if len(again) < len(dead) {
		return c.writeDeadLetters(ctx, log, again)
	}
	return fmt.Errorf("writing %d records to the dead-letter topic: %w", len(dead), err)
}

// isPermanentWriteError reports whether no retry can make the broker accept a
// record.
func isPermanentWriteError(err error) bool {
	var tooLarge kafka.MessageTooLargeError
	return errors.As(err, &tooLarge) || errors.Is(err, kafka.MessageSizeTooLarge) ||
		errors.Is(err, kafka.InvalidMessage) || errors.Is(err, kafka.RecordListTooLarge) ||
		errors.Is(err, kafka.InvalidRecord)
}

func (c *Consumer) skipDeadLetter(log *zap.Logger, m kafka.Message, err error) {
	c.stats.Undeliverable.Add(1)
	log.Error("skipping a record that cannot be dead-lettered; the original stays in the source topic",
		zap.String("source_topic", header(m, HeaderTopic)), zap.String("source_partition", header(m, HeaderPartition)),
		zap.String("source_offset", header(m, HeaderOffset)), zap.String("dlq_kind", header(m, HeaderKind)), zap.Error(err))
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Bounds of a dead-letter record. The original record stays in the source
// topic (the headers say where), so the dead letter keeps enough to see what
// was wrong and stays far below any broker's or writer's size limit (1 MiB by
// default), whatever came in.
const (
	maxDeadValue   = 64 << 10 // prefix of the value kept
	maxDeadKey     = 1 << 10  // prefix of the key kept
	maxDeadHeaders = 16 << 10 // the original headers, all or none
	maxReason      = 1 << 10  // the reason header
	maxQuoted      = 128      // a value quoted in a reason
)

// deadLetter keeps a bounded copy of the record (a prefix of its value and key,
// its headers when they are small) and adds why and where from, so it can be
// found, fixed and replayed from the source topic.
func (c *Consumer) deadLetter(m kafka.Message, r *rejection) kafka.Message {
	var headers []kafka.Header
	size := 0
	for _, h := range m.Headers {
		size += len(h.Key) + len(h.Value)
	}
	if size <= maxDeadHeaders {
		headers = append(headers, m.Headers...)
	}
	headers = append(headers,
		kafka.Header{Key: HeaderReason, Value: []byte(clip.String(r.reason, maxReason))},
		kafka.Header{Key: HeaderKind, Value: []byte(r.kind)},
		kafka.Header{Key: HeaderTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderPartition, Value: []byte(itoa(int64(m.Partition)))},
		kafka.Header{Key: HeaderOffset, Value: []byte(itoa(m.Offset))},
		kafka.Header{Key: HeaderSize, Value: []byte(itoa(int64(len(m.Value))))},
		kafka.Header{Key: HeaderAt, Value: []byte(c.cfg.Clock.Now().UTC().Format(time.RFC3339))},
	)
	value := m.Value
	if len(value) > maxDeadValue {
		value = value[:maxDeadValue]
		headers = append(headers, kafka.Header{Key: HeaderTruncated, Value: []byte("true")})
	}
	key := m.Key
	if len(key) > maxDeadKey {
		key = key[:maxDeadKey]
	}
	return kafka.Message{Key: key, Value: value, Headers: headers}
}

// quote quotes at most maxQuoted bytes of v for a reason.
func quote(v string) string { return strconv.Quote(clip.String(v, maxQuoted)) }

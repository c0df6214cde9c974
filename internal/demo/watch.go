package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/smtptest"
	"github.com/outbound-webhooks/outbound/processor"
	"github.com/outbound-webhooks/outbound/schemas"
)

// watchDeadLetters reads the DLQ topic back and prints why each record is there.
func (d *demo) watchDeadLetters(ctx context.Context) error {
	return d.follow(ctx, dlqTopic, func(m kafka.Message) {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		d.mu.Lock()
		d.deadLetters++
		d.mu.Unlock()
		d.out.eventWith([]string{
			fmt.Sprintf("%s: %s", processor.HeaderReason, h[processor.HeaderReason]),
			fmt.Sprintf("the record as it came: %s", clip(string(m.Value), 90)),
		}, "dead-lettered: %s partition %s offset %s, now on %s",
			h[processor.HeaderTopic], h[processor.HeaderPartition], h[processor.HeaderOffset], dlqTopic)
	})
}

// watchControl reads the control topic and prints every webhook.auto_disabled.
func (d *demo) watchControl(ctx context.Context) error {
	return d.follow(ctx, control.DefaultTopic, func(m kafka.Message) {
		msg, err := schemas.DecodeControl(m.Value)
		if err != nil || msg.Type != schemas.TypeAutoDisabled {
			return
		}
		d.mu.Lock()
		d.autoDisabled = append(d.autoDisabled, msg)
		d.mu.Unlock()
		d.out.eventWith([]string{"last error: " + msg.LastError, "every worker stops delivering to it; the notifier emails the owner"},
			"%s on %s: workspace %s, %d consecutive errors", msg.Type, control.DefaultTopic, msg.WorkspaceID, msg.ConsecutiveErrors)
	})
}

// follow reads partition 0 of topic from its start and hands each record to
// each until ctx ends, which is not an error.
func (d *demo) follow(ctx context.Context, topic string, each func(kafka.Message)) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: d.brokers, Topic: topic, Partition: 0, MaxWait: time.Second})
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		each(m)
	}
}

// onEmail keeps an email for showEmails: the SMTP server must not be held up, and
// the notifier may send it before watchControl has read the event behind it.
func (d *demo) onEmail(m smtptest.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.emails = append(d.emails, email{Message: m, at: time.Now()})
}

// email is an email the mail catcher accepted.
type email struct {
	smtptest.Message
	at time.Time
}

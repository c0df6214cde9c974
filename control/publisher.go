package control

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/schemas"
)

// PublisherConfig configures a Publisher. Brokers is required.
type PublisherConfig struct {
	Brokers []string
	// Kafka is how to reach the brokers (TLS, SASL); the zero value is plaintext.
	Kafka kafkaconn.Conn
	// Topic is the control topic; DefaultTopic when empty.
	Topic string
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// WriteTimeout bounds one Publish when ctx has no earlier deadline (10s by
	// default).
	WriteTimeout time.Duration
}

// Publisher writes control messages, keyed by workspace so that all of one
// workspace's messages land in one partition and are applied in publication
// order. It is safe for concurrent use.
type Publisher struct {
	w       *kafka.Writer
	log     *zap.Logger
	timeout time.Duration
}

// NewPublisher validates cfg, fills its defaults and returns a Publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("configuring control publisher: no Kafka brokers")
	}
	cfg.Topic = cmp.Or(cfg.Topic, DefaultTopic)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	defaultDuration(&cfg.WriteTimeout, 10*time.Second)
	log := cfg.Logger.With(zap.String("topic", cfg.Topic))
	return &Publisher{
		w: &kafka.Writer{
			Addr:      kafka.TCP(cfg.Brokers...),
			Transport: cfg.Kafka.Transport(),
			Topic:     cfg.Topic,
			// Same workspace, same partition: the Registry relies on per-workspace
			// order, which only a partition gives.
			Balancer: &kafka.Hash{},
			// A control message that is acknowledged must survive a broker loss.
			RequiredAcks: kafka.RequireAll,
			// kafka-go's default of 1s would delay every ctl command by a second.
			BatchTimeout: 5 * time.Millisecond,
			WriteTimeout: cfg.WriteTimeout,
			// The control topic is created by operators with its retention and
			// partition count; a typo in its name must not create another one.
			AllowAutoTopicCreation: false,
			ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
				log.Debug("kafka writer", zap.String("detail", fmt.Sprintf(format, args...)))
			}),
		},
		log:     log,
		timeout: cfg.WriteTimeout,
	}, nil
}

// Publish fills msg's ID ("ctl_" and 32 hex digits) and At (now, UTC) when they
// are empty, checks it against webhook.control.v1 and Validate (errors
// wrap schemas.ErrSchema or an Err* reason) and writes it; it returns once every
// in-sync replica has it.
func (p *Publisher) Publish(ctx context.Context, msg schemas.ControlMessage) error {
	if msg.ID == "" {
		id, err := newID()
		if err != nil {
			return err
		}
		msg.ID = id
	}
	if msg.At == nil {
		msg.At = &schemas.Timestamp{Time: time.Now().UTC().Truncate(time.Second)}
	}
	value, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding %s for %s: %w", msg.Type, msg.WorkspaceID, err)
	}
	// What the Readers would reject is refused here, where the caller (ctl, the
	// sink) can still see the error.
	if _, err := schemas.DecodeControl(value); err != nil {
		return fmt.Errorf("checking %s for %s: %w", msg.Type, msg.WorkspaceID, err)
	}
	if err := Validate(msg); err != nil {
		return fmt.Errorf("checking %s for %s: %w", msg.Type, msg.WorkspaceID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	err = p.w.WriteMessages(ctx, kafka.Message{Key: []byte(msg.WorkspaceID), Value: value})
	if err != nil {
		return fmt.Errorf("publishing %s for %s: %w", msg.Type, msg.WorkspaceID, err)
	}
	p.log.Debug("published control message", zap.String("type", msg.Type),
		zap.String("workspace", msg.WorkspaceID), zap.String("id", msg.ID))
	return nil
}

// Close flushes and closes the underlying writer.
func (p *Publisher) Close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("closing control publisher: %w", err)
	}
	return nil
}

// newID returns a random control message id.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating control message id: %w", err)
	}
	return "ctl_" + hex.EncodeToString(b[:]), nil
}

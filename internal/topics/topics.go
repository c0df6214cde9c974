// Package topics creates Kafka topics that are usable the moment Create returns,
// for the tests (through internal/testenv) and the chaos harness alike.
package topics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/segmentio/kafka-go"
)

// Create creates topic with the given number of partitions (replication 1) and
// waits until it is usable: the broker shows a leader for every partition, and
// so does kafka.DefaultTransport's metadata cache.
//
// kafka-go's Transport answers metadata from a cache that it refreshes every few
// seconds, so a kafka.Writer on the shared kafka.DefaultTransport (the control
// publisher's, for one) could otherwise see "Unknown Topic Or Partition" for a
// topic created a moment ago. Create therefore creates the topic through
// kafka.DefaultTransport, which refreshes that cache for kafka.TCP(brokers...),
// and waits for both views. A client with its own kafka.Transport starts from
// fresh metadata anyway. With TLS or SASL, conn's shared transport stands in
// for kafka.DefaultTransport.
func Create(ctx context.Context, conn kafkaconn.Conn, brokers []string, topic string, partitions int) error {
	if partitions < 1 {
		return fmt.Errorf("creating topic %q: partitions must be >= 1, got %d", topic, partitions)
	}
	addr := kafka.TCP(brokers...)
	cached := &kafka.Client{Addr: addr, Transport: conn.Transport()}
	res, err := cached.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("creating topic %q on %v: %w", topic, brokers, err)
	}
	fresh := func(ctx context.Context) error {
		tr := conn.NewTransport()
		defer tr.CloseIdleConnections()
		return ready(ctx, &kafka.Client{Addr: addr, Transport: tr}, topic, partitions)
	}
	if err := poll(ctx, fresh); err != nil {
		return fmt.Errorf("topic %q not usable (broker metadata): %w", topic, err)
	}
	if err := WaitUsable(ctx, cached, topic, partitions); err != nil {
		return fmt.Errorf("topic %q not usable (the shared transport's metadata cache): %w", topic, err)
	}
	return nil
}

// WaitUsable waits until client's metadata, and so its transport's cache,
// shows topic with its partitions and their leaders: a caller whose writers
// share a kafka.Transport of their own waits for that view too.
func WaitUsable(ctx context.Context, client *kafka.Client, topic string, partitions int) error {
	return poll(ctx, func(ctx context.Context) error { return ready(ctx, client, topic, partitions) })
}

// Delete deletes topic; one that does not exist is no error.
func Delete(ctx context.Context, conn kafkaconn.Conn, brokers []string, topic string) error {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: conn.Transport()}
	res, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
		return fmt.Errorf("deleting topic %q: %w", topic, err)
	}
	return nil
}

// poll calls ready until it returns nil or ctx ends.
func poll(ctx context.Context, ready func(context.Context) error) error {
	for {
		last := ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last state: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ready reports whether metadata from client shows topic with n partitions that
// all have a leader.
func ready(ctx context.Context, client *kafka.Client, topic string, n int) error {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return err
	}
	for _, tp := range md.Topics {
		if tp.Name != topic {
			continue
		}
		if tp.Error != nil {
			return tp.Error
		}
		if len(tp.Partitions) != n {
			return fmt.Errorf("metadata shows %d of %d partitions", len(tp.Partitions), n)
		}
		for _, p := range tp.Partitions {
			if p.Error != nil {
				return fmt.Errorf("partition %d: %w", p.ID, p.Error)
			}
			if p.Leader.Host == "" {
				return fmt.Errorf("partition %d has no leader yet", p.ID)
			}
		}
		return nil
	}
	return errors.New("topic missing from metadata")
}

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/topics"
	"github.com/segmentio/kafka-go"
)

// kafkaEnv is the bench's handle on the broker: the topics it created, which
// close deletes.
type kafkaEnv struct {
	brokers   []string
	conn      kafkaconn.Conn
	transport *kafka.Transport
	client    *kafka.Client
	runID     string

	mu     sync.Mutex
	topics []string
}

func newKafkaEnv(brokers []string, conn kafkaconn.Conn) *kafkaEnv {
	tr := conn.NewTransport()
	// The run id keeps names apart from other runs' on the broker: it needs to
	// be unlikely to repeat, not secret.
	return &kafkaEnv{brokers: brokers, conn: conn, transport: tr, runID: fmt.Sprintf("%08x", rand.Uint32()),
		client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second, Transport: tr}}
}

// name is a topic or group name unique to this run.
func (k *kafkaEnv) name(what string) string { return "bench-" + k.runID + "-" + what }

// createTopic creates a topic of this run, usable when it returns, also by
// the writers on the bench's own transport, whose metadata cache refreshes
// only every few seconds.
func (k *kafkaEnv) createTopic(ctx context.Context, what string, partitions int) (string, error) {
	name := k.name(what)
	if err := topics.Create(ctx, k.conn, k.brokers, name, partitions); err != nil {
		return "", err
	}
	if err := topics.WaitUsable(ctx, k.client, name, partitions); err != nil {
		return "", fmt.Errorf("topic %q not usable (the bench's transport): %w", name, err)
	}
	k.mu.Lock()
	k.topics = append(k.topics, name)
	k.mu.Unlock()
	return name, nil
}

// close deletes the run's topics.
func (k *kafkaEnv) close(ctx context.Context) error {
	defer k.transport.CloseIdleConnections()
	defer k.conn.Close()
	k.mu.Lock()
	topics := k.topics
	k.mu.Unlock()
	if len(topics) == 0 {
		return nil
	}
	res, err := k.client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("deleting the bench's topics: %w", err)
	}
	var errs []error
	for t, err := range res.Errors {
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting topic %s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// writer publishes like an upstream chat service: key = chat id, the Java
// client's partitioner, acknowledged by the broker. kafka-go's defaults (no
// acks, 1 s batch timeout) would be neither safe nor quick. kafka-go makes
// room for batch messages in every batch it starts, so batch should be about
// what a batch holds: the latency phase's steady producer, whose batches hold
// a few records, allocated about 200 MB/s in the process under test with a
// fill's 1 000.
func (k *kafkaEnv) writer(topic string, batch int, async bool, completion func([]kafka.Message, error)) *kafka.Writer {
	return &kafka.Writer{
		Addr: kafka.TCP(k.brokers...), Topic: topic, Transport: k.transport,
		Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchSize: batch, BatchTimeout: 2 * time.Millisecond, WriteTimeout: 30 * time.Second,
		Async: async, Completion: completion,
	}
}

// fill publishes events [from, to) of the corpus to topic, each at instant at,
// and returns the sum of the raw message field bytes (see rawBytes) and of the
// record values.
func (k *kafkaEnv) fill(ctx context.Context, topic string, c corpus, from, to int, at time.Time) (raw, values int64, err error) {
	const chunk = 5000
	type sums struct{ raw, values int64 }
	var (
		mu    sync.Mutex
		total sums
	)
	w := k.writer(topic, 1000, false, nil)
	defer w.Close()
	next := make(chan int)
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	// Two writers keep one batch on the wire while the next is encoded.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := range next {
				var s sums
				msgs := make([]kafka.Message, 0, chunk)
				for i := start; i < min(start+chunk, to); i++ {
					ev := c.event(i, c.chatOf(i), at)
					b, err := json.Marshal(ev)
					if err != nil {
						errc <- fmt.Errorf("encoding event %d: %w", i, err)
						return
					}
					s.raw += int64(rawBytes(ev.Message))
					s.values += int64(len(b))
					msgs = append(msgs, kafka.Message{Key: []byte(ev.Chat.ChatID), Value: b})
				}
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					errc <- fmt.Errorf("publishing events %d-%d to %s: %w", start, start+len(msgs)-1, topic, err)
					return
				}
				mu.Lock()
				total.raw += s.raw
				total.values += s.values
				mu.Unlock()
			}
		}()
	}
	func() {
		defer close(next)
		for start := from; start < to; start += chunk {
			select {
			case next <- start:
			case err = <-errc:
				return
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
		}
	}()
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return total.raw, total.values, err
}

// endOffsets returns the next offset of every partition of topic.
func (k *kafkaEnv) endOffsets(ctx context.Context, topic string, partitions int) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, partitions)
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset
	}
	if len(out) != partitions {
		return nil, fmt.Errorf("listing offsets of %s: %d of %d partitions answered", topic, len(out), partitions)
	}
	return out, nil
}

// committedAll reports whether group has committed every partition of topic up
// to end.
func (k *kafkaEnv) committedAll(ctx context.Context, group, topic string, end map[int]int64) (bool, error) {
	parts := make([]int, 0, len(end))
	for p := range end {
		parts = append(parts, p)
	}
	res, err := k.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return false, fmt.Errorf("fetching committed offsets of %s: %w", group, err)
	}
	if res.Error != nil {
		return false, fmt.Errorf("fetching committed offsets of %s: %w", group, res.Error)
	}
	got := res.Topics[topic]
	if len(got) != len(end) {
		return false, nil
	}
	for _, p := range got {
		if p.Error != nil {
			return false, fmt.Errorf("fetching committed offset of %s/%d: %w", topic, p.Partition, p.Error)
		}
		if p.CommittedOffset < end[p.Partition] {
			return false, nil
		}
	}
	return true, nil
}

// groupStable reports whether group has members and is not rebalancing.
func (k *kafkaEnv) groupStable(ctx context.Context, group string) (bool, error) {
	res, err := k.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return false, fmt.Errorf("describing group %s: %w", group, err)
	}
	for _, g := range res.Groups {
		if g.GroupID == group && g.Error == nil {
			return g.GroupState == "Stable" && len(g.Members) > 0, nil
		}
	}
	return false, nil
}

// sum adds up per-partition offsets: the number of records of a topic that
// starts at offset 0 in every partition.
func sum(offsets map[int]int64) int64 {
	var n int64
	for _, o := range offsets {
		n += o
	}
	return n
}

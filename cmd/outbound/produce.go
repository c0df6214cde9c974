package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/internal/chanbatch"
	"github.com/outbound-webhooks/outbound/internal/cli"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/schemas"
)

// produceBatch bounds the events of one write: large enough to amortise the
// broker round trip, small enough that an interactive line goes out at once.
const produceBatch = 500

func runProduce(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("produce", `outbound produce: publish chat.message.v1 events read as JSON lines from stdin.

Every line is checked against chat.message.v1. An invalid line is reported with its
number and reason and skipped, and the exit status is then 1; with --allow-invalid
it is published as it is, to exercise the workers' dead-letter topic. The record key
is chat.chat_id, as the workers require. Empty lines are ignored.`)
	fs.SetOutput(stderr)
	var (
		brokers, topic string
		allowInvalid   bool
		kafkaCfg       kafkaconn.Config
	)
	fs.StringVar(&brokers, "kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&topic, "events-topic", "chat.messages", "topic of chat.message.v1 events (key = chat_id)")
	fs.BoolVar(&allowInvalid, "allow-invalid", false, "publish invalid lines too, as they are (to test the dead-letter topic)")
	kafkaCfg.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrs := cli.SplitList(brokers)
	if len(addrs) == 0 {
		return cli.UsageError(errors.New("--kafka-brokers is empty"))
	}
	if topic == "" {
		return cli.UsageError(errors.New("--events-topic is empty"))
	}

	kc, err := kafkaconn.New(kafkaCfg)
	if err != nil {
		return cli.UsageError(err)
	}
	defer kc.Close()

	w := &kafka.Writer{
		Addr:      kafka.TCP(addrs...),
		Transport: kc.Transport(),
		Topic:     topic,
		// Murmur2 is the Java client's default partitioner: when upstream
		// services publish the same chats, both pick the same partition, which
		// per-chat order needs.
		Balancer: &kafka.Murmur2Balancer{},
		// kafka-go's defaults (no acks, 1s batch timeout) lose events and are slow.
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    produceBatch,
		WriteTimeout: 30 * time.Second,
		// The events topic is created by operators with its partition count; a
		// typo in its name must not create another one.
		AllowAutoTopicCreation: false,
	}
	defer w.Close()

	lines, readErr := readLines(ctx, stdin)
	var published int
	var invalid []int
	for {
		batch, more := nextLines(ctx, lines)
		msgs := make([]kafka.Message, 0, len(batch))
		for _, l := range batch {
			key, err := eventKey(l.data)
			if err != nil {
				invalid = append(invalid, l.n)
				fmt.Fprintf(stderr, "line %d: %v\n", l.n, err)
				if !allowInvalid {
					continue
				}
			}
			msgs = append(msgs, kafka.Message{Key: key, Value: l.data})
		}
		if len(msgs) > 0 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("publishing lines %d-%d to %s after %d published: %w",
					batch[0].n, batch[len(batch)-1].n, topic, published, err)
			}
			published += len(msgs)
		}
		if !more {
			break
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after publishing %d event(s) to %s: %w", published, topic, ctx.Err())
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("reading stdin after publishing %d event(s) to %s: %w", published, topic, err)
	}

	summary := fmt.Sprintf("published %d event(s) to %s", published, topic)
	switch {
	case len(invalid) == 0:
	case allowInvalid:
		summary += fmt.Sprintf(", %d of them invalid (%s)", len(invalid), lineList(invalid))
	default:
		summary += fmt.Sprintf(", skipped %d invalid line(s)", len(invalid))
	}
	fmt.Fprintln(stdout, summary)
	if len(invalid) > 0 && !allowInvalid {
		return fmt.Errorf("%d invalid line(s) skipped (%s); --allow-invalid publishes them as they are", len(invalid), lineList(invalid))
	}
	return nil
}

// eventKey checks one line as the workers will and returns its record key. For
// an invalid line it returns the chat id if one can be read, so that
// --allow-invalid still lands it in its chat's partition.
func eventKey(data []byte) ([]byte, error) {
	ev, err := schemas.DecodeEvent(data)
	if err != nil {
		var loose struct {
			Chat struct {
				ChatID string `json:"chat_id"`
			} `json:"chat"`
		}
		if json.Unmarshal(data, &loose) == nil && loose.Chat.ChatID != "" {
			return []byte(loose.Chat.ChatID), err
		}
		return nil, err
	}
	return []byte(ev.Chat.ChatID), nil
}

// lineList names line numbers, the first ten of them.
func lineList(ns []int) string {
	var b strings.Builder
	b.WriteString("line")
	if len(ns) > 1 {
		b.WriteString("s")
	}
	for i, n := range ns {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(ns)-i)
			break
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(" " + strconv.Itoa(n))
	}
	return b.String()
}

// inputLine is one non-empty line of stdin and its 1-based number.
type inputLine struct {
	n    int
	data []byte
}

// readLines reads r line by line into the returned channel, closed at the end
// of input; the error channel then holds the read error or nil. A read from
// stdin cannot be interrupted: when ctx ends first the goroutine is left blocked
// in it, and the process, which is about to exit, takes it down.
func readLines(ctx context.Context, r io.Reader) (<-chan inputLine, <-chan error) {
	lines := make(chan inputLine, produceBatch)
	errc := make(chan error, 1)
	go func() {
		defer close(lines)
		br := bufio.NewReaderSize(r, 1<<20)
		for n := 1; ; n++ {
			data, err := br.ReadBytes('\n')
			if data = bytes.TrimSpace(data); len(data) > 0 {
				select {
				case lines <- inputLine{n: n, data: data}:
				case <-ctx.Done():
					errc <- nil
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				errc <- err
				return
			}
		}
	}()
	return lines, errc
}

// nextLines blocks for one line, then takes whatever else has been read, up to
// produceBatch. It reports false once the input is over or ctx ended.
func nextLines(ctx context.Context, lines <-chan inputLine) ([]inputLine, bool) {
	l, ok := chanbatch.First(ctx, lines)
	if !ok {
		return nil, false
	}
	return chanbatch.Fill(lines, []inputLine{l}, produceBatch)
}

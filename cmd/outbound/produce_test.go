package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/testenv"
)

// runCLI runs the outbound binary built by TestMain and returns its output and
// exit status. OUTBOUND_* variables of the test's own environment are dropped,
// so that only the flags and env given here count.
func runCLI(t *testing.T, stdin io.Reader, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTBOUND_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running outbound %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// readTopic returns every record of topic, partition by partition, read over conn.
func readTopic(t *testing.T, brokers []string, conn kafkaconn.Conn, topic string, partitions int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []kafka.Message
	for p := range partitions {
		leader, err := conn.Dialer().DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := leader.ReadOffsets()
		leader.Close()
		if err != nil {
			t.Fatal(err)
		}
		if first == last {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Dialer: conn.Dialer(), Topic: topic, Partition: p,
			MaxWait: 500 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("reading %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	return out
}

// TestProduce pipes JSON lines into `outbound produce` and reads the events
// topic back.
func TestProduce(t *testing.T) {
	valid := []string{
		string(apptest.Event("ws_1", "chat-a", "m1", time.Now()).Value),
		string(apptest.Event("ws_1", "chat-b", "m2", time.Now()).Value),
		string(apptest.Event("ws_1", "chat-a", "m3", time.Now()).Value),
	}
	// Well-formed JSON with a chat id, but a direction the schema refuses.
	invalid := strings.Replace(string(apptest.Event("ws_1", "chat-z", "m4", time.Now()).Value), `"direction":"sent"`, `"direction":"sideways"`, 1)
	if invalid == string(apptest.Event("ws_1", "chat-z", "m4", time.Now()).Value) {
		t.Fatal("the invalid line is not invalid: the direction was not replaced")
	}
	input := strings.Join(append(valid, invalid), "\n") + "\n"

	cases := []struct {
		name     string
		flags    []string
		wantCode int
		wantKeys []string // in input order
		wantOut  string
		wantErr  []string
	}{
		{name: "invalid line is skipped", wantCode: 1,
			wantKeys: []string{"chat-a", "chat-b", "chat-a"},
			wantOut:  "published 3 event(s)",
			wantErr:  []string{"line 4: validating event", "message.direction", "1 invalid line(s) skipped (line 4)"}},
		{name: "allow-invalid publishes it as it is", flags: []string{"--allow-invalid"}, wantCode: 0,
			wantKeys: []string{"chat-a", "chat-b", "chat-a", "chat-z"},
			wantOut:  "published 4 event(s)",
			wantErr:  []string{"line 4: validating event"}},
	}
	k := testenv.Kafka(t)
	kafkaFlags, kafkaEnv := apptest.KafkaArgs(k.Brokers, k.Config)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const partitions = 3
			topic := testenv.NewTopic(t, partitions)
			args := append(append([]string{"produce", "--events-topic", topic}, kafkaFlags...), tc.flags...)
			stdout, stderr, code := runCLI(t, strings.NewReader(input), kafkaEnv, args...)
			if code != tc.wantCode {
				t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.wantOut) {
				t.Errorf("stdout %q lacks %q", stdout, tc.wantOut)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}

			records := readTopic(t, k.Brokers, k.Conn, topic, partitions)
			if len(records) != len(tc.wantKeys) {
				t.Fatalf("%d records on the topic, want %d", len(records), len(tc.wantKeys))
			}
			lines := append(valid, invalid)
			// Partitions are read one after the other: match records to input
			// lines by value, and check each one's key and partition.
			partitionOf := map[string]int{}
			for _, r := range records {
				i := slices.Index(lines, string(r.Value))
				if i < 0 || i >= len(tc.wantKeys) {
					t.Fatalf("record %s is none of the lines expected", r.Value)
				}
				if string(r.Key) != tc.wantKeys[i] {
					t.Errorf("line %d has key %q, want %q", i+1, r.Key, tc.wantKeys[i])
				}
				if p, seen := partitionOf[string(r.Key)]; seen && p != r.Partition {
					t.Errorf("chat %s is in partitions %d and %d; one chat must stay in one partition", r.Key, p, r.Partition)
				}
				partitionOf[string(r.Key)] = r.Partition
			}
		})
	}
}

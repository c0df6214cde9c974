package processor_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/processor"
	"github.com/outbound-webhooks/outbound/webhook"
)

// failScriptsOf fails every script that touches a partition's keys while on
// is set, as an unreachable Redis master would, and counts the failures.
type failScriptsOf struct {
	tag      string // the partition's hash tag, "{p0}"
	on       atomic.Bool
	failures atomic.Int64
}

func (f *failScriptsOf) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failScriptsOf) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.on.Load() && strings.HasPrefix(cmd.Name(), "eval") && strings.Contains(fmt.Sprint(cmd.Args()...), f.tag) {
			f.failures.Add(1)
			err := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("master of %s unreachable", f.tag)}
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (f *failScriptsOf) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// chatOn returns a chat id whose records land on partition p of n.
func chatOn(t *testing.T, p, n int) string {
	t.Helper()
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	for i := range 1000 {
		chat := fmt.Sprint("chat", i)
		if (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(chat)}, parts...) == p {
			return chat
		}
	}
	t.Fatalf("no chat id lands on partition %d", p)
	return ""
}

// TestAPartitionStuckOnRedisDoesNotHoldUpTheOthers: with a single apply slot,
// a partition whose appends keep failing gives the slot back while it waits to
// retry, so the other partition's records are still applied and delivered; the
// stuck one's follow once its Redis is back.
func TestAPartitionStuckOnRedisDoesNotHoldUpTheOthers(t *testing.T) {
	hooks := webhook.Fixed{"ws": {Workspace: "ws", Enabled: true, Granularity: webhook.None, Epoch: 1}}
	fail := &failScriptsOf{tag: "{p0}"}
	fail.on.Store(true)
	p := startPipeline(t, hooks, 2, func(rdb redis.UniversalClient, cfg *processor.Config) {
		rdb.AddHook(fail)
		cfg.Applying = 1
	})
	at := time.Now()
	produce(t, p.topic, record(t, event("ws", chatOn(t, 0, 2), "stuck", at, "hello")))
	testenv.Eventually(t, "the append of partition 0 to fail twice", 30*time.Second, func() bool { return fail.failures.Load() >= 2 })
	var recs []kafka.Message
	for i := range 20 {
		recs = append(recs, record(t, event("ws", chatOn(t, 1, 2), fmt.Sprint("m", i), at, "hello")))
	}
	produce(t, p.topic, recs...)
	testenv.Eventually(t, "partition 1's 20 messages", 30*time.Second, func() bool { return p.got.count() == 20 })
	fail.on.Store(false)
	testenv.Eventually(t, "partition 0's message once Redis is back", 30*time.Second, func() bool { return p.got.count() == 21 })
}

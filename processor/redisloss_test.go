package processor_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/redistest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// These tests make Redis lose writes it acknowledged, under load, and check that
// the worker replays them from Kafka: every message is delivered, and a message
// delivered twice comes again only inside the same whole bundle, same id.

var lossHooks = webhook.Fixed{
	"ws_none": {Workspace: "ws_none", Enabled: true, Granularity: webhook.None, Epoch: 1},
	"ws_1h":   {Workspace: "ws_1h", Enabled: true, Granularity: webhook.H1, Epoch: 1},
}

// lossStore is the store of these tests: an hour lasts a second and the grace
// three, so that a record produced at a window's end is appended before the
// window is sealed even on a loaded machine (the replay, reading by record
// time, would put a message that came later than that into the window the
// first run had already sealed: see docs/reliability.md).
func lossStore(rdb redis.UniversalClient) windowing.Config {
	return windowing.Config{Redis: rdb, Prefix: "loss", TimeScale: 3600, Grace: 3 * time.Hour}
}

// startLossPipeline starts the pipeline on rdb and waits until it owns the
// topic's partitions, so that no event waits for the group to form.
func startLossPipeline(t *testing.T, rdb redis.UniversalClient) *pipeline {
	t.Helper()
	p := startPipelineOn(t, lossHooks, 4, lossStore(rdb))
	testenv.Eventually(t, "the consumer to own the 4 partitions", time.Minute, func() bool { return len(p.consumer.Owned()) == 4 })
	return p
}

// produceWithFaults produces 1 500 events over 40 chats, in batches of 10, and
// calls faults[i] before batch i. It returns the message ids produced.
func produceWithFaults(t *testing.T, topic string, faults map[int]func()) []string {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(testenv.KafkaBrokers(t)...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var ids []string
	for b := range 150 {
		if f := faults[b]; f != nil {
			f()
		}
		var batch []kafka.Message
		for i := b * 10; i < b*10+10; i++ {
			ws := []string{"ws_none", "ws_1h"}[i%2]
			id := fmt.Sprintf("m-%05d", i)
			ids = append(ids, id)
			batch = append(batch, record(t, event(ws, fmt.Sprintf("chat-%02d", i%40), id, time.Now(), "hello "+id)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := w.WriteMessages(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		cancel()
		time.Sleep(15 * time.Millisecond) // spread the load over a few windows
	}
	return ids
}

// checkReplayed waits until every id was delivered, then checks that a
// message came in one bundle id only and that a bundle id delivered again came
// with the same messages.
func checkReplayed(t *testing.T, p *pipeline, ids []string) {
	t.Helper()
	delivered := func() (map[string]string, []windowing.Bundle) {
		p.got.mu.Lock()
		defer p.got.mu.Unlock()
		in := map[string]string{}
		for _, b := range p.got.bundles {
			for _, m := range b.Messages {
				in[m.ID] = b.ID
			}
		}
		return in, slices.Clone(p.got.bundles)
	}
	testenv.Eventually(t, "every message delivered", time.Minute, func() bool {
		in, _ := delivered()
		for _, id := range ids {
			if _, ok := in[id]; !ok {
				return false
			}
		}
		return true
	})
	_, bundles := delivered()
	contents := map[string]string{} // bundle id -> its message ids
	bundleOf := map[string]string{} // message id -> its bundle id
	again := 0
	for _, b := range bundles {
		var ms []string
		for _, m := range b.Messages {
			ms = append(ms, m.ID)
			if other, ok := bundleOf[m.ID]; ok && other != b.ID {
				t.Errorf("message %s delivered in bundle %s and again in bundle %s", m.ID, other, b.ID)
			}
			bundleOf[m.ID] = b.ID
		}
		got := strings.Join(ms, ",")
		if prev, ok := contents[b.ID]; ok {
			again++
			if prev != got {
				t.Errorf("bundle %s delivered with [%s], then again with [%s]", b.ID, prev, got)
			}
		}
		contents[b.ID] = got
	}
	if n := p.consumer.Stats().Replays.Load(); n == 0 {
		t.Error("no replay counted: Redis lost nothing, so the test showed nothing")
	}
	t.Logf("%d messages in %d bundles, %d whole-bundle redeliveries, %d replays",
		len(ids), len(contents), again, p.consumer.Stats().Replays.Load())
}

// TestRedisRestartedFromOlderAOFLosesNothing restarts a single redis-server from
// a copy of its AOF taken a moment earlier: every write since is gone, the
// watermark among them.
func TestRedisRestartedFromOlderAOFLosesNothing(t *testing.T) {
	ownRedisOnly(t)
	// Every write fsynced before it is acknowledged, no rewrite: the copy is
	// exactly what Redis had acknowledged when it was taken.
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always", "--auto-aof-rewrite-percentage", "0")
	rdb := srv.Client()
	p := startLossPipeline(t, rdb)

	aof, older := filepath.Join(srv.Dir(), "appendonlydir"), filepath.Join(t.TempDir(), "appendonlydir")
	ids := produceWithFaults(t, p.topic, map[int]func(){
		40: func() { copyDir(t, aof, older) },
		100: func() {
			srv.Kill()
			if err := os.RemoveAll(aof); err != nil {
				t.Fatal(err)
			}
			copyDir(t, older, aof)
			srv.Restart()
		},
	})
	checkReplayed(t, p, ids)
}

// TestRedisFailoverToLaggingReplicaLosesNothing runs on a cluster of three
// masters with a replica each. The replica of the master that holds partition 0
// is frozen and cut off while writes go on, its master is killed, and it takes
// over: the writes of that moment are gone.
func TestRedisFailoverToLaggingReplicaLosesNothing(t *testing.T) {
	ownRedisOnly(t)
	nodes, url := redistest.StartReplicatedCluster(t, 3)
	byAddr := map[string]*redistest.Server{}
	for _, n := range nodes {
		byAddr[n.Addr()] = n
	}
	// Opened as the worker opens it, whose slot map must follow the failover.
	rdb, err := redisconn.Open(redisconn.Config{URL: url, Cluster: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	slot, err := rdb.ClusterKeySlot(ctx, "{p0}").Result()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var master, replica *redistest.Server
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			master = byAddr[s.Nodes[0].Addr]
		}
	}
	if master == nil {
		t.Fatalf("no node holds slot %d: %+v", slot, slots)
	}
	// The master names its replica ("slave0:ip=127.0.0.1,port=P,...").
	mc := master.Client()
	repl, err := mc.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if strings.Contains(repl, fmt.Sprintf("port=%d,", n.Port)) {
			replica = n
		}
	}
	if replica == nil {
		t.Fatalf("the master of slot %d names no replica: %s", slot, repl)
	}
	p := startLossPipeline(t, rdb)

	ids := produceWithFaults(t, p.topic, map[int]func(){
		// Frozen, then cut off: the replica cannot reconnect, and the master
		// goes on acknowledging writes that only it holds.
		50: func() {
			replica.Pause()
			if err := mc.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
				t.Fatal(err)
			}
		},
		80: func() {
			master.Kill()
			replica.Resume()
			if err := replica.Client().Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err(); err != nil {
				t.Fatal(err)
			}
		},
	})
	checkReplayed(t, p, ids)
}

// ownRedisOnly skips the cluster pass of make test: these tests start Redis of
// their own, so running them again adds only time.
func ownRedisOnly(t *testing.T) {
	if testenv.Cluster() {
		t.Skip("starts Redis of its own; the pass on the single node runs it")
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", from, to).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", from, err, out)
	}
}

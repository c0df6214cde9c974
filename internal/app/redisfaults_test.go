package app

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/redistest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
)

// faultRig is a worker on a three-master Redis Cluster of the test's own,
// whose masters the test may kill, restart or freeze, with 1h windows
// (closing after a second at the time scale) and a receiver.
type faultRig struct {
	t     *testing.T
	c     *apptest.Cluster
	nodes []*redistest.Server
	recv  *apptest.Receiver
	logs  *observer.ObservedLogs
	sent  []string
}

// newFaultRig starts the cluster with AOF and appendfsync always: Redis
// answers a write only once it is on disk, so that a master killed and
// restarted keeps every write it acknowledged. With everysec a crash loses up
// to a second of acknowledged writes, whose Kafka offsets the worker may
// already have committed: those messages would be lost for good.
func newFaultRig(t *testing.T) *faultRig {
	nodes, url := redistest.StartCluster(t, 3, "--appendfsync", "always")
	c := apptest.NewCluster(t, 3)
	c.Redis = redisconn.Config{URL: url, Cluster: true}
	r := &faultRig{t: t, c: c, nodes: nodes, recv: apptest.NewReceiver(t)}
	c.Publish(apptest.Configure("ws", r.recv.Srv.URL+"/ws", "1h"))
	core, logs := observer.New(zap.InfoLevel)
	r.logs = logs
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	w, err := New(Config{Brokers: c.Brokers, Kafka: c.Kafka, Redis: c.Redis, RedisKeyPrefix: c.KeyPrefix, GroupID: c.Group,
		EventsTopic: c.Events, ControlTopic: c.Control, DLQTopic: c.DLQ, AllowPrivate: true,
		SessionTimeout: 6 * time.Second, TimeScale: 3600}, log)
	if err != nil {
		t.Fatal(err)
	}
	apptest.RunUntilCleanup(t, "worker", w.Run) // fails the test if Run returns an error
	return r
}

// load writes n messages over chats, keyed by chat like upstream, spread over
// about d, and records their ids.
func (r *faultRig) load(n, chats int, d time.Duration) {
	wr := r.c.Writer()
	defer wr.Close()
	for i := range n {
		id := fmt.Sprintf("m%d-%d", len(r.sent), i)
		if err := wr.WriteMessages(context.Background(), apptest.Event("ws", fmt.Sprint("chat-", i%chats), id, time.Now())); err != nil {
			r.t.Error(err)
			return
		}
		r.sent = append(r.sent, id)
		time.Sleep(d / time.Duration(n))
	}
}

// underLoad starts writing 300 messages over 12 chats in about 6 s, and
// returns once a fifth are buffered: the master of partition 0's slot, for the
// test's fault, and a function that waits until all are written.
func (r *faultRig) underLoad() (victim *redistest.Server, loaded func()) {
	victim = r.masterOf(r.c.KeyPrefix + ":{p0}:wm")
	var wg sync.WaitGroup
	wg.Go(func() { r.load(300, 12, 6*time.Second) })
	testenv.Eventually(r.t, "windows buffered before the fault", 30*time.Second, func() bool {
		return r.appended() >= 60
	})
	return victim, wg.Wait
}

// masterOf returns the master that serves key's slot.
func (r *faultRig) masterOf(key string) *redistest.Server {
	r.t.Helper()
	rdb := r.nodes[0].Client()
	ctx := context.Background()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			for _, n := range r.nodes {
				if n.Addr() == s.Nodes[0].Addr {
					return n
				}
			}
		}
	}
	r.t.Fatalf("no master serves the slot of %s", key)
	return nil
}

// deliveredExactlyOnce waits until every message sent is in a delivered
// bundle, and checks that none is in two different bundles (a redelivery
// under the same webhook-id is fine: receivers de-duplicate by it).
func (r *faultRig) deliveredExactlyOnce() {
	r.t.Helper()
	testenv.Eventually(r.t, fmt.Sprintf("all %d messages delivered", len(r.sent)), 90*time.Second, func() bool {
		u := r.recv.Unique()
		for _, id := range r.sent {
			if u[id] == 0 {
				return false
			}
		}
		return true
	})
	for id, n := range r.recv.Unique() {
		if n != 1 {
			r.t.Errorf("message %s in %d different bundles", id, n)
		}
	}
}

// A master of the windows' partition is killed (SIGKILL, as a crash) while
// messages flow, and restarted from its AOF: every message is delivered, once.
func TestClusterMasterRestartedUnderLoadLosesNothing(t *testing.T) {
	r := newFaultRig(t)
	victim, loaded := r.underLoad()
	victim.Kill()
	time.Sleep(time.Second) // the master stays down while writes to its slots fail
	victim.Restart()
	victim.WaitClusterOK()
	loaded()
	r.deliveredExactlyOnce()
}

// While the master of a partition's slot is frozen (SIGSTOP: connections
// open, nobody answers), the worker retries its writes with growing waits and
// says so in its log; it does not crash, and once the master answers again
// every message is delivered, none skipped.
func TestClusterSlotUnreachableIsRetriedWithBackoff(t *testing.T) {
	r := newFaultRig(t)
	victim, loaded := r.underLoad()
	victim.Pause()
	// One attempt against a frozen master can take go-redis's read timeout (3 s)
	// on each of its own tries (4 per command on a cluster), for each command of
	// the append: up to about 30 s before the worker's retry is logged.
	testenv.Eventually(t, "the append retried three times", 3*time.Minute, func() bool {
		return len(r.retries()) >= 3
	})
	victim.Resume()
	loaded()
	r.deliveredExactlyOnce()

	retries := r.retries()
	for i := 1; i < len(retries) && i < 3; i++ {
		prev, cur := retries[i-1].ContextMap()["retry_in"], retries[i].ContextMap()["retry_in"]
		if cur.(time.Duration) <= prev.(time.Duration) {
			t.Errorf("retry %d waits %v after a wait of %v: want backoff", i+1, cur, prev)
		}
	}
	if n := r.logs.FilterMessage("recovered").FilterField(zap.String("after", "appending batch")).Len(); n == 0 {
		t.Error("no log says the append recovered")
	}
}

// retries returns the log entries of failed appends that will be retried, of
// the first partition that failed.
func (r *faultRig) retries() []observer.LoggedEntry {
	var out []observer.LoggedEntry
	partition := int64(-1)
	for _, e := range r.logs.FilterMessage("appending batch").All() {
		p, _ := e.ContextMap()["partition"].(int64)
		if partition < 0 {
			partition = p
		}
		if p == partition {
			out = append(out, e)
		}
	}
	return out
}

// appended counts the messages the worker has buffered, by the partitions'
// watermarks (one key each, readable while a master is down).
func (r *faultRig) appended() int {
	rdb, err := redisconn.Open(r.c.Redis)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rdb.Close()
	n := 0
	for p := range 3 {
		v, err := rdb.Get(context.Background(), fmt.Sprintf("%s:{p%d}:wm", r.c.KeyPrefix, p)).Int()
		if err == nil {
			n += v + 1
		} else if err != redis.Nil {
			return n
		}
	}
	return n
}

package control_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
)

// waitTimeout bounds every wait for an effect to show up. Effects normally take
// well under a second; the margin absorbs a loaded CI machine.
const waitTimeout = 20 * time.Second

// eventually polls cond until it returns "" or waitTimeout passes; then it fails
// the test with cond's last complaint.
func eventually(t testing.TB, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %s", what, waitTimeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newRedis returns one test's Redis and the key schema its keys go under. On
// the cluster, which every test shares (OUTBOUND_TEST_REDIS=cluster), the key
// prefix is the only isolation; on the single node the database is fresh too.
func newRedis(t testing.TB) (redis.UniversalClient, control.Keys) {
	t.Helper()
	return testenv.Redis(t), control.Keys(testenv.KeyPrefix())
}

// startReader runs a Reader until the test ends and checks that Run ended cleanly.
func startReader(t testing.TB, brokers []string, topic string, rdb redis.UniversalClient, keys control.Keys, reg *control.Registry) *control.Reader {
	t.Helper()
	return startReaderLogged(t, brokers, topic, rdb, keys, reg, zaptest.NewLogger(t))
}

// startReaderLogged is startReader with the Reader's logger chosen by the test.
func startReaderLogged(t testing.TB, brokers []string, topic string, rdb redis.UniversalClient, keys control.Keys, reg *control.Registry, log *zap.Logger) *control.Reader {
	t.Helper()
	r, err := control.NewReader(control.ReaderConfig{
		Brokers: brokers, Topic: topic, Redis: rdb, Keys: keys, Registry: reg,
		Logger: log, PartitionRefresh: time.Second,
	})
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	stop := runInBackground(t, "Reader.Run", r.Run)
	t.Cleanup(stop)
	return r
}

// runInBackground starts run and returns a function that stops it and waits.
func runInBackground(t testing.TB, name string, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s returned %v", name, err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("%s did not return within %s of its context ending", name, waitTimeout)
		}
	}
}

func newPublisher(t testing.TB, brokers []string, topic string) *control.Publisher {
	t.Helper()
	p, err := control.NewPublisher(control.PublisherConfig{Brokers: brokers, Topic: topic, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing publisher: %v", err)
		}
	})
	return p
}

func publish(t testing.TB, p *control.Publisher, msgs ...schemas.ControlMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, m := range msgs {
		if err := p.Publish(ctx, m); err != nil {
			t.Fatalf("publishing %s for %s: %v", m.Type, m.WorkspaceID, err)
		}
	}
}

func waitCaughtUp(t testing.TB, r *control.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := r.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("WaitCaughtUp: %v", err)
	}
	if !r.CaughtUp() {
		t.Fatal("CaughtUp() = false after WaitCaughtUp returned")
	}
}

func ptr[T any](v T) *T { return &v }

func configure(ws, url, granularity string) schemas.ControlMessage {
	return schemas.ControlMessage{
		Type: schemas.TypeConfigure, WorkspaceID: ws, URL: url, Granularity: granularity,
		Enabled: ptr(true), OwnerEmail: "owner+" + ws + "@example.com",
	}
}

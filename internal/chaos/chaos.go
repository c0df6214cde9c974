package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/topics"
	"github.com/outbound-webhooks/outbound/schemas"
)

// Config is one chaos run. Full returns `make chaos`'s; a test scales it down.
type Config struct {
	Worker      string // the `outbound` binary
	KafkaScript string // scripts/kafka.sh
	StateDir    string // services' data and every process's log; must exist
	Out         io.Writer

	Workers    int
	Partitions int
	Events     int
	Chats      int
	Workspaces int // granularities none, 1h, 6h, 12h, 24h in turn
	Load       time.Duration
	TimeScale  float64 // the workers' --time-scale
	Seed       uint64

	Kills        int           // SIGKILLs of random workers, each followed by a restart
	RedisRestart bool          // SIGKILL redis-server and start it again on its AOF
	Freeze       time.Duration // SIGSTOP a worker this long, then SIGCONT (0: no)
	Outage       time.Duration // the receiver answers 503 at most this long (0: no; see maxRefused)
	KafkaRestart bool          // restart the broker on the same port and data

	Drain time.Duration // how long after the load every message may take to arrive
	// Settle is how long the receiver keeps listening once every message has
	// arrived, so that late duplicates are counted too.
	Settle time.Duration
}

// sessionTimeout is the workers' --session-timeout: Full's freeze outlasts it.
const sessionTimeout = 6 * time.Second

// Full is the scenario of `make chaos`.
func Full() Config {
	return Config{
		KafkaScript: "scripts/kafka.sh", Worker: "bin/outbound", Out: os.Stdout,
		Workers: 3, Partitions: 12, Events: 50_000, Chats: 2_000, Workspaces: 10,
		// At 1440 a 24h window lasts 60 s and a 1h window 2.5 s: every
		// granularity closes windows while the load runs.
		Load: 150 * time.Second, TimeScale: 1440, Seed: 1,
		Kills: 10, RedisRestart: true, Freeze: sessionTimeout + 4*time.Second,
		Outage: 1500 * time.Millisecond, KafkaRestart: true,
		Drain: 4 * time.Minute, Settle: 10 * time.Second,
	}
}

// Run runs the scenario and returns its result; an error means the run could
// not be carried out, not that a check failed (see Result.Failed).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Out, "chaos: "+format+"\n", args...) }
	start := time.Now()
	say("state and logs in %s", cfg.StateDir)
	if _, err := os.Stat(cfg.Worker); err != nil {
		return nil, fmt.Errorf("the worker binary: %w (make build writes bin/outbound)", err)
	}

	rds, err := startRedis(ctx, filepath.Join(cfg.StateDir, "redis"))
	if err != nil {
		return nil, err
	}
	defer rds.stop()
	kafka, err := startKafka(ctx, cfg.KafkaScript, filepath.Join(cfg.StateDir, "kafka"))
	if err != nil {
		return nil, err
	}
	defer kafka.stop()
	say("redis-server (AOF, fsync always) at %s, Kafka at %s, ready after %s", rds.addr(), kafka.addr, since(start))

	brokers := []string{kafka.addr}
	events, ctlTopic, dlq := "chat.messages", "webhooks.control", "chat.messages.dlq"
	for _, t := range []struct {
		name       string
		partitions int
	}{{events, cfg.Partitions}, {ctlTopic, 1}, {dlq, 1}} {
		if err := topics.Create(ctx, kafkaconn.Conn{}, brokers, t.name, t.partitions); err != nil {
			return nil, err
		}
	}
	recv, err := startReceiver()
	if err != nil {
		return nil, err
	}
	defer recv.close()
	if err := configure(ctx, brokers, ctlTopic, recv.url, cfg.Workspaces); err != nil {
		return nil, err
	}

	scale := strconv.FormatFloat(cfg.TimeScale, 'f', -1, 64)
	ws := &workers{dir: cfg.StateDir, argv: []string{cfg.Worker, "worker",
		"--kafka-brokers", kafka.addr, "--redis-url", "redis://" + rds.addr() + "/0",
		"--group-id", "outbound", "--events-topic", events, "--control-topic", ctlTopic, "--dlq-topic", dlq,
		"--http-addr", "", "--allow-private-targets", "--log-format", "json", "--time-scale", scale,
		"--session-timeout", sessionTimeout.String(), "--request-timeout", "2s", "--shutdown-timeout", "20s"}}
	if err := ws.start(cfg.Workers); err != nil {
		return nil, err
	}
	defer ws.stopAll(30 * time.Second)

	p := newPlan(cfg.Events, cfg.Chats, cfg.Workspaces, cfg.Seed)
	say("%d workers; producing %d events over %d chats in %d workspaces for %s at time scale %s",
		cfg.Workers, cfg.Events, cfg.Chats, cfg.Workspaces, cfg.Load, scale)
	loadStart := time.Now()
	produced := make(chan error, 1)
	go func() { produced <- p.produce(ctx, brokers, events, cfg.Load) }()
	f := &faults{cfg: cfg, say: func(format string, args ...any) { say("%8s  "+format, append([]any{since(loadStart)}, args...)...) },
		ws: ws, redis: rds, kafka: kafka, recv: recv, r: rand.New(rand.NewPCG(cfg.Seed, 0xfa17))}
	if err := f.run(ctx, loadStart); err != nil {
		return nil, fmt.Errorf("injecting faults: %w", err)
	}
	if err := <-produced; err != nil {
		return nil, err
	}
	say("%8s  all %d events produced; waiting for deliveries", since(loadStart), cfg.Events)

	want := 0
	for i := range cfg.Events {
		if p.deliverable(i) {
			want++
		}
	}
	drained := waitUntil(ctx, cfg.Drain, "every deliverable message", func() (bool, error) { return recv.distinct() >= want, nil })
	if errors.Is(drained, context.Canceled) {
		return nil, drained
	}
	say("%8s  %d of %d deliverable messages delivered; listening %s more for late duplicates", since(loadStart), recv.distinct(), want, cfg.Settle)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Settle):
	}
	shutdown := ws.stopAll(30 * time.Second)
	deliveries, undecoded := recv.recorded()
	if err := dump(filepath.Join(cfg.StateDir, "deliveries.jsonl"), deliveries); err != nil {
		return nil, err
	}
	res := check(p, deliveries)
	res.Undecoded = undecoded
	res.Faults = f.done
	ws.mu.Lock()
	res.Exits = append(append([]string(nil), ws.unexpected...), shutdown...)
	ws.mu.Unlock()
	res.Elapsed = time.Since(start)
	return res, nil
}

// configure sets up the workspaces' webhooks as an operator would with
// `outbound ctl configure`, each on its own path of the receiver.
func configure(ctx context.Context, brokers []string, topic, url string, workspaces int) error {
	pub, err := control.NewPublisher(control.PublisherConfig{Brokers: brokers, Topic: topic})
	if err != nil {
		return err
	}
	defer pub.Close()
	on := true
	for w := range workspaces {
		id := workspaceID(w)
		if err := pub.Publish(ctx, schemas.ControlMessage{Type: schemas.TypeConfigure, WorkspaceID: id,
			URL: url + "/" + id, Granularity: granularities[w%len(granularities)], Enabled: &on,
			OwnerEmail: "owner@" + id + ".example.com"}); err != nil {
			return fmt.Errorf("configuring %s: %w", id, err)
		}
	}
	return nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

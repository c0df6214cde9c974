package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/smtptest"
)

// startKafka starts the embedded broker with the demo's topics.
func (d *demo) startKafka() error {
	var err error
	// One broker: the demo shows the worker, not broker fail-over.
	d.kafka, err = kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(partitions, eventsTopic),
		kfake.SeedTopics(1, control.DefaultTopic, dlqTopic))
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	d.brokers = d.kafka.ListenAddrs()
	d.out.line("  Kafka     embedded broker (kfake) at %s; topics %s (%d partitions), %s, %s",
		strings.Join(d.brokers, ","), eventsTopic, partitions, control.DefaultTopic, dlqTopic)
	return nil
}

// startRedis starts miniredis, or checks that the Redis of Options.Redis
// is empty and uses it.
func (d *demo) startRedis(ctx context.Context) error {
	if d.opts.Redis.URL != "" {
		// The broker is new on every run, so its offsets restart at 0: watermarks
		// and control offsets left in Redis by an earlier run would hide the new
		// records. Refuse rather than flush someone's data.
		where := urls.Redact(d.opts.Redis.URL)
		rdb, err := redisconn.Open(d.opts.Redis)
		if err != nil {
			return fmt.Errorf("parsing --redis-url: %w", err)
		}
		defer rdb.Close()
		var n int64
		err = redisconn.ForEachMaster(ctx, rdb, func(ctx context.Context, node *redis.Client) error {
			keys, err := node.DBSize(ctx).Result()
			n += keys
			return err
		})
		if err != nil {
			return fmt.Errorf("checking --redis-url %s: %w", where, err)
		}
		if n > 0 {
			return fmt.Errorf("checking --redis-url: %s holds %d keys; the demo needs an empty database "+
				"(its embedded Kafka starts from offset 0 every run, and offsets kept in Redis would hide the new records): "+
				"pick another database (redis://host:port/15) or empty this one yourself", where, n)
		}
		d.redis = d.opts.Redis
		d.out.line("  Redis     %s (the demo's keys stay there afterwards)", where)
		return nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return fmt.Errorf("starting the embedded Redis: %w", err)
	}
	d.mini = m
	d.redis = redisconn.Config{URL: "redis://" + m.Addr() + "/0"}
	d.out.line("  Redis     embedded (miniredis) at %s", m.Addr())
	return nil
}

// startSMTP starts the mail catcher the worker's notifier sends the owner
// emails to.
func (d *demo) startSMTP() error {
	var err error
	if d.smtp, err = smtptest.New("127.0.0.1:0"); err != nil {
		return fmt.Errorf("starting the mail catcher: %w", err)
	}
	d.smtp.OnMessage(d.onEmail)
	d.out.line("  SMTP      in-process mail catcher at %s: shows the owner email instead of sending it", d.smtp.Addr())
	return nil
}

// startReceiver serves the local webhook receiver on a free loopback port.
func (d *demo) startReceiver() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening for the webhook receiver: %w", err)
	}
	failing := map[string]bool{}
	for _, ws := range d.plan.failing() {
		failing[ws.id] = true
	}
	d.recv = newReceiver(d.out, failing, "http://"+ln.Addr().String())
	d.http = &http.Server{Handler: d.recv, ReadHeaderTimeout: 5 * time.Second}
	d.httpDone = make(chan struct{})
	go func() {
		defer close(d.httpDone)
		// Serve returns ErrServerClosed once close shuts it down; nothing else
		// can stop a loopback listener we own.
		_ = d.http.Serve(ln)
	}()
	d.out.line("  Receiver  local webhook receiver at %s", d.recv.base)
	return nil
}

// openLog opens the file the worker logs to, so that its lines do not mix
// with the demo's own output.
func (d *demo) openLog() error {
	var err error
	if d.opts.LogFile != "" {
		d.logFile, err = os.OpenFile(d.opts.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	} else {
		d.logFile, err = os.CreateTemp("", "outbound-demo-*.log")
	}
	if err != nil {
		return fmt.Errorf("opening the worker log: %w", err)
	}
	d.logPath = d.logFile.Name()
	return nil
}

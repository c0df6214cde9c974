// Command outbound-chaos runs `outbound worker` processes against a Kafka broker
// and a redis-server of its own while it kills, freezes and restarts all of
// them, then prints what a webhook receiver got: nothing may be lost, duplicated
// inside bundles or out of order per chat. `make chaos` runs it with the
// defaults; docs/reliability.md explains the table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/outbound-webhooks/outbound/internal/chaos"
)

func main() {
	cfg := chaos.Full()
	fs := flag.NewFlagSet("outbound-chaos", flag.ExitOnError)
	fs.StringVar(&cfg.Worker, "worker", cfg.Worker, "the outbound binary to run as `outbound worker`")
	fs.StringVar(&cfg.KafkaScript, "kafka-script", cfg.KafkaScript, "scripts/kafka.sh of this repository")
	keep := fs.Bool("keep-state", false, "keep the state directory (services' data, every process's log) after a passing run too")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "worker processes")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the events topic")
	fs.IntVar(&cfg.Events, "events", cfg.Events, "events to produce")
	fs.IntVar(&cfg.Chats, "chats", cfg.Chats, "chats the events are spread over")
	fs.IntVar(&cfg.Workspaces, "workspaces", cfg.Workspaces, "workspaces; their granularities are none, 1h, 6h, 12h, 24h in turn")
	fs.DurationVar(&cfg.Load, "load", cfg.Load, "how long producing the events takes; the faults happen meanwhile")
	fs.Float64Var(&cfg.TimeScale, "time-scale", cfg.TimeScale, "the workers' --time-scale")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the events and of the choice of workers to kill")
	fs.IntVar(&cfg.Kills, "kills", cfg.Kills, "SIGKILLs of random workers, each followed by a restart")
	fs.BoolVar(&cfg.RedisRestart, "redis-restart", cfg.RedisRestart, "SIGKILL redis-server once and restart it on its AOF")
	fs.DurationVar(&cfg.Freeze, "freeze", cfg.Freeze, "SIGSTOP a worker this long, then SIGCONT (0: no)")
	fs.DurationVar(&cfg.Outage, "outage", cfg.Outage, "the receiver answers 503 this long (0: no)")
	fs.BoolVar(&cfg.KafkaRestart, "kafka-restart", cfg.KafkaRestart, "restart the Kafka broker once")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "how long after the load every message may take to arrive")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "how long to keep listening for late duplicates once all arrived")
	_ = fs.Parse(os.Args[1:]) // ExitOnError

	dir, err := os.MkdirTemp("", "outbound-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "outbound-chaos:", err)
		os.Exit(1)
	}
	cfg.StateDir = dir
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := chaos.Run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "outbound-chaos: %v\n(state and logs kept in %s)\n", err, dir)
		os.Exit(1)
	}
	res.Print(os.Stdout, cfg)
	if why := res.Failed(); why != "" {
		fmt.Printf("\nFAIL: %s (state and logs kept in %s)\n", why, dir)
		os.Exit(1)
	}
	if *keep {
		fmt.Printf("\nPASS (state and logs kept in %s)\n", dir)
		return
	}
	os.RemoveAll(dir)
	fmt.Println("\nPASS")
}

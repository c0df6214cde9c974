// Command outbound-bench measures outbound against real Kafka and Redis, each
// figure beside the baseline that bounds it (internal/bench). `make bench` and
// `make bench-quick` run it on private services, after building bin/outbound:
// the memory and scale-out phases run that binary as `outbound worker`
// subprocesses.
//
// It is a command of its own so that the worker binary links none of it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/outbound-webhooks/outbound/internal/bench"
	"github.com/outbound-webhooks/outbound/internal/cli"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
)

// Environment variables scripts/with-services sets, read as the bench's
// defaults so that `make bench` needs no flags.
const (
	envBenchBrokers = "OUTBOUND_TEST_KAFKA_BROKERS"
	envBenchRedis   = "OUTBOUND_TEST_REDIS_ADDR"
	envBenchCluster = "OUTBOUND_TEST_REDIS_CLUSTER_ADDRS"
)

func main() {
	cli.Main(func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return cli.Status(stderr, "outbound-bench", run(ctx, args, stdout, stderr))
	})
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("outbound-bench", `outbound-bench: measure throughput, latency and memory against real Kafka and Redis.

Every figure is printed beside the baseline that bounds it, measured in the same
run (a plain kafka-go consumer, a pipelined Redis loop, a plain HTTP client):
absolute numbers drift on shared machines, the ratios are the result. The table
goes to stdout, progress to stderr, every row to --out as JSON.

The bench creates its own topics and Redis databases and removes them at the
end; the Redis memory row reads the server-wide used_memory, so give it a
redis-server of its own. "make bench" and "make bench-quick" start private
Kafka and Redis through scripts/with-services.`)
	fs.SetOutput(stderr)
	var (
		brokers, redisAddr, clusterAddrs, out, profileDir, only, workerBinary string
		quick                                                                 bool
		kafkaCfg                                                              kafkaconn.Config
	)
	// The addresses fall back to the variables scripts/with-services exports,
	// not to OUTBOUND_KAFKA_BROKERS: a worker's production brokers are the last
	// thing a benchmark should fill with a million events.
	fs.FlagSet.StringVar(&brokers, "kafka-brokers", os.Getenv(envBenchBrokers),
		"Kafka bootstrap brokers, comma-separated (env "+envBenchBrokers+")")
	fs.FlagSet.StringVar(&redisAddr, "redis-addr", os.Getenv(envBenchRedis),
		"redis-server host:port (env "+envBenchRedis+")")
	fs.FlagSet.StringVar(&clusterAddrs, "redis-cluster-addrs", os.Getenv(envBenchCluster),
		"nodes of a Redis Cluster for the cluster phase, comma-separated; the bench empties it (env "+envBenchCluster+")")
	fs.BoolVar(&quick, "quick", false, "run every phase at about a tenth of the scale (under two minutes)")
	fs.StringVar(&out, "out", "bench/results/latest.json", "where to write the rows as JSON (empty: nowhere)")
	fs.StringVar(&profileDir, "profile-dir", "", "write a CPU profile of each in-process measurement here (costs a few percent)")
	fs.StringVar(&workerBinary, "worker-binary", "bin/outbound",
		"the outbound binary that the memory and scale-out phases run as worker subprocesses (make bench builds it)")
	fs.StringVar(&only, "only", "", "run only these phases, comma-separated: "+strings.Join(bench.Phases, ", "))
	kafkaCfg.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := kafkaconn.New(kafkaCfg); err != nil {
		return cli.UsageError(err)
	}
	cfg := bench.Config{Brokers: cli.SplitList(brokers), Kafka: kafkaCfg, RedisAddr: strings.TrimSpace(redisAddr),
		RedisClusterAddrs: cli.SplitList(clusterAddrs), Quick: quick,
		ProfileDir: profileDir, Only: cli.SplitList(only), Progress: stderr}
	var missing []string
	if len(cfg.Brokers) == 0 {
		missing = append(missing, "Kafka (--kafka-brokers or "+envBenchBrokers+")")
	}
	if cfg.RedisAddr == "" {
		missing = append(missing, "Redis (--redis-addr or "+envBenchRedis+")")
	}
	if len(missing) > 0 {
		return cli.UsageError(fmt.Errorf("no %s: run `make bench` or `make bench-quick`, which start both through scripts/with-services",
			strings.Join(missing, " and no ")))
	}
	// The workers are the production binary, not this one: what the memory rows
	// measure is what an operator runs.
	exe, err := exec.LookPath(workerBinary)
	if err != nil {
		return cli.UsageError(fmt.Errorf("--worker-binary: %w (run `make build`, or `make bench`, which builds it)", err))
	}
	cfg.WorkerCommand = []string{exe, "worker"}

	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteMarkdown(stdout); err != nil {
		return fmt.Errorf("printing the table: %w", err)
	}
	if out != "" {
		if err := rep.WriteJSON(out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: rows written to %s\n", out)
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d phase(s) could not be measured: %s", len(rep.Failures), strings.Join(rep.Failures, "; "))
	}
	return nil
}

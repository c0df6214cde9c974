package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShortChaosRunLosesNothing is `make chaos` scaled down for every `make
// test`: 3 workers, 12 partitions, 3 000 events, 3 worker kills, a redis-server
// kill and a receiver outage. It starts its own Kafka and redis-server, because
// it restarts them.
func TestShortChaosRunLosesNothing(t *testing.T) {
	for _, bin := range []string{"java", "redis-server"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: the chaos test runs its own Kafka and redis-server; "+
				"install them with `make kafka-install redis-install` (Kafka needs java 17+)", bin)
		}
	}
	dir, err := os.MkdirTemp("", "outbound-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	// Not race-instrumented: on two cores that would slow the workers down more
	// than the faults do. The worker's own tests run with -race.
	worker := filepath.Join(dir, "outbound")
	build := exec.Command("go", "build", "-o", worker, "../../cmd/outbound")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the worker: %v\n%s", err, out)
	}

	cfg := Full()
	cfg.Worker, cfg.KafkaScript, cfg.StateDir, cfg.Out = worker, "../../scripts/kafka.sh", dir, t.Output()
	cfg.Events, cfg.Chats, cfg.Load = 3000, 200, 20*time.Second
	// At 8640 a 24h window lasts 10 s: two close during the load.
	cfg.TimeScale = 8640
	cfg.Kills, cfg.Freeze, cfg.Outage, cfg.KafkaRestart = 3, 0, time.Second, false
	// A generous drain: `make test` runs other packages' tests on the same cores.
	cfg.Drain, cfg.Settle = 2*time.Minute, 3*time.Second

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("%v (state and logs kept in %s)", err, dir)
	}
	var table strings.Builder
	res.Print(&table, cfg)
	t.Log(table.String())
	if why := res.Failed(); why != "" {
		t.Fatalf("%s (state and logs kept in %s)", why, dir)
	}
	if len(res.Faults) != 5 {
		t.Fatalf("%d faults injected, want 5", len(res.Faults))
	}
	os.RemoveAll(dir)
}

package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-webhooks/outbound/internal/childproc"
	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server the harness can kill and start again on the same
// port and directory, so that its AOF is what the restarted server loads.
type redisServer struct {
	dir  string
	port int
	proc *childproc.Process
}

func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server not found: apt-get install redis-server (or run scripts/redis.sh install)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	r := &redisServer{dir: dir, port: port}
	return r, r.start(ctx)
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start runs redis-server with every write fsynced to the AOF before it is
// acknowledged: a SIGKILL then loses nothing a worker was told is stored, which
// is the durability the worker's exactly-once ingest assumes.
func (r *redisServer) start(ctx context.Context) error {
	p, err := childproc.Start("redis-server", filepath.Join(r.dir, "redis.out"), "redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err != nil {
		return err
	}
	r.proc = p
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	return waitUntil(ctx, 30*time.Second, "redis-server to answer PING", func() (bool, error) {
		if !p.Running() {
			return false, fmt.Errorf("redis-server exited while starting; see %s", filepath.Join(r.dir, "redis.log"))
		}
		// LOADING is an error too: the server answers only once the AOF is read.
		return c.Ping(ctx).Err() == nil, nil
	})
}

// restart kills the server with SIGKILL, as a crash would, and starts it again.
func (r *redisServer) restart(ctx context.Context) error {
	r.proc.Kill()
	return r.start(ctx)
}

func (r *redisServer) stop() { r.proc.Kill() }

// kafkaBroker is the single-node broker of scripts/kafka.sh, whose restart keeps
// the port and the data.
type kafkaBroker struct {
	script, dir, addr string
}

func startKafka(ctx context.Context, script, dir string) (*kafkaBroker, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("java not found: apt-get install openjdk-17-jre-headless (Kafka needs Java 17+)")
	}
	k := &kafkaBroker{script: script, dir: dir}
	out, err := k.run(ctx, "start")
	if err != nil {
		return nil, err
	}
	k.addr = out
	return k, nil
}

func (k *kafkaBroker) restart(ctx context.Context) error {
	out, err := k.run(ctx, "restart")
	if err == nil && out != k.addr {
		err = fmt.Errorf("the broker came back on %s, not on %s", out, k.addr)
	}
	return err
}

func (k *kafkaBroker) stop() {
	// Not ctx-bound: the broker must stop even when the run was interrupted.
	if _, err := k.run(context.Background(), "stop"); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
	}
}

// run runs the script and returns what it printed: the bootstrap address.
func (k *kafkaBroker) run(ctx context.Context, what string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", k.script, what, k.dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", k.script, what, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// waitUntil polls cond every 50 ms until it holds, returns an error, or timeout
// or ctx ends.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

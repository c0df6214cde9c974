package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/webhook"
)

// workerProc is one `outbound worker` subprocess.
type workerProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	// assigned counts the worker's "partitions assigned" log lines: one per
	// group generation it took part in.
	assigned atomic.Int64
	mu       sync.Mutex
	tail     []string // the last lines of its log, for errors
}

// workerSetup is what workers of one measurement share.
type workerSetup struct {
	topic, control, group string
	db                    int
}

// startWorker starts `outbound worker` on the setup. It gets only the flags
// below: OUTBOUND_* variables of the bench's environment would otherwise
// change it (a --time-scale, say) behind the bench's back.
func (r *run) startWorker(s workerSetup) (*workerProc, error) {
	if len(r.cfg.WorkerCommand) == 0 {
		return nil, errors.New("no worker command configured")
	}
	args := append(r.cfg.WorkerCommand[1:len(r.cfg.WorkerCommand):len(r.cfg.WorkerCommand)],
		"--kafka-brokers", strings.Join(r.k.brokers, ","), "--redis-url", r.r.url(s.db),
		"--group-id", s.group, "--events-topic", s.topic, "--control-topic", s.control,
		"--dlq-topic", s.topic+"-dlq", "--http-addr", "", "--allow-private-targets", "--log-format", "json")
	cmd := exec.Command(r.cfg.WorkerCommand[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTBOUND_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Through the environment, where ps does not show the password.
	cmd.Env = append(cmd.Env, r.cfg.Kafka.Env()...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("starting a worker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a worker: %w", err)
	}
	w := &workerProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, `"msg":"partitions assigned"`) {
				w.assigned.Add(1)
			}
			w.mu.Lock()
			w.tail = append(w.tail, line)
			if len(w.tail) > 20 {
				w.tail = w.tail[1:]
			}
			w.mu.Unlock()
		}
		// The pipe ends when the worker exits; Wait must follow the reads.
		w.err = cmd.Wait()
		close(w.done)
	}()
	return w, nil
}

// failed returns an error once the worker has exited.
func (w *workerProc) failed() error {
	select {
	case <-w.done:
		w.mu.Lock()
		defer w.mu.Unlock()
		return fmt.Errorf("worker %d exited (%w); its last log lines:\n%s", w.cmd.Process.Pid, w.err, strings.Join(w.tail, "\n"))
	default:
		return nil
	}
}

// stop asks the worker to shut down as an operator would (SIGTERM) and kills
// it if it has not within its shutdown timeout.
func (w *workerProc) stop() {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(40 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// controlTopic creates a control topic configuring every workspace's webhook
// in granularity g, as operators would with `outbound ctl configure`.
func (r *run) controlTopic(ctx context.Context, what string, g webhook.Granularity, baseURL string) (string, error) {
	name, err := r.k.createTopic(ctx, what, 1)
	if err != nil {
		return "", err
	}
	pub, err := control.NewPublisher(control.PublisherConfig{Brokers: r.k.brokers, Kafka: r.k.conn, Topic: name})
	if err != nil {
		return "", err
	}
	defer pub.Close()
	for ws := range r.sc.Workspaces {
		if err := pub.Publish(ctx, configure(ws, g, baseURL)); err != nil {
			return "", fmt.Errorf("configuring workspace %d: %w", ws, err)
		}
	}
	return name, nil
}

// workersFailed returns the first worker's failure.
func workersFailed(ws []*workerProc) error {
	for _, w := range ws {
		if err := w.failed(); err != nil {
			return err
		}
	}
	return nil
}

func stopWorkers(ws []*workerProc) {
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.stop()
		}()
	}
	wg.Wait()
}

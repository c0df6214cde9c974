package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
)

// binary is the outbound binary built once for the tests that run it as a
// separate process (kill -9 needs a process).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outbound-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "outbound")
	// -tags faults: a worker started with OUTBOUND_FAULT crashes at that point
	// (internal/faults); without it the binary behaves as the released one.
	build := exec.Command("go", "build", "-race", "-tags", "faults", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building outbound for the end-to-end tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is an apptest.Cluster whose workers run as `outbound worker`
// processes, with extraFlags after the flags every worker of a test gets.
type cluster struct {
	*apptest.Cluster
	extraFlags []string
	env        []string // added to the next workers' environment
}

func newCluster(t *testing.T, partitions int) *cluster {
	return &cluster{Cluster: apptest.NewCluster(t, partitions)}
}

type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	log    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startWorker runs `outbound worker` as a child process.
func (c *cluster) startWorker(name string) *proc {
	kafkaFlags, kafkaEnv := apptest.KafkaArgs(c.Brokers, c.Kafka)
	args := append(append(append([]string{"worker", "--group-id", c.Group,
		"--events-topic", c.Events, "--control-topic", c.Control, "--dlq-topic", c.DLQ, "--http-addr", "",
		"--time-scale", "43200", "--grace", "1h", "--session-timeout", "6s", "--request-timeout", "2s",
		"--allow-private-targets", "--shutdown-timeout", "20s",
	}, kafkaFlags...), c.RedisFlags()...), c.extraFlags...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), kafkaEnv...), c.env...)
	p := &proc{cmd: cmd, exited: make(chan struct{}), log: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		c.T.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	c.T.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
		if c.T.Failed() {
			c.T.Logf("--- log of %s:\n%s", name, tail(p.log.String(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestCrashAndRebalanceLoseNothing runs three workers in one group while events
// flow; one is killed with SIGKILL and restarted, another stopped for good. Every
// message must be delivered, none in two different bundles. Three rounds: the
// outcome must not depend on timing.
func TestCrashAndRebalanceLoseNothing(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round+1), func(t *testing.T) {
			c := newCluster(t, 6)
			recv := apptest.NewReceiver(t)
			c.Publish(apptest.Configure("ws_none", recv.Srv.URL+"/ws_none", "none"),
				apptest.Configure("ws_1h", recv.Srv.URL+"/ws_1h", "1h"),
				apptest.Configure("ws_24h", recv.Srv.URL+"/ws_24h", "24h"))
			workers := []*proc{c.startWorker("w1"), c.startWorker("w2"), c.startWorker("w3")}

			w := c.Writer()
			defer w.Close()
			start := time.Now()
			const total = 3000
			want := map[string]bool{}
			for i := range total {
				ws := []string{"ws_none", "ws_1h", "ws_24h"}[i%3]
				chat := fmt.Sprintf("%s-chat-%02d", ws, (i/3)%20)
				id := fmt.Sprintf("r%d-m%05d", round, i)
				want[id] = true
				if err := w.WriteMessages(context.Background(), apptest.Event(ws, chat, id, time.Now())); err != nil {
					t.Fatal(err)
				}
				switch i {
				case total / 4:
					workers[0].cmd.Process.Kill() // SIGKILL: no commit, no goodbye
					<-workers[0].exited
				case total / 2:
					workers[0] = c.startWorker("w1-restarted")
				case 3 * total / 4:
					workers[1].cmd.Process.Signal(syscall.SIGTERM) // leaves for good
				}
				time.Sleep(2 * time.Millisecond)
			}
			produced := time.Now()
			testenv.Eventually(t, "every message delivered", 120*time.Second, func() bool { return len(recv.Unique()) >= total })
			delivered := time.Now()
			time.Sleep(3 * time.Second) // the last 24h windows close; duplicates would show now
			count := recv.Unique()
			var missing, twice []string
			for id := range want {
				switch count[id] {
				case 0:
					missing = append(missing, id)
				case 1:
				default:
					twice = append(twice, id)
				}
			}
			if len(missing) > 0 || len(twice) > 0 || len(count) != total {
				t.Fatalf("%d missing %v, %d in two bundles %v, %d distinct delivered of %d", len(missing), first(missing), len(twice), first(twice), len(count), total)
			}
			t.Logf("round %d: %d messages in %d deliveries; produced in %s, all delivered %s later",
				round+1, total, len(recv.Snapshot()), produced.Sub(start).Round(time.Millisecond), delivered.Sub(produced).Round(time.Millisecond))
		})
	}
}

func first(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

// TestGracefulShutdownFinishesInFlightDeliveries: SIGTERM while a delivery is in
// flight lets it finish and be acknowledged before the worker exits 0, so the
// worker that takes over does not deliver it again.
func TestGracefulShutdownFinishesInFlightDeliveries(t *testing.T) {
	c := newCluster(t, 1)
	recv := apptest.NewReceiver(t)
	started := make(chan struct{}, 10)
	var slow sync.Once
	recv.Status = func(string) int {
		started <- struct{}{}
		slow.Do(func() { time.Sleep(1500 * time.Millisecond) }) // only the first request is slow (the tests' request timeout is 2s)
		return http.StatusOK
	}
	c.Publish(apptest.Configure("ws", recv.Srv.URL+"/ws", "none"))
	first := c.startWorker("first")
	w := c.Writer()
	defer w.Close()
	if err := w.WriteMessages(context.Background(), apptest.Event("ws", "chat", "in-flight", time.Now())); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the delivery never started")
	}
	first.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-first.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not exit within 30s of SIGTERM")
	}
	if code := first.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("worker exited with %d, want 0:\n%s", code, tail(first.log.String(), 3000))
	}
	if n := len(recv.Snapshot()); n != 1 {
		t.Fatalf("the in-flight delivery did not complete before exit (%d recorded)", n)
	}
	c.startWorker("successor")
	if err := w.WriteMessages(context.Background(), apptest.Event("ws", "chat", "after", time.Now())); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the successor's delivery", 60*time.Second, func() bool { return len(recv.Snapshot()) >= 2 })
	time.Sleep(time.Second)
	if got := recv.Unique(); got["in-flight"] != 1 || len(recv.Snapshot()) != 2 {
		t.Fatalf("deliveries after the takeover: %v in %d calls; the in-flight one must not come again", got, len(recv.Snapshot()))
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
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
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building outbound for the end-to-end tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// receiver is a webhook endpoint that records every delivery.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	// deliveries in arrival order
	deliveries []delivery
	status     func(ws string) int
}

type delivery struct {
	workspace string
	id        string // webhook-id
	chat      string
	messages  []string
	body      []byte
	header    http.Header
	at        time.Time
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: func(string) int { return http.StatusOK }}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ws := strings.TrimPrefix(req.URL.Path, "/")
		d := delivery{workspace: ws, id: req.Header.Get("webhook-id"), body: body, header: req.Header.Clone(), at: time.Now()}
		var p struct {
			Chat     schemas.Chat      `json:"chat"`
			Message  *schemas.Message  `json:"message"`
			Messages []schemas.Message `json:"messages"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("receiver: undecodable payload: %v", err)
		}
		d.chat = p.Chat.ChatID
		if p.Message != nil {
			d.messages = []string{p.Message.MessageID}
		}
		for _, m := range p.Messages {
			d.messages = append(d.messages, m.MessageID)
		}
		code := r.status(ws)
		if code/100 == 2 {
			r.mu.Lock()
			r.deliveries = append(r.deliveries, d)
			r.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) snapshot() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.deliveries...)
}

// unique counts messages over distinct webhook-ids: redelivering a bundle with
// the same id is at-least-once and fine; a message in two different bundles is a
// duplicate.
func (r *receiver) unique() map[string]int {
	seen := map[string]bool{}
	count := map[string]int{}
	for _, d := range r.snapshot() {
		if seen[d.id] {
			continue
		}
		seen[d.id] = true
		for _, m := range d.messages {
			count[m]++
		}
	}
	return count
}

// cluster is a set of topics, a Redis database and the flags every worker of
// one test shares.
type cluster struct {
	t                     *testing.T
	brokers               []string
	events, controlT, dlq string
	redisURL, group       string
	extraFlags            []string
}

func newCluster(t *testing.T, partitions int) *cluster {
	return &cluster{
		t: t, brokers: testenv.KafkaBrokers(t),
		events: testenv.NewTopic(t, partitions), controlT: testenv.NewTopic(t, 3), dlq: testenv.NewTopic(t, 1),
		redisURL: testenv.RedisURL(t), group: fmt.Sprintf("e2e-%d", time.Now().UnixNano()),
	}
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
	args := append([]string{"worker",
		"--kafka-brokers", strings.Join(c.brokers, ","), "--redis-url", c.redisURL, "--group-id", c.group,
		"--events-topic", c.events, "--control-topic", c.controlT, "--dlq-topic", c.dlq, "--http-addr", "",
		"--time-scale", "43200", "--grace", "1h", "--session-timeout", "6s", "--request-timeout", "2s",
		"--allow-private-targets", "--shutdown-timeout", "20s",
	}, c.extraFlags...)
	cmd := exec.Command(binary, args...)
	p := &proc{cmd: cmd, exited: make(chan struct{}), log: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	c.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
		if c.t.Failed() {
			c.t.Logf("--- log of %s:\n%s", name, tail(p.log.String(), 4000))
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

func (c *cluster) publish(msgs ...schemas.ControlMessage) {
	c.t.Helper()
	pub, err := control.NewPublisher(control.PublisherConfig{Brokers: c.brokers, Topic: c.controlT})
	if err != nil {
		c.t.Fatal(err)
	}
	defer pub.Close()
	for _, m := range msgs {
		if err := pub.Publish(context.Background(), m); err != nil {
			c.t.Fatal(err)
		}
	}
}

func configure(ws, url, granularity string) schemas.ControlMessage {
	on := true
	return schemas.ControlMessage{Type: schemas.TypeConfigure, WorkspaceID: ws, URL: url, Granularity: granularity,
		Enabled: &on, OwnerEmail: "owner+" + ws + "@example.com"}
}

func testEvent(ws, chat, id string, at time.Time) kafka.Message {
	ev := schemas.Event{
		WorkspaceID:     ws,
		WhatsAppAccount: schemas.Account{FullName: "Amnon Haha", Email: "amnon@acme.com", Phone: "+972500000000"},
		Chat:            schemas.Chat{ChatID: chat, FullName: "Chat " + chat, ChatURL: "https://app.timelines.ai/chat/" + chat + "/messages/"},
		Message: schemas.EventMessage{MessageID: id, Direction: "sent", Timestamp: schemas.Timestamp{Time: at},
			Sender: schemas.Party{FullName: "John Doe"}, Recipient: schemas.Party{FullName: "Jane Smith"}, Text: "hello " + id},
	}
	b, _ := json.Marshal(ev)
	return kafka.Message{Key: []byte(chat), Value: b}
}

func (c *cluster) writer() *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(c.brokers...), Topic: c.events, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
}

// TestCrashAndRebalanceLoseNothing runs three workers in one group while events
// flow; one is killed with SIGKILL and restarted, another stopped for good. Every
// message must be delivered, none in two different bundles. Three rounds: the
// outcome must not depend on timing.
func TestCrashAndRebalanceLoseNothing(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round+1), func(t *testing.T) {
			c := newCluster(t, 6)
			recv := newReceiver(t)
			c.publish(configure("ws_none", recv.srv.URL+"/ws_none", "none"),
				configure("ws_1h", recv.srv.URL+"/ws_1h", "1h"),
				configure("ws_24h", recv.srv.URL+"/ws_24h", "24h"))
			workers := []*proc{c.startWorker("w1"), c.startWorker("w2"), c.startWorker("w3")}

			w := c.writer()
			defer w.Close()
			start := time.Now()
			const total = 3000
			want := map[string]bool{}
			for i := range total {
				ws := []string{"ws_none", "ws_1h", "ws_24h"}[i%3]
				chat := fmt.Sprintf("%s-chat-%02d", ws, (i/3)%20)
				id := fmt.Sprintf("r%d-m%05d", round, i)
				want[id] = true
				if err := w.WriteMessages(context.Background(), testEvent(ws, chat, id, time.Now())); err != nil {
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
			testenv.Eventually(t, "every message delivered", 120*time.Second, func() bool { return len(recv.unique()) >= total })
			delivered := time.Now()
			time.Sleep(3 * time.Second) // the last 24h windows close; duplicates would show now
			count := recv.unique()
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
				round+1, total, len(recv.snapshot()), produced.Sub(start).Round(time.Millisecond), delivered.Sub(produced).Round(time.Millisecond))
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
	recv := newReceiver(t)
	started := make(chan struct{}, 10)
	var slow sync.Once
	recv.status = func(string) int {
		started <- struct{}{}
		slow.Do(func() { time.Sleep(1500 * time.Millisecond) }) // only the first request is slow (the tests' request timeout is 2s)
		return http.StatusOK
	}
	c.publish(configure("ws", recv.srv.URL+"/ws", "none"))
	first := c.startWorker("first")
	w := c.writer()
	defer w.Close()
	if err := w.WriteMessages(context.Background(), testEvent("ws", "chat", "in-flight", time.Now())); err != nil {
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
	if n := len(recv.snapshot()); n != 1 {
		t.Fatalf("the in-flight delivery did not complete before exit (%d recorded)", n)
	}
	c.startWorker("successor")
	if err := w.WriteMessages(context.Background(), testEvent("ws", "chat", "after", time.Now())); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the successor's delivery", 60*time.Second, func() bool { return len(recv.snapshot()) >= 2 })
	time.Sleep(time.Second)
	if got := recv.unique(); got["in-flight"] != 1 || len(recv.snapshot()) != 2 {
		t.Fatalf("deliveries after the takeover: %v in %d calls; the in-flight one must not come again", got, len(recv.snapshot()))
	}
}

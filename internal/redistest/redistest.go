// Package redistest runs redis-server processes of one test's own: for tests
// that stop, pause or restart Redis, or need Sentinel, which the servers that
// scripts/with-services shares between tests must never be. Debian's
// redis-server must be on PATH (scripts/redis.sh install); it also runs
// Sentinel (redis-server --sentinel), so no other package is needed.
package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/childproc"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
)

// startTimeout bounds how long a server may take to answer PING, and a
// cluster to reach cluster_state:ok.
const startTimeout = 30 * time.Second

// Server is one redis-server (or Sentinel) process, killed at the test's
// cleanup. Restart starts it again on the same port and directory, so that
// it reloads its AOF.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	argv []string
	proc *childproc.Process
}

// Start runs redis-server on a free loopback port in a directory of its own
// with args added (for example "--appendonly", "yes"), and waits until it
// answers PING.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, func(port int, dir string) []string {
		return append([]string{"redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--save", "", "--logfile", filepath.Join(dir, "redis.log")}, args...)
	})
}

func start(t testing.TB, argv func(port int, dir string) []string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: run scripts/redis.sh install (or apt-get install redis-server)")
	}
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Port: port, dir: t.TempDir()}
	s.argv = argv(s.Port, s.dir)
	// Registered before the start, so that a server that never answers is
	// killed too.
	t.Cleanup(func() {
		if s.proc != nil {
			s.proc.Kill() // also ends a paused process
		}
	})
	s.launch()
	return s
}

// Dir is the server's data directory (its AOF is in Dir()/appendonlydir).
func (s *Server) Dir() string { return s.dir }

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Client returns a client of this node alone, closed at cleanup.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) launch() {
	s.t.Helper()
	p, err := childproc.Start(s.argv[0], filepath.Join(s.dir, "stdout.log"), s.argv...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.proc = p
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	s.waitFor("PING", func(ctx context.Context) error {
		if err := c.Ping(ctx).Err(); err != nil && !strings.HasPrefix(err.Error(), "NOAUTH") {
			return err // NOAUTH: up, and asking for the password it was started with
		}
		return nil
	})
}

// waitFor polls check until it succeeds or the server exits or startTimeout
// passes, failing the test with the server's log then.
func (s *Server) waitFor(what string, check func(context.Context) error) {
	s.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.proc.Done():
			s.t.Fatalf("redis on port %d exited before %s: %v\n%s", s.Port, what, err, s.log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis on port %d: no %s within %s: %v\n%s", s.Port, what, startTimeout, err, s.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) log() string {
	var b strings.Builder
	for _, name := range []string{"redis.log", "stdout.log"} {
		data, _ := os.ReadFile(filepath.Join(s.dir, name))
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		b.Write(data)
	}
	return b.String()
}

// Stop ends the server with SIGTERM, as an orderly shutdown does, and waits.
func (s *Server) Stop() {
	// An exit status is no failure here; ignoring SIGTERM is.
	if err := s.proc.Stop(startTimeout); err != nil && err != s.proc.Err() {
		s.t.Fatalf("redis on port %d: %v", s.Port, err)
	}
}

// Kill ends the server with SIGKILL, as a crash does, and waits.
func (s *Server) Kill() { s.proc.Kill() }

// Restart starts a stopped or killed server again, with its data directory,
// and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.launch()
}

// Pause freezes the process (SIGSTOP): its port accepts connections that
// nobody answers, as a hung or partitioned node does. Resume thaws it.
func (s *Server) Pause()  { s.proc.Signal(syscall.SIGSTOP) }
func (s *Server) Resume() { s.proc.Signal(syscall.SIGCONT) }

// StartCluster runs masters redis-servers in cluster mode, with AOF on and
// args added, creates a cluster of them (no replicas) and waits until every
// node reports cluster_state:ok. It returns the masters and a cluster URL of
// them, in go-redis's ParseClusterURL form.
func StartCluster(t testing.TB, masters int, args ...string) ([]*Server, string) {
	t.Helper()
	return startCluster(t, masters, 0, args)
}

// StartReplicatedCluster is StartCluster with one replica per master
// (asynchronous replication, as in production), and waits until every
// replication link is up. It returns all nodes, masters first as created.
func StartReplicatedCluster(t testing.TB, masters int, args ...string) ([]*Server, string) {
	t.Helper()
	nodes, url := startCluster(t, masters, 1, args)
	for _, n := range nodes {
		n.waitReplicating()
	}
	return nodes, url
}

func startCluster(t testing.TB, masters, replicas int, args []string) ([]*Server, string) {
	t.Helper()
	nodes := make([]*Server, masters*(1+replicas))
	addrs := make([]string, len(nodes))
	for i := range nodes {
		bus, err := childproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = Start(t, append([]string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000", "--appendonly", "yes"}, args...)...)
		addrs[i] = nodes[i].Addr()
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		n.WaitClusterOK()
	}
	return nodes, redisconn.ClusterURL(addrs)
}

// waitReplicating waits until a master has its replica connected, or a
// replica its link to the master up.
func (s *Server) waitReplicating() {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	s.waitFor("replication", func(ctx context.Context) error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "connected_slaves:1") && !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("no replication link yet")
		}
		return nil
	})
}

// WaitClusterOK waits until the node reports cluster_state:ok: it knows
// every slot served, by itself or by a peer.
func (s *Server) WaitClusterOK() {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	s.waitFor("cluster_state:ok", func(ctx context.Context) error {
		info, err := c.ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("not ok yet")
		}
		return nil
	})
}

// StartSentinel runs a Sentinel that monitors master under name, with
// authPass the master's password (empty: none), and waits until it names
// the master. A single Sentinel with quorum 1: enough to route clients.
func StartSentinel(t testing.TB, master *Server, name, authPass string) *Server {
	t.Helper()
	s := start(t, func(port int, dir string) []string {
		conf := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\nlogfile %s\nsentinel monitor %s 127.0.0.1 %d 1\n",
			port, dir, filepath.Join(dir, "redis.log"), name, master.Port)
		if authPass != "" {
			conf += fmt.Sprintf("sentinel auth-pass %s %s\n", name, authPass)
		}
		path := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it: a file of its own
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"redis-server", path, "--sentinel"}
	})
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	s.waitFor("the master's address", func(ctx context.Context) error {
		return c.GetMasterAddrByName(ctx, name).Err()
	})
	return s
}

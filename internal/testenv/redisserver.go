package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server of the calling test alone, with AOF on (every
// write fsynced before it is acknowledged, no rewrites), that the test may kill
// and start again on the same port and directory: for tests of what happens when
// Redis loses data. It is stopped at cleanup.
type RedisServer struct {
	t    testing.TB
	Dir  string // its working directory; the AOF is in Dir/appendonlydir
	Port int
	args []string
	proc *os.Process
	done chan struct{}
}

// StartRedisServer starts a private redis-server with extra arguments added to
// its command line, and waits until it answers.
func StartRedisServer(t testing.TB, extra ...string) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: run scripts/redis.sh install (or apt-get install redis-server)")
	}
	r := &RedisServer{t: t, Dir: t.TempDir(), Port: freePort(t)}
	r.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port), "--dir", r.Dir,
		"--appendonly", "yes", "--appendfsync", "always", "--auto-aof-rewrite-percentage", "0", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(r.Dir, "redis.log")}, extra...)
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Addr is the server's host:port.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// Start starts the server (again) and waits until it answers PING, which it
// does only once its AOF is loaded.
func (r *RedisServer) Start() {
	r.t.Helper()
	cmd := exec.Command("redis-server", r.args...)
	// Should the test binary die, its servers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	r.proc, r.done = cmd.Process, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(r.done)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer c.Close()
	Eventually(r.t, "redis-server on "+r.Addr()+" to answer PING (log: "+filepath.Join(r.Dir, "redis.log")+")", serviceTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

// Kill ends the server with SIGKILL, as a crash would, and waits for its exit.
func (r *RedisServer) Kill() {
	if r.proc == nil {
		return
	}
	_ = r.proc.Kill()
	<-r.done
	r.proc = nil
}

// Signal sends sig to the running server (SIGSTOP freezes it, SIGCONT thaws it).
func (r *RedisServer) Signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.proc.Signal(sig); err != nil {
		r.t.Fatalf("signalling redis-server on %s: %v", r.Addr(), err)
	}
}

// StartRedisCluster starts a private Redis Cluster of masters, each with one
// replica, all RedisServers of the calling test, and waits until every node
// reports cluster_state:ok. Replication is asynchronous, as in production.
func StartRedisCluster(t testing.TB, masters int) []*RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli not found: run scripts/redis.sh install (or apt-get install redis-tools)")
	}
	nodes := make([]*RedisServer, 2*masters)
	addrs := make([]string, len(nodes))
	for i := range nodes {
		// The bus port is given: the default (port + 10000) may not exist.
		nodes[i] = StartRedisServer(t, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(freePort(t)),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		addrs[i] = nodes[i].Addr()
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "1", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		Eventually(t, "cluster_state:ok on "+n.Addr()+", its replication link up", serviceTimeout, func() bool {
			ctx := context.Background()
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			repl, err := c.Info(ctx, "replication").Result()
			return err == nil && (strings.Contains(repl, "connected_slaves:1") || strings.Contains(repl, "master_link_status:up"))
		})
		_ = c.Close()
	}
	return nodes
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

package app

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/redistest"
	"github.com/outbound-webhooks/outbound/internal/smtptest"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
)

// scriptDirs hold every Lua script the worker runs, relative to this package.
var scriptDirs = []string{"../../windowing/lua", "../../sink/lua", "../../control/lua", "../../internal/webhooklog"}

// TestEveryScriptDeclaresItsKeysInOneSlot runs a worker on a Redis Cluster of
// its own through every path that runs a script (ingest, seal, claim, ack,
// retry, drop, the sink's gate and result, the control apply, the log push,
// the notifier's claim and release), with MONITOR on every master. Redis
// itself only refuses keys of another slot; this test also catches a key a
// script builds or reads from data: every key that a command inside a script
// touches (as COMMAND GETKEYS names them) must be one the call passed in KEYS,
// and a call's KEYS must share one slot.
func TestEveryScriptDeclaresItsKeysInOneSlot(t *testing.T) {
	scripts := loadScripts(t)
	nodes, url := redistest.StartCluster(t, 3)
	monitors := make([]string, len(nodes))
	for i, n := range nodes {
		monitors[i] = monitor(t, n)
	}

	c := apptest.NewCluster(t, 3)
	c.Redis = redisconn.Config{URL: url, Cluster: true}
	recv := apptest.NewReceiver(t)
	recv.FailFor("ws_bad")
	mail := smtptest.Start(t)
	mail.FailNext(1) // the notifier releases its claim, then sends again
	c.Publish(apptest.Configure("ws_none", recv.Srv.URL+"/ws_none", "none"),
		apptest.Configure("ws_1h", recv.Srv.URL+"/ws_1h", "1h"),
		apptest.Configure("ws_bad", recv.Srv.URL+"/ws_bad", "none"),
		apptest.Configure("ws_24h", recv.Srv.URL+"/ws_24h", "24h"))
	w, err := New(Config{Brokers: c.Brokers, Kafka: c.Kafka, Redis: c.Redis, RedisKeyPrefix: c.KeyPrefix, GroupID: c.Group,
		EventsTopic: c.Events, ControlTopic: c.Control, DLQTopic: c.DLQ, AllowPrivate: true,
		SessionTimeout: 6 * time.Second, TimeScale: 3600, SMTPURL: mail.URL()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	apptest.RunUntilCleanup(t, "worker", w.Run)

	wr := c.Writer()
	defer wr.Close()
	ctx := context.Background()
	now := time.Now()
	for i, ws := range []string{"ws_none", "ws_1h", "ws_bad", "ws_24h"} {
		for j := range 3 {
			if err := wr.WriteMessages(ctx, apptest.Event(ws, fmt.Sprint("chat-", j), fmt.Sprint("m", i, j), now)); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.Eventually(t, "deliveries of ws_none and ws_1h", 60*time.Second, func() bool {
		n := map[string]int{}
		for _, d := range recv.Snapshot() {
			n[d.Workspace] += len(d.Messages)
		}
		return n["ws_none"] == 3 && n["ws_1h"] == 3
	})
	c.Publish(schemas.ControlMessage{Type: schemas.TypeDisable, WorkspaceID: "ws_24h"}) // drops its open windows
	testenv.Eventually(t, "the auto-disable email of ws_bad", 60*time.Second, func() bool { return len(mail.Messages()) == 1 })
	testenv.Eventually(t, "every script to run", 30*time.Second, func() bool {
		seen := map[string]bool{}
		for _, m := range monitors {
			for _, e := range readEvals(t, m) {
				seen[scripts[e.sha]] = true
			}
		}
		for _, name := range scripts {
			if !seen[name] {
				return false
			}
		}
		return true
	})

	admin := redis.NewClient(&redis.Options{Addr: nodes[0].Addr()})
	defer admin.Close()
	slots := map[string]int64{}
	slotOf := func(key string) int64 {
		if s, ok := slots[key]; ok {
			return s
		}
		s, err := admin.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[key] = s
		return s
	}
	reported := map[string]bool{}
	report := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !reported[msg] {
			reported[msg] = true
			t.Error(msg)
		}
	}
	for _, m := range monitors {
		for _, e := range readEvals(t, m) {
			name := scripts[e.sha]
			if name == "" {
				report("a script that is in none of %v ran: %s", scriptDirs, e.sha)
				continue
			}
			declared := map[string]bool{}
			for _, k := range e.keys {
				declared[k] = true
				if slotOf(k) != slotOf(e.keys[0]) {
					report("%s: KEYS %q and %q are in different slots", name, e.keys[0], k)
				}
			}
			for _, cmd := range e.calls {
				keys, err := admin.CommandGetKeys(ctx, toAny(cmd)...).Result()
				if err != nil { // a command without keys
					continue
				}
				for _, k := range keys {
					if !declared[k] {
						report("%s: %s touches %q, which is not in its KEYS", name, cmd[0], k)
					}
				}
			}
		}
	}
}

// loadScripts returns the scripts' names by the SHA1 that EVALSHA names them
// by. A *.prelude.lua file is no script of its own: a package may prepend it
// to any script of its directory, so each script is known with and without it.
func loadScripts(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	read := func(f string) string {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(src)
	}
	for _, dir := range scriptDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.lua"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no scripts in %s: %v", dir, err)
		}
		preludes := []string{""}
		for _, f := range files {
			if strings.HasSuffix(f, ".prelude.lua") {
				preludes = append(preludes, read(f))
			}
		}
		for _, f := range files {
			if strings.HasSuffix(f, ".prelude.lua") {
				continue
			}
			for _, p := range preludes {
				sum := sha1.Sum([]byte(p + read(f)))
				out[hex.EncodeToString(sum[:])] = strings.TrimPrefix(f, "../../")
			}
		}
	}
	return out
}

// monitor runs redis-cli MONITOR on node until the test ends, into a file
// whose path it returns once the monitor is on.
func monitor(t *testing.T, node *redistest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "monitor.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-cli", "-p", strconv.Itoa(node.Port), "monitor")
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); f.Close() })
	testenv.Eventually(t, "MONITOR to answer OK", 10*time.Second, func() bool {
		b, _ := os.ReadFile(path)
		return strings.HasPrefix(string(b), "OK")
	})
	return path
}

// eval is one script call as MONITOR shows it: the EVALSHA (or EVAL) line,
// then the commands the script ran, marked [db lua].
type eval struct {
	sha   string
	keys  []string
	calls [][]string
}

func readEvals(t *testing.T, path string) []eval {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []eval
	var cur *eval
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Text()
		open := strings.Index(line, " [")
		end := strings.Index(line, "] ")
		if open < 0 || end < open {
			continue
		}
		lua := strings.HasSuffix(line[open+2:end], " lua")
		args, ok := monitorArgs(line[end+2:])
		if !ok || len(args) == 0 {
			continue // a line cut short while the monitor writes
		}
		if lua {
			if cur != nil {
				cur.calls = append(cur.calls, args)
			}
			continue
		}
		cur = nil
		switch name := strings.ToUpper(args[0]); name {
		case "EVALSHA", "EVALSHA_RO", "EVAL", "EVAL_RO":
			if len(args) < 3 {
				continue
			}
			n, _ := strconv.Atoi(args[2])
			sha := args[1]
			if strings.HasPrefix(name, "EVAL") && !strings.HasPrefix(name, "EVALSHA") {
				sum := sha1.Sum([]byte(args[1]))
				sha = hex.EncodeToString(sum[:])
			}
			out = append(out, eval{sha: strings.ToLower(sha), keys: args[3:min(3+n, len(args))]})
			cur = &out[len(out)-1]
		}
	}
	return out
}

// monitorArgs splits MONITOR's quoted, escaped arguments ("SET" "k\x00").
func monitorArgs(s string) ([]string, bool) {
	var args []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] != '"' {
			return nil, false
		}
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' {
				i++
			}
		}
		if i >= len(s) {
			return nil, false
		}
		a, err := strconv.Unquote(s[:i+1])
		if err != nil {
			return nil, false
		}
		args = append(args, a)
		s = s[i+1:]
	}
	return args, true
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/app"
	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
)

// TestCtlRoundTrip runs `outbound ctl` for every control message type against a
// real control topic, reads each message back, lets a real control.Reader
// materialise it in Redis, and checks what `ctl status` and `ctl requests`
// make of that state.
func TestCtlRoundTrip(t *testing.T) {
	const (
		ws     = "ws_ctl"
		secret = "whsec_Y3RsLXNlY3JldC1uZXZlci1wcmludGVk"
	)
	k := testenv.Kafka(t)
	topic := testenv.NewTopic(t, 1)
	// The Redis a worker would write; on the cluster, under a prefix of its own.
	rc, prefix := testenv.RedisConfig(t), testenv.KeyPrefix()
	rdb, err := redisconn.Open(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	keys := control.Keys(prefix)
	logs := webhooklog.New(rdb, prefix)
	reader, err := control.NewReader(control.ReaderConfig{Brokers: k.Brokers, Kafka: k.Conn, Topic: topic, Redis: rdb, Keys: keys,
		Registry: control.NewRegistry(), Activity: logs, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	apptest.RunUntilCleanup(t, "control reader", reader.Run)

	back := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers, Dialer: k.Conn.Dialer(), Topic: topic, Partition: 0,
		MaxWait: 500 * time.Millisecond})
	t.Cleanup(func() { back.Close() })
	kafkaFlags, kafkaEnv := apptest.KafkaArgs(k.Brokers, k.Config)
	publishFlags := append(kafkaFlags, "--control-topic", topic)
	ctx := context.Background()

	status := func(t *testing.T, extra ...string) (string, string, int) {
		t.Helper()
		// status finds Redis by the environment, requests by flags.
		env := []string{"OUTBOUND_REDIS_URL=" + rc.URL, "OUTBOUND_REDIS_CLUSTER=" + strconv.FormatBool(rc.Cluster),
			"OUTBOUND_REDIS_KEY_PREFIX=" + prefix}
		return runCLI(t, nil, env, append([]string{"ctl", "status", "--workspace", ws}, extra...)...)
	}
	steps := []struct {
		name  string
		args  []string
		check func(t *testing.T, m schemas.ControlMessage)
		// then runs once the Reader has materialised the message.
		then func(t *testing.T)
	}{
		{
			name: "configure",
			args: []string{"configure", "--workspace", ws, "--url", "https://receiver.example/hook", "--granularity", "1h",
				"--owner-email", "owner@example.com", "--secret", secret, "--disabled"},
			check: func(t *testing.T, m schemas.ControlMessage) {
				if m.URL != "https://receiver.example/hook" || m.Granularity != "1h" || m.OwnerEmail != "owner@example.com" ||
					m.Secret != secret || m.Enabled == nil || *m.Enabled {
					t.Errorf("configure message = %+v", m)
				}
			},
			then: func(t *testing.T) {
				out, errOut, code := status(t)
				if code != 0 {
					t.Fatalf("ctl status: exit %d: %s", code, errOut)
				}
				for _, want := range []string{"workspace:", ws, "disabled: disabled by configuration", "https://receiver.example/hook",
					"1h", "owner@example.com", "<redacted>", "consecutive errors:", "configured", "granularity 1h"} {
					if !strings.Contains(out, want) {
						t.Errorf("status lacks %q:\n%s", want, out)
					}
				}
				if strings.Contains(out, secret) {
					t.Errorf("status prints the secret:\n%s", out)
				}
			},
		},
		{
			name: "enable",
			args: []string{"enable", "--workspace", ws},
			then: func(t *testing.T) {
				out, errOut, code := status(t)
				if code != 0 {
					t.Fatalf("ctl status: exit %d: %s", code, errOut)
				}
				if !regexp.MustCompile(`(?m)^state:\s+enabled$`).MatchString(out) {
					t.Errorf("status does not say enabled:\n%s", out)
				}
			},
		},
		{
			name: "disable",
			args: []string{"disable", "--workspace", ws, "--reason", "maintenance window"},
			check: func(t *testing.T, m schemas.ControlMessage) {
				if m.Reason != "maintenance window" {
					t.Errorf("reason = %q", m.Reason)
				}
			},
			then: func(t *testing.T) {
				wh, ok, err := control.LoadWebhook(ctx, rdb, keys, ws)
				if err != nil || !ok {
					t.Fatalf("LoadWebhook: %v, %v", ok, err)
				}
				if err := rdb.HSet(ctx, sink.HealthKey(prefix, ws, wh.Epoch), "errors", 4).Err(); err != nil {
					t.Fatal(err)
				}
				out, errOut, code := status(t, "--json")
				if code != 0 {
					t.Fatalf("ctl status --json: exit %d: %s", code, errOut)
				}
				var st app.WebhookStatus
				if err := json.Unmarshal([]byte(out), &st); err != nil {
					t.Fatalf("ctl status --json printed no JSON: %v\n%s", err, out)
				}
				if st.Config.Enabled || st.DisabledReason != "maintenance window" || st.ConsecutiveErrors != 4 ||
					st.Config.Secret != "<redacted>" || len(st.Activity) != 3 || st.Activity[0].Action != webhooklog.ActionDisabled {
					t.Errorf("ctl status --json = %+v", st)
				}
				if strings.Contains(out, secret) {
					t.Errorf("status prints the secret:\n%s", out)
				}

				base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
				for i := range 3 {
					if err := logs.RecordRequest(ctx, ws, webhooklog.Request{At: base.Add(time.Duration(i) * time.Second),
						BundleID: fmt.Sprint("b", i), Method: http.MethodPost, URL: "https://receiver.example/hook",
						Response: &webhooklog.Response{Status: 502, Body: "bad gateway"}}); err != nil {
						t.Fatal(err)
					}
				}
				file := filepath.Join(t.TempDir(), "requests.json")
				out, errOut, code = runCLI(t, nil, nil, "ctl", "requests", "--workspace", ws, "--redis-url", rc.URL,
					"--redis-cluster="+strconv.FormatBool(rc.Cluster), "--redis-key-prefix", prefix, "-o", file)
				if code != 0 || !strings.Contains(out, "wrote 3 request(s)") {
					t.Fatalf("ctl requests -o: exit %d, stdout %q, stderr %s", code, out, errOut)
				}
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				var log webhooklog.RequestLog
				if err := json.Unmarshal(data, &log); err != nil {
					t.Fatalf("the file is not JSON: %v\n%s", err, data)
				}
				if log.Workspace != ws || len(log.Requests) != 3 || log.Requests[0].BundleID != "b2" || log.Requests[2].BundleID != "b0" ||
					log.Requests[0].Response == nil || log.Requests[0].Response.Status != 502 {
					t.Errorf("request log = %+v, want b2, b1, b0 with their responses", log)
				}
				if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("file mode = %v (%v), want 0600: it holds customer data", fi.Mode(), err)
				}
			},
		},
		{
			name: "delete",
			args: []string{"delete", "--workspace", ws},
			then: func(t *testing.T) {
				_, errOut, code := status(t)
				if code != 1 || !strings.Contains(errOut, `"ws_ctl" has no webhook`) {
					t.Errorf("ctl status after delete: exit %d, stderr %s; want 1 and no webhook", code, errOut)
				}
			},
		},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, nil, kafkaEnv, append(append([]string{"ctl"}, step.args...), publishFlags...)...)
			if code != 0 {
				t.Fatalf("ctl %s: exit %d\nstdout: %s\nstderr: %s", step.name, code, out, errOut)
			}
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			rec, err := back.ReadMessage(rctx)
			if err != nil {
				t.Fatalf("reading the message back: %v", err)
			}
			msg, err := schemas.DecodeControl(rec.Value)
			if err != nil {
				t.Fatalf("the published message is invalid: %v\n%s", err, rec.Value)
			}
			if msg.Type != "webhook."+step.name || msg.WorkspaceID != ws || string(rec.Key) != ws ||
				!strings.HasPrefix(msg.ID, "ctl_") || msg.At == nil {
				t.Errorf("message = %+v with key %q; want type webhook.%s, workspace and key %s, an id and a time", msg, rec.Key, step.name, ws)
			}
			if step.check != nil {
				step.check(t, msg)
			}
			testenv.Eventually(t, "the reader materialising the message", 20*time.Second, func() bool {
				st, err := control.LoadState(ctx, rdb, keys)
				return err == nil && st.Offsets[0] >= rec.Offset
			})
			step.then(t)
		})
	}
}

// TestCtlUsage checks ctl's command-line errors (exit status 2, a message
// naming the problem, nothing published) and that --help works everywhere.
func TestCtlUsage(t *testing.T) {
	// Nothing listens there: a case that got as far as publishing would fail
	// with exit status 1 instead of 2.
	noKafka := []string{"--kafka-brokers", "127.0.0.1:1"}
	configure := func(flags ...string) []string {
		args := []string{"ctl", "configure", "--workspace", "ws_1", "--url", "https://receiver.example/hook",
			"--granularity", "1h", "--owner-email", "owner@example.com"}
		return append(append(args, noKafka...), flags...)
	}
	cases := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // in stdout or stderr
	}{
		{"granularity 2h", configure("--granularity", "2h"), 2, []string{`--granularity: unknown granularity "2h"`, "none, 1h, 6h, 12h or 24h"}},
		{"no url", configure("--url", ""), 2, []string{"--url is required"}},
		{"ftp url", configure("--url", "ftp://receiver.example/"), 2, []string{"--url", "scheme must be http or https"}},
		{"url without host", configure("--url", "https:///path"), 2, []string{"--url", "no host"}},
		{"private url, refused by the SSRF guard", configure("--url", "http://10.1.2.3/hook"), 2, []string{"10.1.2.3", "private", "SSRF guard"}},
		{"redis port, refused by the port policy", configure("--url", "http://receiver.example:6379/hook", "--allow-private-targets"), 2, []string{"6379"}},
		{"bad port policy", configure("--allowed-target-ports", "80-x"), 2, []string{"allowed ports", `"x" is not a port`}},
		{"no owner email", configure("--owner-email", ""), 2, []string{"--owner-email is required"}},
		{"malformed secret, refused by the schema", configure("--secret", "whsec_not base64!"), 2, []string{"secret"}},
		{"no workspace", append([]string{"ctl", "enable"}, noKafka...), 2, []string{"--workspace is required"}},
		{"unknown flag", []string{"ctl", "disable", "--workspace", "ws_1", "--bogus"}, 2, []string{"flag provided but not defined: -bogus"}},
		{"stray argument", []string{"ctl", "delete", "--workspace", "ws_1", "extra"}, 2, []string{"unexpected arguments: extra"}},
		{"unknown command", []string{"ctl", "frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"no command", []string{"ctl"}, 2, []string{"missing command", "outbound ctl configure"}},
		{"bad redis url", []string{"ctl", "status", "--workspace", "ws_1", "--redis-url", "http://nope"}, 2, []string{"--redis-url"}},
		{"ctl --help", []string{"ctl", "--help"}, 0, []string{"outbound ctl requests"}},
		{"enable --help", []string{"ctl", "enable", "--help"}, 0, []string{"-workspace", "OUTBOUND_KAFKA_BROKERS"}},
		{"configure --help", []string{"ctl", "configure", "--help"}, 0, []string{"-granularity", "-owner-email", "OUTBOUND_SECRET"}},
		{"disable --help", []string{"ctl", "disable", "--help"}, 0, []string{"-reason"}},
		{"delete --help", []string{"ctl", "delete", "--help"}, 0, []string{"-workspace"}},
		{"status --help", []string{"ctl", "status", "--help"}, 0, []string{"-json", "OUTBOUND_REDIS_URL"}},
		{"requests --help", []string{"ctl", "requests", "--help"}, 0, []string{"-o "}},
		{"produce --help", []string{"produce", "--help"}, 0, []string{"-allow-invalid", "OUTBOUND_EVENTS_TOPIC"}},
		{"produce bad flag", []string{"produce", "--nope"}, 2, []string{"flag provided but not defined: -nope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, nil, nil, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			for _, s := range tc.want {
				if !strings.Contains(out+errOut, s) {
					t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", s, out, errOut)
				}
			}
		})
	}
}

var updateDocs = flag.Bool("update-docs", false, "rewrite the flags table of docs/operations.md from `outbound worker --help`")

// operationsDoc holds the worker's flags table between these markers.
const (
	operationsDoc   = "../../docs/operations.md"
	flagsTableBegin = "<!-- worker flags: generated by `go test ./cmd/outbound -run TestOperationsDocFlagsTable -update-docs` -->"
	flagsTableEnd   = "<!-- end of worker flags -->"
)

// TestOperationsDocFlagsTable keeps the flags table of docs/operations.md equal
// to what `outbound worker --help` prints; -update-docs rewrites it.
func TestOperationsDocFlagsTable(t *testing.T) {
	_, help, code := runCLI(t, nil, nil, "worker", "--help")
	if code != 0 {
		t.Fatalf("worker --help: exit %d\n%s", code, help)
	}
	table := flagsTable(t, help)
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := strings.Index(string(doc), flagsTableBegin), strings.Index(string(doc), flagsTableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s lacks the markers %q and %q", operationsDoc, flagsTableBegin, flagsTableEnd)
	}
	current := string(doc[begin+len(flagsTableBegin) : end])
	if current == table {
		return
	}
	if *updateDocs {
		updated := string(doc[:begin+len(flagsTableBegin)]) + table + string(doc[end:])
		if err := os.WriteFile(operationsDoc, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the flags table of %s is out of date; run with -update-docs. Want:%s", operationsDoc, table)
}

// flagsTable renders the flag package's help output as a Markdown table.
func flagsTable(t *testing.T, help string) string {
	t.Helper()
	usage := regexp.MustCompile(`^(.*) \(env (OUTBOUND_[A-Z0-9_]+)\)(?: \(default (.*)\))?$`)
	var b strings.Builder
	b.WriteString("\n| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n")
	lines := strings.Split(help, "\n")
	rows := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "  -"), " ")
		if i+1 >= len(lines) {
			t.Fatalf("flag %s has no usage line", name)
		}
		i++
		m := usage.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			t.Fatalf("usage of --%s does not name its environment variable: %q", name, lines[i])
		}
		// The flag package leaves out zero defaults: false, and "" of a string.
		def := "`false`"
		switch {
		case m[3] != "":
			v := m[3]
			if s, err := strconv.Unquote(v); err == nil {
				v = s
			}
			def = "`" + v + "`"
		case strings.Contains(line, " string"):
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", name, m[2], def, strings.ReplaceAll(m[1], "|", `\|`))
		rows++
	}
	if rows == 0 {
		t.Fatalf("no flags in the help output:\n%s", help)
	}
	return b.String()
}

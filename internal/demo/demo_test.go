package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// TestDemoShort runs a short demo with its embedded Kafka, Redis, SMTP server
// and receiver, and checks the summary against what the generator's plan
// publishes.
func TestDemoShort(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "worker.log")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout bytes.Buffer
	start := time.Now()
	err := Run(ctx, Options{Short: true, LogFile: logFile}, &stdout)
	took := time.Since(start)
	out := stdout.String()
	if err != nil || t.Failed() {
		t.Logf("stdout:\n%s", out)
		if log, rerr := os.ReadFile(logFile); rerr == nil {
			t.Logf("worker log (end):\n%s", log[max(0, len(log)-4000):])
		}
	}
	if err != nil {
		t.Fatalf("demo failed after %s: %v", took, err)
	}
	t.Logf("demo --short took %s", took)

	plan := newPlan(true)
	want := plan.counts()
	failing := plan.failing()
	got := func(label string) int {
		t.Helper()
		m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(label) + ` +(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("summary has no %q line:\n%s", label, out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	for _, c := range []struct {
		label string
		want  int
	}{
		{"events in", want.Events},
		{"skipped", want.Attachments},
		{"dead-lettered", want.Malformed},
		{"disabled webhooks", len(failing)},
		{"owner emails", len(failing)},
	} {
		if n := got(c.label); n != c.want {
			t.Errorf("%s = %d, the generator's plan makes it %d", c.label, n, c.want)
		}
	}
	if n := got("deliveries"); n < want.MinDeliveries() {
		t.Errorf("deliveries = %d, fewer than the %d bundles and single messages the plan needs", n, want.MinDeliveries())
	}
	if b, s := got("  bundles"), got("  single messages"); b+s != got("deliveries") {
		t.Errorf("bundles %d + single messages %d != deliveries %d", b, s, got("deliveries"))
	}
	for _, ws := range failing {
		if !strings.Contains(out, "email to "+ws.owner) || !strings.Contains(out, "Subject: ") {
			t.Errorf("no email to %s, the owner of the failing webhook, in the output", ws.owner)
		}
		if !strings.Contains(out, "webhook.auto_disabled on webhooks.control: workspace "+ws.id) {
			t.Errorf("the auto-disable of %s was not printed", ws.id)
		}
	}
	if !strings.Contains(out, "dlq.reason: ") {
		t.Error("the dead-lettered record's reason was not printed")
	}
}

// TestDemoPlan checks that the traffic shows what the demo promises: direct and
// group chats, both directions, emoji, right-to-left text, one attachment, one
// malformed record, and a webhook of each kind.
func TestDemoPlan(t *testing.T) {
	for _, short := range []bool{true, false} {
		p := newPlan(short)
		c := p.counts()
		if c.Attachments != 1 || c.Malformed != 1 || c.ForFailing == 0 || len(c.deliverableIDs) == 0 {
			t.Errorf("short=%v: %d attachments, %d malformed, %d for the failing webhook, %d deliverable; want 1, 1, >0, >0",
				short, c.Attachments, c.Malformed, c.ForFailing, len(c.deliverableIDs))
		}
		kinds := map[string]bool{}
		for _, ws := range p.workspaces {
			switch {
			case ws.fails:
				kinds["failing"] = true
			default:
				kinds[ws.granularity] = true
			}
		}
		for _, k := range []string{"none", "1h", "failing"} {
			if !kinds[k] {
				t.Errorf("short=%v: no %s webhook", short, k)
			}
		}
		seen := map[string]bool{}
		for i, l := range p.lines {
			rec := p.record(0, i, time.Now(), false)
			if l.malformed != "" {
				continue
			}
			chat := p.chats[l.chat].chat
			if chat.IsGroup && chat.Phone != "" {
				t.Errorf("group chat %q has phone %q; group chats have none", chat.FullName, chat.Phone)
			}
			if string(rec.Key) != chat.ChatID {
				t.Errorf("record key %q, want the chat id %q", rec.Key, chat.ChatID)
			}
			seen["group="+strconv.FormatBool(chat.IsGroup)] = true
			seen[l.direction] = true
			for _, r := range l.text {
				switch {
				case unicode.Is(unicode.Hebrew, r) || unicode.Is(unicode.Arabic, r):
					seen["rtl"] = true
				case r >= 0x1F300:
					seen["emoji"] = true
				}
			}
		}
		for _, k := range []string{"group=true", "group=false", "sent", "received", "rtl", "emoji"} {
			if !seen[k] {
				t.Errorf("short=%v: the traffic has no %s message", short, k)
			}
		}
	}
}

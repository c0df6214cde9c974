package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestConfigDefaultsAndValidation needs no services: New rejects a bad Config
// before it builds or connects anything.
func TestConfigDefaultsAndValidation(t *testing.T) {
	def := Config{}.WithDefaults()
	if def.GroupID != "outbound" || def.EventsTopic != "chat.messages" || def.TimeScale != 1 ||
		def.Concurrency != 64 || def.PerWebhook != 4 || def.ShutdownTimeout != 30*time.Second {
		t.Errorf("WithDefaults() = %+v", def)
	}
	if set := (Config{GroupID: "g", Concurrency: 3}).WithDefaults(); set.GroupID != "g" || set.Concurrency != 3 {
		t.Errorf("WithDefaults replaced set fields: %+v", set)
	}

	_, err := New(Config{Redis: redisconn.Config{URL: "mysql://x"}, TimeScale: 0.5, PerWebhook: -1}, zap.NewNop())
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(bad config) = %v, want ErrInvalidConfig", err)
	}
	// Every problem at once, so that an operator fixes them in one go.
	for _, want := range []string{"Brokers", "Redis", "TimeScale", "PerWebhook"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad config) = %q, does not mention %s", err, want)
		}
	}
}

// The Redis password reaches the log neither from the URL nor from
// --redis-password-file: the log names the file, never its content.
func TestConfigLogShowsNoRedisPassword(t *testing.T) {
	const inURL, inFile = "url-pw-0a1b", "file-pw-2c3d"
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(inFile), 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	w, err := New(Config{Brokers: []string{"127.0.0.1:9092"},
		Redis: redisconn.Config{URL: "redis://:" + inURL + "@127.0.0.1:6379/0", PasswordFile: file}}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	w.rdb.Close()
	var all strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&all, "%s %v\n", e.Message, e.ContextMap())
	}
	if s := all.String(); strings.Contains(s, inURL) || strings.Contains(s, inFile) || !strings.Contains(s, file) {
		t.Errorf("the start log shows a Redis password or lacks the file's path:\n%s", s)
	}
}

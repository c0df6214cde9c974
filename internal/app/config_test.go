package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
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

	_, err := New(Config{RedisURL: "mysql://x", TimeScale: 0.5, PerWebhook: -1}, zap.NewNop())
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(bad config) = %v, want ErrInvalidConfig", err)
	}
	// Every problem at once, so that an operator fixes them in one go.
	for _, want := range []string{"Brokers", "RedisURL", "TimeScale", "PerWebhook"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad config) = %q, does not mention %s", err, want)
		}
	}
}

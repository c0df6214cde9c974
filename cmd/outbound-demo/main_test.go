package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/outbound-webhooks/outbound/internal/cli"
)

// TestDemoFlags checks that flags the demo could only fail on later are refused
// before anything starts.
func TestDemoFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"webhook URL not http", []string{"--webhook-url", "ftp://example.com/hook"}},
		{"webhook URL relative", []string{"--webhook-url", "/hook"}},
		{"bad Redis URL", []string{"--redis-url", "mysql://localhost"}},
		{"stray argument", []string{"now"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), c.args, &stdout, &stderr)
			if !errors.Is(err, cli.ErrUsage) {
				t.Fatalf("run(%q) = %v, want a usage error", c.args, err)
			}
			if stdout.Len() > 0 {
				t.Errorf("a usage error started the demo:\n%s", stdout.String())
			}
		})
	}
}

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
	for name, args := range map[string][]string{
		"webhook URL not http": {"--webhook-url", "ftp://example.com/hook"},
		"webhook URL relative": {"--webhook-url", "/hook"},
		"bad Redis URL":        {"--redis-url", "mysql://localhost"},
		"stray argument":       {"now"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, &stdout, &stderr)
			if !errors.Is(err, cli.ErrUsage) {
				t.Fatalf("run(%q) = %v, want a usage error", args, err)
			}
			if stdout.Len() > 0 {
				t.Errorf("a usage error started the demo:\n%s", stdout.String())
			}
		})
	}
}

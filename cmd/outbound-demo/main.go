// Command outbound-demo runs the whole product in one process, with nothing
// to install: an embedded Kafka broker and Redis, the real worker, a webhook
// receiver, a mail catcher and chat traffic (internal/demo). `make demo` runs it.
//
// It is a command of its own so that the worker binary links none of that.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/outbound-webhooks/outbound/internal/cli"
	"github.com/outbound-webhooks/outbound/internal/demo"
	"github.com/outbound-webhooks/outbound/internal/urls"
)

func main() {
	cli.Main(func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return cli.Status(stderr, "outbound-demo", run(ctx, args, stdout, stderr))
	})
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("outbound-demo", "outbound-demo: the whole product in one process, nothing to install.\n\n"+
		"It embeds a Kafka broker and (unless --redis-url) a Redis, runs the real worker against them,\n"+
		"publishes chat traffic for three webhooks and prints what every receiver gets.")
	fs.SetOutput(stderr)
	var opts demo.Options
	fs.BoolVar(&opts.Follow, "follow", false, "keep publishing traffic until Ctrl-C instead of ending after one run")
	fs.BoolVar(&opts.Short, "short", false, "a smaller run: two waves of traffic instead of four (for tests)")
	fs.StringVar(&opts.WebhookURL, "webhook-url", "", "deliver the healthy webhooks to this URL instead of the local receiver")
	opts.Redis.Register(fs, "", "use this Redis (an empty database) instead of the embedded one")
	fs.StringVar(&opts.PageAddr, "page-addr", "127.0.0.1:0", "where the workspace page listens (port 0: a free one)")
	fs.StringVar(&opts.LogFile, "log-file", "", "write the worker's logs here (default: a new file in the temporary directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := validate(opts); err != nil {
		return cli.UsageError(err)
	}
	return demo.Run(ctx, opts, stdout)
}

// validate refuses flags the demo could only fail on later, after it started
// its services.
func validate(opts demo.Options) error {
	var errs []error
	if opts.WebhookURL != "" {
		if err := urls.CheckHTTP(opts.WebhookURL); err != nil {
			errs = append(errs, fmt.Errorf("--webhook-url %s: %w", urls.Redact(opts.WebhookURL), err))
		}
	}
	if opts.Redis.URL != "" {
		if err := opts.Redis.Check(); err != nil {
			errs = append(errs, fmt.Errorf("--redis-url: %w", err))
		}
	}
	return errors.Join(errs...)
}

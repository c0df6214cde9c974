// Command outbound turns chat messages on Kafka into webhook deliveries.
//
//	outbound worker    run one member of the worker group
//	outbound ctl       configure, enable, disable, delete webhooks; read their state
//	outbound produce   publish chat.message.v1 events (JSON lines on stdin)
//
// It is the binary that runs in production, so it links no test or demo
// machinery: the demo is cmd/outbound-demo, the benchmark cmd/outbound-bench.
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/outbound-webhooks/outbound/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `outbound turns chat messages on Kafka into webhook deliveries.

Usage:
  outbound worker   [flags]   run one member of the worker group
  outbound ctl      <command> configure, enable, disable, delete webhooks; read their state
  outbound produce  [flags]   publish chat.message.v1 events read as JSON lines from stdin
  outbound version

Run "outbound <command> --help" for the flags of a command.`

func main() { cli.Main(run) }

// command is one subcommand: it returns an error to print, or nil.
type command func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	commands := map[string]command{
		"worker":  runWorker,
		"ctl":     runCtl,
		"produce": runProduce,
		"version": func(context.Context, []string, io.Reader, io.Writer, io.Writer) error {
			fmt.Fprintln(stdout, "outbound", version)
			return nil
		},
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprintln(stdout, usage)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "outbound: unknown command %q\n\n%s\n", name, usage)
		return 2
	}
	return cli.Status(stderr, "outbound "+name, cmd(ctx, args[1:], stdin, stdout, stderr))
}

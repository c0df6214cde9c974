package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// ErrUsage marks an error in the command line itself (exit status 2).
var ErrUsage = errors.New("usage")

// UsageError marks err as an error in the command line.
func UsageError(err error) error { return fmt.Errorf("%w: %w", ErrUsage, err) }

// Status prints err, prefixed with the command's name, and returns the exit
// status it means: 0 for none and for --help, 2 for a usage error, 1 otherwise.
func Status(stderr io.Writer, name string, err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}

// Main runs run on the process's arguments and standard streams, with a
// context that ends on SIGINT or SIGTERM so that a command can shut down in
// order, and exits with the status run returns.
func Main(run func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

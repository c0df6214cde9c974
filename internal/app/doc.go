// Package app builds the worker from a Config and runs it: the one place where
// processor, windowing, sink and control are wired together, with the worker's
// HTTP endpoints (admin API, /healthz, /readyz, /metrics).
//
// It reads no flags and no environment: `outbound worker` fills Config from its
// flags, the demo fills it directly, and both run the same pipeline. New
// validates the whole Config before anything connects; Run keeps the shutdown
// order (stop fetching, finish in-flight deliveries, commit, leave the group,
// close) and bounds it by Config.ShutdownTimeout.
//
// It sits above the stages and control and below the commands, and it is
// linked into the worker binary: it imports no test, demo or bench code
// (internal/layout holds that).
package app

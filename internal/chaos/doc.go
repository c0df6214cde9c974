// Package chaos runs real `outbound worker` processes against a real Kafka
// broker and a real redis-server while it kills, freezes and restarts them, and
// then checks, from what a webhook receiver recorded, that no message was lost,
// none was delivered in two bundles and every chat's messages arrived in order.
//
// The harness owns every process it runs, services included, because the faults
// are restarts: redis-server with AOF on (appendfsync always), and the broker
// through scripts/kafka.sh restart, which brings it back on the same port with
// its data. `make chaos` runs the full scenario (cmd/outbound-chaos); the test of
// this package runs a short one in every `make test`.
package chaos

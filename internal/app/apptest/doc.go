// Package apptest holds the fixtures of the tests that run whole workers, in
// process (internal/app) or as `outbound worker` processes (cmd/outbound): a
// cluster of fresh topics and a Redis database on the real services of
// internal/testenv, a webhook receiver that records every delivery, and
// events and control messages to feed them.
//
// Everything it makes belongs to the calling test and is removed at its
// cleanup.
package apptest

// Package faults names the moments where a crash is most dangerous, so that
// tests can crash the real worker binary at exactly one of them and prove that
// nothing is lost or duplicated.
//
// A normal build compiles Crash to nothing. A binary built with `-tags faults`
// reads OUTBOUND_FAULT=<point>[:<n>] at start and kills itself with SIGKILL
// the n-th time (default 1) it reaches that point: no deferred call runs, no
// offset is committed, no goodbye is said, as when the machine dies.
package faults

// Point is one dangerous moment in the pipeline.
type Point string

const (
	// AfterAppend: a batch is in Redis, its offsets are not committed.
	AfterAppend Point = "after-append"
	// AfterSeal: a bundle is claimed for delivery, nothing is posted yet.
	AfterSeal Point = "after-seal"
	// AfterPost: the receiver accepted the bundle, it is not acknowledged.
	AfterPost Point = "after-post"
	// AfterAlertClaim: a webhook was auto-disabled and its alert claimed, the
	// webhook.auto_disabled event is not published.
	AfterAlertClaim Point = "after-alert-claim"
)

// Env is the environment variable a `-tags faults` build reads.
const Env = "OUTBOUND_FAULT"

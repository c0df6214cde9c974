// Package retry owns how the module retries an operation that failed for a
// reason that may pass (a broker or Redis down, an SMTP server refusing for
// now), on github.com/cenkalti/backoff/v4.
//
// Guarantees of Policy.Do: it returns only once op succeeded, op returned an
// error marked Permanent (retrying cannot fix it, so it is never retried), the
// context ended, or Policy.Attempts calls failed. The waits grow exponentially
// from Policy.Initial to Policy.Max, each within ±20% so that many callers that
// failed together do not retry together. Every failed attempt that is retried
// is logged once, where it happens; the error that ends Do is returned, not
// logged, for the caller to handle.
//
// Policy.Delay is the same schedule for callers that keep the failure count
// themselves (the sink keeps a webhook's count in Redis, shared by all workers).
//
// It imports nothing of the module.
package retry

// Package sink delivers bundles (windowing.Bundle) to webhooks and keeps their
// books.
//
//   - Render: the two payload formats of the product spec (one message, or a
//     bundle with its HTML aggregation), as the exact bytes signed and sent.
//   - Sign: Standard Webhooks headers (webhook-id stable per bundle,
//     webhook-timestamp, webhook-signature when a secret is set).
//   - NewHTTPClient: refuses loopback, private, link-local and other internal
//     addresses, and ports outside the port policy, at dial time, on the
//     resolved IP (no DNS-rebinding gap); never follows redirects; keeps
//     connections alive. Guard.CheckURL applies the same rules, as far as they
//     go without DNS, to a URL being configured.
//   - Sink.Deliver: one attempt per call, never waiting. A webhook's health is
//     shared by all workers in Redis: any failure puts the whole webhook into
//     backoff with one probe at a time across the group, any success resets the
//     count, and the attempt that makes it exceed 10 (or a 410 Gone) disables
//     the webhook and publishes exactly one webhook.auto_disabled. Every attempt
//     goes to the request log and every outcome to the activity log
//     (internal/webhooklog).
//
// Bundles of a disabled or deleted webhook, or buffered before its last
// re-enable, are dropped, not delivered.
package sink

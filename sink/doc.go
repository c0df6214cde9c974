// Package sink turns a closed window (windowing.Bundle) into an HTTP call to the
// workspace's webhook.
//
// What it owns so far:
//   - Render: the two payload formats of the product spec (one message, or a
//     bundle with its HTML aggregation), as the exact bytes that are signed and
//     sent.
//   - Sign: Standard Webhooks signatures (webhook-id, webhook-timestamp,
//     webhook-signature), so receivers can verify with any of its libraries.
//   - NewHTTPClient: the delivery client. It refuses loopback, private,
//     link-local and other internal addresses at dial time, on the resolved IP,
//     so a customer's URL cannot reach the worker's own network; it never follows
//     redirects; and it keeps connections alive.
package sink

package sink

import (
	"fmt"

	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// Defaults of BundleLimits.
const (
	DefaultMaxBundleMessages = 1000
	DefaultMaxBundleBytes    = 1 << 20
)

// BundleLimits bound one request of a bundle's delivery. A bundle over them is
// delivered as several parts, in order, each a complete bundle payload.
type BundleLimits struct {
	// MaxMessages caps the messages of one part (default 1000).
	MaxMessages int
	// MaxBytes caps the request body of one part (default 1 MiB). A single
	// message larger than that still goes out, alone in its part, rather than
	// holding up its chat for good.
	MaxBytes int
}

// WithDefaults returns l with its unset fields filled.
func (l BundleLimits) WithDefaults() BundleLimits {
	if l.MaxMessages <= 0 {
		l.MaxMessages = DefaultMaxBundleMessages
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBundleBytes
	}
	return l
}

// Part is one request of a bundle's delivery.
type Part struct {
	// ID is the part's webhook-id: the bundle's id when the bundle fits in one
	// part, else the bundle's id, "_p" and the part's number (from 1). The cut
	// is a function of the bundle, its progress and the limits alone, so every
	// worker and every redelivery sends a part under the same id with the same
	// messages.
	ID       string
	Messages int
	Body     []byte
	Last     bool // no part follows
}

// RenderPart renders the part of b that b.Part and b.Sent name: the longest
// run of messages, in payload order, after the b.Sent messages of the parts
// before it, that fits the limits, with its own timestamps and aggregation.
func RenderPart(b windowing.Bundle, product string, lim BundleLimits) (Part, error) {
	lim = lim.WithDefaults()
	if b.Granularity == webhook.None || len(b.Messages) == 0 {
		// One message at most: one part.
		body, err := Render(b, product)
		return Part{ID: b.ID, Messages: len(b.Messages), Body: body, Last: true}, err
	}
	if b.Sent < 0 || b.Sent >= len(b.Messages) {
		return Part{}, fmt.Errorf("rendering bundle %q: %d of its %d messages already sent", b.ID, b.Sent, len(b.Messages))
	}
	body, n, err := cutPart(b, sorted(b.Messages)[b.Sent:], product, lim)
	if err != nil {
		return Part{}, err
	}
	last := b.Sent+n == len(b.Messages)
	id := b.ID
	if b.Part > 0 || !last {
		id = fmt.Sprintf("%s_p%d", b.ID, b.Part+1)
	}
	return Part{ID: id, Messages: n, Body: body, Last: last}, nil
}

// cutPart renders the longest prefix of msgs, one message at least, that fits
// lim, and says how many messages it holds.
func cutPart(b windowing.Bundle, msgs []windowing.Message, product string, lim BundleLimits) ([]byte, int, error) {
	// Most bundles fit in one part: render them once, as they go out.
	if len(msgs) <= lim.MaxMessages {
		body, err := renderBundle(b, msgs, product)
		if err != nil || len(body) <= lim.MaxBytes {
			return body, len(msgs), err
		}
	}
	body, err := renderBundle(b, msgs[:1], product)
	if err != nil {
		return nil, 0, err
	}
	// One more message adds exactly its JSON and a comma, and its line and a
	// line break to the aggregation: JSON escapes character by character, and
	// the timestamps have a fixed length. So the cut is found without
	// rendering every candidate.
	size, n := len(body), 1
	for n < len(msgs) && n < lim.MaxMessages {
		size += jsonLen(wireMessage(msgs[n])) + 1 + jsonLen(aggregationLine(msgs[n])) - len(`""`) + len(lineBreak)
		if size > lim.MaxBytes {
			break
		}
		n++
	}
	if n == 1 {
		return body, 1, nil
	}
	body, err = renderBundle(b, msgs[:n], product)
	if err == nil && len(body) > lim.MaxBytes {
		// The limit is a promise to receivers: a wrong sum is a bug, not a
		// reason to send too much.
		err = fmt.Errorf("rendering bundle %q: a part of %d messages is %d bytes, over the limit of %d", b.ID, n, len(body), lim.MaxBytes)
	}
	return body, n, err
}

// jsonLen is the length of v's JSON as encode writes it.
func jsonLen(v any) int {
	body, _ := encode("", v) // a message or a string always encodes
	return len(body)
}

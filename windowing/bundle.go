package windowing

import (
	"context"
	"time"

	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

// Message is one buffered message: the fields a payload needs, nothing more.
type Message struct {
	ID        string
	Direction string
	At        time.Time
	Sender    schemas.Party
	Recipient schemas.Party
	Text      string
	Permalink string // optional link to the message in the product
}

// Bundle is what the sink delivers: one chat's messages of one window, or a single
// message when the granularity is none.
type Bundle struct {
	// ID is stable across retries and workers: receivers de-duplicate on it.
	ID          string
	Workspace   string
	ChatID      string
	Granularity webhook.Granularity
	WindowStart time.Time // zero for granularity none
	// Epoch is the webhook epoch the messages were buffered under: bundles from
	// before a disable are dropped, never delivered after a re-enable.
	Epoch int64
	// Account and Chat are the latest details seen in the window; Chat.IsNewChat
	// is true if any message of the window had it.
	Account  schemas.Account
	Chat     schemas.Chat
	Messages []Message // sorted by timestamp, then by arrival
	Attempt  int       // 1 on the first delivery attempt of this bundle
	// Part and Sent are the progress of a bundle that a Deliverer sends in
	// several parts, one per claim: the index of the next part and how many
	// messages (in order) the parts before it held. A crash mid-way resumes
	// there. Counting messages, not only parts, means a change of how parts
	// are cut never skips a message.
	Part int
	Sent int
}

// Outcome is what a Deliverer decided about one bundle.
type Outcome struct {
	// Done removes the bundle: it was delivered, or dropped on purpose (webhook
	// disabled or deleted). Dropped is set in the second case.
	Done    bool
	Dropped bool
	// RetryAt, when Done is false, is the earliest time to try this bundle again.
	// The chat's later bundles wait behind it, which keeps per-chat order.
	RetryAt time.Time
	// PartMessages, when Done is false, says that the bundle's Part was
	// delivered with this many messages and more remain: the next attempt gets
	// the next Part.
	PartMessages int
}

// Deliverer delivers one bundle. It must return promptly when the webhook cannot
// be called now (backoff, concurrency cap) with a RetryAt, rather than block, so a
// slow webhook never holds a delivery slot that another workspace could use.
type Deliverer interface {
	Deliver(ctx context.Context, b Bundle) Outcome
}

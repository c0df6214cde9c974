package windowing

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

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
	// Settle, when set (the Flusher sets it), queues the Flusher's record of
	// out (ack, or retry) on pipe, so that a Deliverer with books of its own
	// to write sends both in one round trip. A Deliverer that calls it sends
	// pipe and returns out with Settled set; one that does not leaves the
	// record to the Flusher.
	Settle func(ctx context.Context, pipe redis.Pipeliner, out Outcome)
	// Admission is what the Deliverer's Admitter said about the bundle's
	// webhook with the claim's reads (nil: nothing); the Flusher drops it when
	// the delivery had to wait for a slot, as it may be stale by then.
	Admission any
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
	// Settled says that the Deliverer sent this outcome's record through
	// Bundle.Settle.
	Settled bool
}

// Deliverer delivers one bundle. It must return promptly when the webhook cannot
// be called now (backoff, concurrency cap) with a RetryAt, rather than block, so a
// slow webhook never holds a delivery slot that another workspace could use.
type Deliverer interface {
	Deliver(ctx context.Context, b Bundle) Outcome
}

// Admitter is a Deliverer that reads, in the round trip in which a claim reads
// its chats' heads, whatever lets the bundles of a workspace go without a
// check of their own (the sink: a healthy webhook takes deliveries without
// its gate script). The Flusher hands the answer to Deliver as
// Bundle.Admission.
type Admitter interface {
	// Admission queues its reads about workspaces on pipe and returns what
	// answers, once pipe was sent, for one of them.
	Admission(ctx context.Context, pipe redis.Pipeliner, workspaces []string) func(workspace string) any
}

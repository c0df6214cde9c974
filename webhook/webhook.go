package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/outbound-webhooks/outbound/schemas"
)

// Webhook is the current configuration of one workspace's webhook, as every worker
// sees it after applying the control topic.
type Webhook struct {
	Workspace   string
	URL         string
	Granularity Granularity
	Enabled     bool
	OwnerEmail  string
	Secret      string
	// DisabledReason says why Enabled is false ("auto-disabled after 11
	// consecutive errors: ...", or the operator's reason).
	DisabledReason string
	// Epoch identifies the configure or enable message this state comes from (the
	// control record's partition and offset, packed). Error counts and pending
	// windows belong to one epoch: re-enabling starts a fresh count, and windows
	// buffered before a disable are never delivered after it.
	Epoch int64
	// EnabledSince is the epoch at which the webhook last went from disabled (or
	// absent) to enabled. Bundles buffered under an older epoch were pending at a
	// disable and are dropped, never delivered after the re-enable.
	EnabledSince int64
	UpdatedAt    time.Time
}

// Fixed is a set of webhooks that never changes: a Lookup for tests and
// benchmarks that need no control topic.
type Fixed map[string]Webhook

// Lookup returns the webhook of workspace ws.
func (f Fixed) Lookup(ws string) (Webhook, bool) {
	w, ok := f[ws]
	return w, ok
}

// AutoDisabledEvent is the webhook.auto_disabled message for w after
// consecutive failed deliveries, the last of which failed with lastError. It
// carries w's epoch, so that it is ignored if the webhook was configured or enabled
// again meanwhile, and an id derived from the workspace and the epoch: an event
// published again after a crash is the same event, which the Notifier emails
// about once.
func AutoDisabledEvent(w Webhook, consecutive int, lastError string) schemas.ControlMessage {
	sum := sha256.Sum256([]byte("webhook.auto_disabled\x00" + w.Workspace + "\x00" + strconv.FormatInt(w.Epoch, 10)))
	return schemas.ControlMessage{
		ID:                "ctl_" + hex.EncodeToString(sum[:16]),
		Type:              schemas.TypeAutoDisabled,
		WorkspaceID:       w.Workspace,
		ConsecutiveErrors: consecutive,
		LastError:         lastError,
		Epoch:             w.Epoch,
	}
}

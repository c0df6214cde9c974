package control

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

// Reasons a control record is rejected. Apply wraps them with %w; test with errors.Is.
var (
	ErrUnknownType        = errors.New("unknown control message type")
	ErrMissingWorkspace   = errors.New("missing workspace_id")
	ErrInvalidWorkspace   = errors.New("invalid workspace_id")
	ErrInvalidID          = errors.New("invalid id")
	ErrInvalidURL         = errors.New("invalid webhook URL")
	ErrInvalidGranularity = errors.New("invalid granularity")
	ErrUnknownWorkspace   = errors.New("unknown workspace")
)

// Disabled reasons written by Apply.
const (
	reasonConfigured = "disabled by configuration"
	reasonOperator   = "disabled by operator"
)

// epochPartitionShift leaves 40 bits (10^12 records) for the offset of one partition.
const epochPartitionShift = 40

// newEpoch packs the position of a configure or enable record into one int64. The
// offset is stored plus one so that no epoch is ever 0: an auto_disabled message
// with epoch 0 means "epoch unknown" and must not be mistaken for a real one.
func newEpoch(partition int, offset int64) int64 {
	return int64(partition)<<epochPartitionShift | (offset + 1)
}

// Registry is the in-memory view of every workspace's webhook, built by applying
// the control topic's records in partition order. It is safe for concurrent use.
//
// A Registry is fed by one Reader (or by direct Apply calls in tests); two feeders
// would each advance the per-partition offsets and skip each other's records.
type Registry struct {
	// applyMu serialises state changes together with their feeds, so subscribers
	// see changes in the order they were made. It is taken before mu.
	applyMu sync.Mutex

	mu       sync.RWMutex
	webhooks map[string]webhook.Webhook
	offsets  map[int]int64 // last applied offset per partition
	feeds    []*webhook.Feed
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		webhooks: make(map[string]webhook.Webhook),
		offsets:  make(map[int]int64),
	}
}

// Lookup returns the workspace's webhook.
func (r *Registry) Lookup(ws string) (webhook.Webhook, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	w, ok := r.webhooks[ws]
	return w, ok
}

// All returns every webhook, sorted by workspace.
func (r *Registry) All() []webhook.Webhook {
	r.mu.RLock()
	out := make([]webhook.Webhook, 0, len(r.webhooks))
	for _, w := range r.webhooks {
		out = append(out, w)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Workspace < out[j].Workspace })
	return out
}

// Offset returns the last offset applied from partition, and false if none was.
func (r *Registry) Offset(partition int) (int64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o, ok := r.offsets[partition]
	return o, ok
}

// Offsets returns a copy of the last applied offset of every partition.
func (r *Registry) Offsets() map[int]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.offsets)
}

// Subscribe returns a feed of every later change of a webhook, including those
// made by restoring a materialised state at start, in the order they were made.
// Pushing never waits, so the subscriber does its work on its own goroutine and
// never holds up the control topic's reader; by the time it takes a change, Lookup
// already answers with the new state (or a newer one).
func (r *Registry) Subscribe() *webhook.Feed {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	f := webhook.NewFeed()
	r.feeds = append(r.feeds, f)
	return f
}

// publish pushes c to every subscriber. The caller holds applyMu.
func (r *Registry) publish(c change) {
	for _, f := range r.feeds {
		f.Push(webhook.Change{Old: c.old, OldOK: c.oldOK, New: c.new, NewOK: c.newOK})
	}
}

// Apply applies the control record at (partition, offset). It reports whether a
// webhook changed. A record at or below the partition's last applied offset is a
// replay and is ignored. A record that cannot be applied returns an error that
// wraps one of the Err* reasons; its offset still counts as applied, because
// replaying it would fail the same way.
//
// msg.At (or, when nil, the zero time) becomes the webhook's UpdatedAt, so that
// every worker computes the same state from the same records.
func (r *Registry) Apply(partition int, offset int64, msg schemas.ControlMessage) (changed bool, err error) {
	ch, err := r.apply(partition, offset, msg)
	return ch.changed(), err
}

// change is the effect of one applied record on one workspace.
type change struct {
	applied      bool // false for a replay
	workspace    string
	old, new     webhook.Webhook
	oldOK, newOK bool
}

func (c change) changed() bool {
	return c.applied && (c.oldOK != c.newOK || !sameWebhook(c.old, c.new))
}

// sameWebhook compares UpdatedAt as an instant: a time restored from JSON and the
// one it was written from differ in their Location pointer.
func sameWebhook(a, b webhook.Webhook) bool {
	at, bt := a.UpdatedAt, b.UpdatedAt
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return a == b && at.Equal(bt)
}

func (r *Registry) apply(partition int, offset int64, msg schemas.ControlMessage) (change, error) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()

	r.mu.Lock()
	if last, ok := r.offsets[partition]; ok && offset <= last {
		r.mu.Unlock()
		return change{workspace: msg.WorkspaceID}, nil
	}
	r.offsets[partition] = offset
	old, oldOK := r.webhooks[msg.WorkspaceID]
	nw, newOK, err := next(old, oldOK, partition, offset, msg)
	if err != nil {
		r.mu.Unlock()
		return change{applied: true, workspace: msg.WorkspaceID, old: old, oldOK: oldOK, new: old, newOK: oldOK}, err
	}
	if newOK {
		r.webhooks[msg.WorkspaceID] = nw
	} else {
		delete(r.webhooks, msg.WorkspaceID)
	}
	r.mu.Unlock()

	c := change{applied: true, workspace: msg.WorkspaceID, old: old, oldOK: oldOK, new: nw, newOK: newOK}
	if c.changed() {
		r.publish(c)
	}
	return c, nil
}

// next computes a workspace's webhook after msg. It is a pure function of its
// arguments: every worker must derive the same state from the same records.
func next(old webhook.Webhook, oldOK bool, partition int, offset int64, msg schemas.ControlMessage) (webhook.Webhook, bool, error) {
	if err := Validate(msg); err != nil {
		return old, oldOK, err
	}
	var at time.Time
	if msg.At != nil {
		at = msg.At.UTC()
	}
	switch msg.Type {
	case schemas.TypeConfigure:
		g, _ := webhook.ParseGranularity(msg.Granularity) // checked by Validate
		w := webhook.Webhook{
			Workspace:   msg.WorkspaceID,
			URL:         msg.URL,
			Granularity: g,
			Enabled:     msg.Enabled == nil || *msg.Enabled,
			OwnerEmail:  msg.OwnerEmail,
			Secret:      msg.Secret,
			Epoch:       newEpoch(partition, offset),
			UpdatedAt:   at,
		}
		switch {
		case !w.Enabled:
			w.DisabledReason = reasonConfigured
			w.EnabledSince = old.EnabledSince // 0 when the workspace is new
		case oldOK && old.Enabled:
			// Still enabled: what is buffered stays deliverable, to the new URL.
			w.EnabledSince = old.EnabledSince
		default:
			w.EnabledSince = w.Epoch
		}
		return w, true, nil

	case schemas.TypeEnable:
		if !oldOK {
			return old, oldOK, fmt.Errorf("enabling unknown workspace: %w", ErrUnknownWorkspace)
		}
		w := old
		// A fresh epoch even when the webhook was already enabled: an explicit
		// enable is the operator's way to reset the error count. EnabledSince
		// moves only when the webhook was off, so that bundles pending at the
		// disable are dropped while those of an enabled webhook are kept.
		w.Epoch = newEpoch(partition, offset)
		if !old.Enabled {
			w.EnabledSince = w.Epoch
		}
		w.Enabled, w.DisabledReason = true, ""
		w.UpdatedAt = at
		return w, true, nil

	case schemas.TypeDisable:
		if !oldOK {
			return old, oldOK, fmt.Errorf("disabling unknown workspace: %w", ErrUnknownWorkspace)
		}
		w := old
		w.Enabled = false
		w.DisabledReason = msg.Reason
		if w.DisabledReason == "" {
			w.DisabledReason = reasonOperator
		}
		w.UpdatedAt = at
		return w, true, nil

	case schemas.TypeDelete:
		// Deleting an unknown workspace is a no-op, so a repeated ctl delete is fine.
		return webhook.Webhook{}, false, nil

	case schemas.TypeAutoDisabled:
		// An auto-disable computed against an older epoch must not undo a newer
		// configure or enable; one for a deleted workspace has nothing to disable.
		if !oldOK || (msg.Epoch != 0 && msg.Epoch != old.Epoch) {
			return old, oldOK, nil
		}
		w := old
		w.Enabled = false
		w.DisabledReason = fmt.Sprintf("auto-disabled after %d consecutive errors: %s", msg.ConsecutiveErrors, msg.LastError)
		w.UpdatedAt = at
		return w, true, nil
	}
	return old, oldOK, fmt.Errorf("applying %q: %w", msg.Type, ErrUnknownType)
}

// Validate checks what can be checked of a control message without state: a known
// type, ids that pass schemas.CheckID like those of events (a workspace id keys
// the stages' Redis state, where control characters delimit keys: a crafted one
// could name another workspace's windows), and for webhook.configure an http(s)
// URL with a host and a known granularity. Errors wrap one of the Err* reasons
// and never quote the URL or an id.
func Validate(msg schemas.ControlMessage) error {
	switch msg.Type {
	case schemas.TypeConfigure, schemas.TypeEnable, schemas.TypeDisable, schemas.TypeDelete, schemas.TypeAutoDisabled:
	default:
		return fmt.Errorf("checking type %q: %w", msg.Type, ErrUnknownType)
	}
	if msg.WorkspaceID == "" {
		return fmt.Errorf("checking %s: %w", msg.Type, ErrMissingWorkspace)
	}
	if err := schemas.CheckID(msg.WorkspaceID); err != nil {
		return fmt.Errorf("checking %s: %w: %w", msg.Type, ErrInvalidWorkspace, err)
	}
	if msg.ID != "" { // optional: the notifier falls back to the record's position
		if err := schemas.CheckID(msg.ID); err != nil {
			return fmt.Errorf("checking %s: %w: %w", msg.Type, ErrInvalidID, err)
		}
	}
	if msg.Type != schemas.TypeConfigure {
		return nil
	}
	if err := urls.CheckHTTP(msg.URL); err != nil {
		return fmt.Errorf("checking url: %w: %w", ErrInvalidURL, err)
	}
	if _, err := webhook.ParseGranularity(msg.Granularity); err != nil {
		return fmt.Errorf("checking granularity: %w: %w", ErrInvalidGranularity, err)
	}
	return nil
}

// restore replaces the registry's state with a materialised one (see LoadState)
// and publishes a change for every workspace that differs.
func (r *Registry) restore(webhooks map[string]webhook.Webhook, offsets map[int]int64) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()

	r.mu.Lock()
	old := r.webhooks
	r.webhooks = make(map[string]webhook.Webhook, len(webhooks))
	for ws, w := range webhooks {
		r.webhooks[ws] = w
	}
	r.offsets = make(map[int]int64, len(offsets))
	for p, o := range offsets {
		r.offsets[p] = o
	}
	r.mu.Unlock()

	if len(r.feeds) == 0 {
		return
	}
	var changes []change
	for ws, w := range old {
		nw, ok := webhooks[ws]
		if !ok || !sameWebhook(nw, w) {
			changes = append(changes, change{applied: true, workspace: ws, old: w, oldOK: true, new: nw, newOK: ok})
		}
	}
	for ws, nw := range webhooks {
		if _, ok := old[ws]; !ok {
			changes = append(changes, change{applied: true, workspace: ws, new: nw, newOK: true})
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].workspace < changes[j].workspace })
	for _, c := range changes {
		r.publish(c)
	}
}

// forgetPartition drops partition's applied offset, so that its records are
// applied again from the start (a control topic recreated under the same name).
func (r *Registry) forgetPartition(partition int) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.offsets, partition)
}

package control

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/redis/go-redis/v9"
)

// Keys is the control plane's key schema in Redis: the prefix of its keys (the
// zero value is DefaultKeys). The materialisation's two keys share the hash tag
// {cfg}, so the apply script touches one slot on Redis Cluster, and a MULTI can
// read them as one consistent snapshot.
type Keys string

// DefaultKeys is the key schema of a worker.
const DefaultKeys Keys = "outbound"

func (k Keys) prefix() string {
	if k == "" {
		return string(DefaultKeys)
	}
	return string(k)
}

// Webhooks is a hash: field = workspace id, value = the webhook as JSON.
func (k Keys) Webhooks() string { return k.prefix() + ":{cfg}:webhooks" }

// Offsets is a hash: field = control partition, value = the last control
// offset whose effect Webhooks includes.
func (k Keys) Offsets() string { return k.prefix() + ":{cfg}:offsets" }

// notified is the dedupe key of the email about event id: "sending:<token>"
// while one notifier holds the claim, "sent" once the email was accepted.
func (k Keys) notified(id string) string { return k.prefix() + ":notified:" + id }

// storedWebhook is the JSON form of a Webhook in Redis. Field names are part of the
// contract with operators' tools; add fields, never rename them.
type storedWebhook struct {
	Workspace      string    `json:"workspace_id"`
	URL            string    `json:"url"`
	Granularity    string    `json:"granularity"`
	Enabled        bool      `json:"enabled"`
	OwnerEmail     string    `json:"owner_email,omitempty"`
	Secret         string    `json:"secret,omitempty"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	Epoch          int64     `json:"epoch"`
	EnabledSince   int64     `json:"enabled_since"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func encodeWebhook(w webhook.Webhook) ([]byte, error) {
	return json.Marshal(storedWebhook{
		Workspace:      w.Workspace,
		URL:            w.URL,
		Granularity:    string(w.Granularity),
		Enabled:        w.Enabled,
		OwnerEmail:     w.OwnerEmail,
		Secret:         w.Secret,
		DisabledReason: w.DisabledReason,
		Epoch:          w.Epoch,
		EnabledSince:   w.EnabledSince,
		UpdatedAt:      w.UpdatedAt,
	})
}

func decodeWebhook(data string) (webhook.Webhook, error) {
	var s storedWebhook
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		return webhook.Webhook{}, fmt.Errorf("decoding materialised webhook: %w", err)
	}
	g, err := webhook.ParseGranularity(s.Granularity)
	if err != nil {
		return webhook.Webhook{}, fmt.Errorf("decoding materialised webhook of %s: %w", s.Workspace, err)
	}
	return webhook.Webhook{
		Workspace:      s.Workspace,
		URL:            s.URL,
		Granularity:    g,
		Enabled:        s.Enabled,
		OwnerEmail:     s.OwnerEmail,
		Secret:         s.Secret,
		DisabledReason: s.DisabledReason,
		Epoch:          s.Epoch,
		EnabledSince:   s.EnabledSince,
		UpdatedAt:      s.UpdatedAt.UTC(),
	}, nil
}

var (
	//go:embed lua/apply.lua
	applyLua string
	//go:embed lua/mark_sent.lua
	markSentLua string
	//go:embed lua/release.lua
	releaseLua string

	applyScript    = redis.NewScript(applyLua)
	markSentScript = redis.NewScript(markSentLua)
	releaseScript  = redis.NewScript(releaseLua)
)

// materialise records the effect of the control record at (partition, offset): the
// workspace's webhook is w (ok) or gone (!ok). With ws == "" only the offset moves
// (a rejected record).
// materialise reports whether this call was the first to apply the record.
func materialise(ctx context.Context, rdb redis.Scripter, keys Keys, partition int, offset int64, ws string, w webhook.Webhook, ok bool) (bool, error) {
	op, data := "none", ""
	switch {
	case ws == "":
	case ok:
		b, err := encodeWebhook(w)
		if err != nil {
			return false, fmt.Errorf("encoding webhook of %s: %w", ws, err)
		}
		op, data = "set", string(b)
	default:
		op = "del"
	}
	first, err := applyScript.Run(ctx, rdb, []string{keys.Webhooks(), keys.Offsets()},
		partition, offset, op, ws, data).Int()
	if err != nil {
		return false, fmt.Errorf("materialising control record %d/%d: %w", partition, offset, err)
	}
	return first == 1, nil
}

// State is the materialised control state: every webhook, and per control
// partition the last offset whose effect the webhooks include.
type State struct {
	Webhooks map[string]webhook.Webhook
	Offsets  map[int]int64
}

// LoadState reads the whole materialisation as one consistent snapshot.
func LoadState(ctx context.Context, rdb redis.Cmdable, keys Keys) (State, error) {
	var hooks, offs *redis.MapStringStringCmd
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		hooks = p.HGetAll(ctx, keys.Webhooks())
		offs = p.HGetAll(ctx, keys.Offsets())
		return nil
	})
	if err != nil {
		return State{}, fmt.Errorf("loading control state: %w", err)
	}
	st := State{
		Webhooks: make(map[string]webhook.Webhook, len(hooks.Val())),
		Offsets:  make(map[int]int64, len(offs.Val())),
	}
	for ws, data := range hooks.Val() {
		w, err := decodeWebhook(data)
		if err != nil {
			return State{}, err
		}
		st.Webhooks[ws] = w
	}
	for p, o := range offs.Val() {
		part, err := strconv.Atoi(p)
		if err != nil {
			return State{}, fmt.Errorf("parsing control partition %q: %w", p, err)
		}
		off, err := strconv.ParseInt(o, 10, 64)
		if err != nil {
			return State{}, fmt.Errorf("parsing offset of control partition %d: %w", part, err)
		}
		st.Offsets[part] = off
	}
	return st, nil
}

// LoadWebhook reads one workspace's webhook from the materialisation, for tools
// (outbound ctl status, the admin API) that do not consume the control topic. It
// is as fresh as the fastest running worker, which applies records within about a
// second of their publication.
func LoadWebhook(ctx context.Context, rdb redis.Cmdable, keys Keys, ws string) (webhook.Webhook, bool, error) {
	data, err := rdb.HGet(ctx, keys.Webhooks(), ws).Result()
	if errors.Is(err, redis.Nil) {
		return webhook.Webhook{}, false, nil
	}
	if err != nil {
		return webhook.Webhook{}, false, fmt.Errorf("loading webhook of %s: %w", ws, err)
	}
	w, err := decodeWebhook(data)
	if err != nil {
		return webhook.Webhook{}, false, err
	}
	return w, true, nil
}

// materialisedOffset returns the last control offset of partition the
// materialisation includes, and false if it includes none.
func materialisedOffset(ctx context.Context, rdb redis.Cmdable, keys Keys, partition int) (int64, bool, error) {
	off, err := rdb.HGet(ctx, keys.Offsets(), strconv.Itoa(partition)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("loading materialised offset of control partition %d: %w", partition, err)
	}
	return off, true, nil
}

// forgetOffset drops partition's offset guard, for a control topic that was
// recreated and whose offsets start again below the stored one.
func forgetOffset(ctx context.Context, rdb redis.Cmdable, keys Keys, partition int) error {
	if err := rdb.HDel(ctx, keys.Offsets(), strconv.Itoa(partition)).Err(); err != nil {
		return fmt.Errorf("forgetting offset of control partition %d: %w", partition, err)
	}
	return nil
}

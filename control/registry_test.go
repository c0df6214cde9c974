package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

func ptr[T any](v T) *T { return &v }

func configureMsg(ws, url, granularity string, enabled *bool) schemas.ControlMessage {
	return schemas.ControlMessage{
		Type: schemas.TypeConfigure, WorkspaceID: ws, URL: url, Granularity: granularity,
		Enabled: enabled, OwnerEmail: "owner@" + ws + ".example", Secret: "s3cret",
	}
}

func typed(typ, ws string) schemas.ControlMessage {
	return schemas.ControlMessage{Type: typ, WorkspaceID: ws}
}

func withID(msg schemas.ControlMessage, id string) schemas.ControlMessage {
	msg.ID = id
	return msg
}

func autoDisabled(ws string, epoch int64) schemas.ControlMessage {
	return schemas.ControlMessage{
		Type: schemas.TypeAutoDisabled, WorkspaceID: ws,
		ConsecutiveErrors: 11, LastError: "HTTP 500", Epoch: epoch,
	}
}

// configured is the webhook that configureMsg(ws, "https://a.example/h", "1h", nil)
// yields when applied at (partition, offset).
func configured(ws string, partition int, offset int64) webhook.Webhook {
	return webhook.Webhook{
		Workspace: ws, URL: "https://a.example/h", Granularity: webhook.H1, Enabled: true,
		OwnerEmail: "owner@" + ws + ".example", Secret: "s3cret",
		Epoch: newEpoch(partition, offset), EnabledSince: newEpoch(partition, offset),
	}
}

// epochs returns w with the given Epoch and EnabledSince.
func epochs(w webhook.Webhook, epoch, enabledSince int64) webhook.Webhook {
	w.Epoch, w.EnabledSince = epoch, enabledSince
	return w
}

func TestRegistryApply(t *testing.T) {
	type step struct {
		partition   int
		offset      int64
		msg         schemas.ControlMessage
		wantChanged bool
		wantErr     error
	}
	base := configureMsg("ws_1", "https://a.example/h", "1h", nil)
	disabled := func(w webhook.Webhook, reason string) webhook.Webhook {
		w.Enabled, w.DisabledReason = false, reason
		return w
	}
	tests := []struct {
		name  string
		steps []step
		want  map[string]webhook.Webhook
	}{
		{
			name:  "configure without enabled defaults to enabled",
			steps: []step{{0, 0, base, true, nil}},
			want:  map[string]webhook.Webhook{"ws_1": configured("ws_1", 0, 0)},
		},
		{
			name:  "configure with enabled=false is disabled by configuration",
			steps: []step{{0, 0, configureMsg("ws_1", "https://a.example/h", "1h", ptr(false)), true, nil}},
			want:  map[string]webhook.Webhook{"ws_1": disabled(epochs(configured("ws_1", 0, 0), newEpoch(0, 0), 0), "disabled by configuration")},
		},
		{
			name: "enabling a webhook configured disabled moves EnabledSince",
			steps: []step{
				{0, 0, configureMsg("ws_1", "https://a.example/h", "1h", ptr(false)), true, nil},
				{0, 1, typed(schemas.TypeEnable, "ws_1"), true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": configured("ws_1", 0, 1)},
		},
		{
			name: "configure enabled after a disable moves EnabledSince",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, typed(schemas.TypeDisable, "ws_1"), true, nil},
				{0, 2, base, true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": configured("ws_1", 0, 2)},
		},
		{
			name: "re-configure replaces every field and starts a new epoch",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, configureMsg("ws_1", "http://b.example/x", "none", ptr(true)), true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": {
				Workspace: "ws_1", URL: "http://b.example/x", Granularity: webhook.None, Enabled: true,
				OwnerEmail: "owner@ws_1.example", Secret: "s3cret",
				// Enabled throughout: what was buffered stays deliverable.
				Epoch: newEpoch(0, 1), EnabledSince: newEpoch(0, 0),
			}},
		},
		{
			name: "disable keeps the epoch and records the reason",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, schemas.ControlMessage{Type: schemas.TypeDisable, WorkspaceID: "ws_1", Reason: "maintenance"}, true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": disabled(configured("ws_1", 0, 0), "maintenance")},
		},
		{
			name: "disable without a reason",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, typed(schemas.TypeDisable, "ws_1"), true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": disabled(configured("ws_1", 0, 0), "disabled by operator")},
		},
		{
			name: "enable after disable clears the reason and starts a new epoch",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, typed(schemas.TypeDisable, "ws_1"), true, nil},
				{0, 2, typed(schemas.TypeEnable, "ws_1"), true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": configured("ws_1", 0, 2)},
		},
		{
			name: "enable of an enabled webhook resets the epoch but not EnabledSince",
			steps: []step{
				{2, 7, base, true, nil},
				{2, 9, typed(schemas.TypeEnable, "ws_1"), true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": epochs(configured("ws_1", 2, 9), newEpoch(2, 9), newEpoch(2, 7))},
		},
		{
			name:  "enable of an unknown workspace is an error",
			steps: []step{{0, 0, typed(schemas.TypeEnable, "ws_x"), false, ErrUnknownWorkspace}},
			want:  map[string]webhook.Webhook{},
		},
		{
			name:  "disable of an unknown workspace is an error",
			steps: []step{{0, 0, typed(schemas.TypeDisable, "ws_x"), false, ErrUnknownWorkspace}},
			want:  map[string]webhook.Webhook{},
		},
		{
			name: "delete removes the workspace; deleting again is a no-op",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, typed(schemas.TypeDelete, "ws_1"), true, nil},
				{0, 2, typed(schemas.TypeDelete, "ws_1"), false, nil},
			},
			want: map[string]webhook.Webhook{},
		},
		{
			name: "auto_disabled of the current epoch disables",
			steps: []step{
				{1, 4, base, true, nil},
				{1, 5, autoDisabled("ws_1", newEpoch(1, 4)), true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": disabled(configured("ws_1", 1, 4), "auto-disabled after 11 consecutive errors: HTTP 500")},
		},
		{
			name: "auto_disabled without an epoch disables",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, autoDisabled("ws_1", 0), true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": disabled(configured("ws_1", 0, 0), "auto-disabled after 11 consecutive errors: HTTP 500")},
		},
		{
			name: "auto_disabled of an older epoch does not undo a newer enable",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, typed(schemas.TypeEnable, "ws_1"), true, nil},
				{0, 2, autoDisabled("ws_1", newEpoch(0, 0)), false, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": epochs(configured("ws_1", 0, 1), newEpoch(0, 1), newEpoch(0, 0))},
		},
		{
			name:  "auto_disabled of an unknown workspace is a no-op",
			steps: []step{{0, 0, autoDisabled("ws_x", 0), false, nil}},
			want:  map[string]webhook.Webhook{},
		},
		{
			name: "a replayed offset is ignored",
			steps: []step{
				{0, 5, base, true, nil},
				{0, 6, typed(schemas.TypeDisable, "ws_1"), true, nil},
				{0, 6, typed(schemas.TypeEnable, "ws_1"), false, nil},
				{0, 3, typed(schemas.TypeDelete, "ws_1"), false, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": disabled(configured("ws_1", 0, 5), "disabled by operator")},
		},
		{
			name: "offsets are tracked per partition",
			steps: []step{
				{0, 9, base, true, nil},
				{1, 0, configureMsg("ws_2", "https://a.example/h", "1h", nil), true, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": configured("ws_1", 0, 9), "ws_2": configured("ws_2", 1, 0)},
		},
		{
			name: "a rejected record changes nothing and is not applied twice",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, configureMsg("ws_1", "ftp://a.example", "1h", nil), false, ErrInvalidURL},
				{0, 1, configureMsg("ws_1", "ftp://a.example", "1h", nil), false, nil},
			},
			want: map[string]webhook.Webhook{"ws_1": configured("ws_1", 0, 0)},
		},
		{
			name: "invalid messages are rejected with their reason",
			steps: []step{
				{0, 0, configureMsg("ws_1", "not a url", "1h", nil), false, ErrInvalidURL},
				{0, 1, configureMsg("ws_1", "https://", "1h", nil), false, ErrInvalidURL},
				{0, 2, configureMsg("ws_1", "https://a.example", "2h", nil), false, ErrInvalidGranularity},
				{0, 3, configureMsg("", "https://a.example", "1h", nil), false, ErrMissingWorkspace},
				{0, 4, typed("webhook.explode", "ws_1"), false, ErrUnknownType},
			},
			want: map[string]webhook.Webhook{},
		},
		{
			// Ids are held to the rule of event ids (schemas.CheckID): a workspace
			// id with the key separator or of 900 000 bytes is refused, and so is
			// an id with a control character.
			name: "crafted ids are rejected and touch no other workspace",
			steps: []step{
				{0, 0, base, true, nil},
				{0, 1, configureMsg("ws_1\x1fchat", "https://a.example/h", "1h", nil), false, ErrInvalidWorkspace},
				{0, 2, typed(schemas.TypeDisable, "ws_1\x1f"), false, ErrInvalidWorkspace},
				{0, 3, configureMsg(strings.Repeat("w", 900_000), "https://a.example/h", "1h", nil), false, ErrInvalidWorkspace},
				{0, 4, typed(schemas.TypeDelete, "\x00d"), false, ErrInvalidWorkspace},
				{0, 5, typed(schemas.TypeDelete, "ws_1\xff"), false, ErrInvalidWorkspace},
				{0, 6, withID(typed(schemas.TypeDisable, "ws_1"), "c\n1"), false, ErrInvalidID},
				{0, 7, withID(typed(schemas.TypeDisable, "ws_1"), strings.Repeat("i", 257)), false, ErrInvalidID},
			},
			want: map[string]webhook.Webhook{"ws_1": configured("ws_1", 0, 0)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			for i, s := range tc.steps {
				changed, err := r.Apply(s.partition, s.offset, s.msg)
				if !errors.Is(err, s.wantErr) || (err != nil) != (s.wantErr != nil) {
					t.Fatalf("step %d (%s at %d/%d): err = %v, want %v", i, s.msg.Type, s.partition, s.offset, err, s.wantErr)
				}
				if changed != s.wantChanged {
					t.Fatalf("step %d (%s at %d/%d): changed = %v, want %v", i, s.msg.Type, s.partition, s.offset, changed, s.wantChanged)
				}
			}
			all := r.All()
			if len(all) != len(tc.want) {
				t.Fatalf("registry has %d webhooks %+v, want %d", len(all), all, len(tc.want))
			}
			for ws, want := range tc.want {
				got, ok := r.Lookup(ws)
				if !ok {
					t.Fatalf("Lookup(%q): not found", ws)
				}
				if !sameWebhook(got, want) {
					t.Errorf("Lookup(%q) =\n  %+v\nwant\n  %+v", ws, got, want)
				}
			}
		})
	}
}

func TestRegistrySubscribeSeesEveryChangeInOrder(t *testing.T) {
	type call struct {
		oldOK, newOK     bool
		oldEnab, newEnab bool
	}
	r := NewRegistry()
	feed := r.Subscribe()
	at := &schemas.Timestamp{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	steps := []schemas.ControlMessage{
		configureMsg("ws_1", "https://a.example/h", "1h", nil),
		typed(schemas.TypeDisable, "ws_1"),
		typed(schemas.TypeDisable, "ws_1"), // same state again: no call
		typed(schemas.TypeDelete, "ws_1"),
	}
	for i, msg := range steps {
		msg.At = at
		if _, err := r.Apply(0, int64(i), msg); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if i == 0 {
			if w, _ := r.Lookup("ws_1"); !w.UpdatedAt.Equal(at.Time) {
				t.Errorf("UpdatedAt = %v, want the message's at %v", w.UpdatedAt, at.Time)
			}
		}
	}
	want := []call{{false, true, false, true}, {true, true, true, false}, {true, false, false, false}}
	var calls []call
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for range want {
		c, err := feed.Next(ctx)
		if err != nil {
			t.Fatalf("after %d changes %+v: %v", len(calls), calls, err)
		}
		calls = append(calls, call{c.OldOK, c.NewOK, c.Old.Enabled, c.New.Enabled})
	}
	// Nothing more is queued: the repeated disable changed nothing.
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if c, err := feed.Next(short); err == nil {
		t.Errorf("an extra change was published: %+v", c)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, calls[i], want[i])
		}
	}
}

func TestNewEpochNeverZero(t *testing.T) {
	tests := []struct {
		partition int
		offset    int64
	}{{0, 0}, {0, 1}, {1, 0}, {3, 1<<40 - 2}}
	seen := map[int64]bool{}
	for _, tc := range tests {
		e := newEpoch(tc.partition, tc.offset)
		if e == 0 {
			t.Errorf("newEpoch(%d, %d) = 0: indistinguishable from an unknown epoch", tc.partition, tc.offset)
		}
		if seen[e] {
			t.Errorf("newEpoch(%d, %d) = %d collides", tc.partition, tc.offset, e)
		}
		seen[e] = true
	}
}

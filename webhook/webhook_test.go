package webhook

import (
	"testing"

	"github.com/outbound-webhooks/outbound/schemas"
)

func TestAutoDisabledEventCarriesEpoch(t *testing.T) {
	w := Webhook{Workspace: "ws_1", Epoch: 42}
	msg := AutoDisabledEvent(w, 11, "HTTP 500")
	if msg.Type != schemas.TypeAutoDisabled || msg.WorkspaceID != "ws_1" || msg.Epoch != 42 ||
		msg.ConsecutiveErrors != 11 || msg.LastError != "HTTP 500" {
		t.Fatalf("AutoDisabledEvent = %+v", msg)
	}
}

func TestAutoDisabledEventIDIsStablePerEpoch(t *testing.T) {
	a := AutoDisabledEvent(Webhook{Workspace: "ws_1", Epoch: 42}, 11, "HTTP 500")
	tests := []struct {
		name string
		w    Webhook
		same bool
	}{
		{"the same epoch, published again after a crash", Webhook{Workspace: "ws_1", Epoch: 42}, true},
		{"a later epoch of the workspace", Webhook{Workspace: "ws_1", Epoch: 43}, false},
		{"another workspace at the same epoch", Webhook{Workspace: "ws_2", Epoch: 42}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := AutoDisabledEvent(tc.w, 12, "other error")
			if (a.ID == b.ID) != tc.same {
				t.Errorf("ids %q and %q: same = %v, want %v", a.ID, b.ID, a.ID == b.ID, tc.same)
			}
			if len(b.ID) != len("ctl_")+32 {
				t.Errorf("id %q is not ctl_ and 32 hex digits", b.ID)
			}
		})
	}
}

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

package control

import (
	"errors"
	"slices"
	"testing"

	"github.com/outbound-webhooks/outbound/schemas"
)

// FuzzApply feeds arbitrary bytes through what the Reader does with a control
// record: decode, apply to a registry that knows ws_1, and name the reason of a
// rejection. It never panics, a rejection always has a known reason, and a
// webhook the registry holds afterwards always has an id that passes
// schemas.CheckID.
func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"type":"webhook.configure","workspace_id":"ws_2","url":"https://a.example/h","granularity":"1h","enabled":true,"owner_email":"o@example.com"}`))
	f.Add([]byte(`{"type":"webhook.disable","workspace_id":"ws_1\u001f","reason":"x"}`))
	f.Add([]byte(`{"type":"webhook.delete","workspace_id":"\u0000d"}`))
	f.Add([]byte(`{"type":"webhook.enable","workspace_id":"ws_1","id":"c\u0085"}`))
	f.Add([]byte(`{"type":"webhook.auto_disabled","workspace_id":"ws_1","consecutive_errors":11,"last_error":"503","at":1614183929,"epoch":1}`))
	f.Add([]byte(`{"type":"webhook.configure","workspace_id":"ws_1","url":"ftp://x","granularity":"2h","enabled":true,"owner_email":"o@example.com"}`))
	f.Add([]byte(`{"type":"webhook.explode","workspace_id":"ws_1"}`))
	known := []string{RejectInvalidJSON, RejectUnknownType, RejectMissingWorkspace, RejectInvalidWorkspace,
		RejectInvalidID, RejectInvalidURL, RejectInvalidGranularity, RejectUnknownWorkspace, RejectSchema}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewRegistry()
		if _, err := r.Apply(0, 0, configureMsg("ws_1", "https://a.example/h", "1h", nil)); err != nil {
			t.Fatal(err)
		}
		msg, err := schemas.DecodeControl(data)
		if err == nil {
			_, err = r.Apply(0, 1, msg)
		}
		if err != nil {
			if reason := rejectReason(err, data); !slices.Contains(known, reason) {
				t.Fatalf("rejection %v has the unknown reason %q", err, reason)
			}
			if errors.Is(err, ErrInvalidWorkspace) && schemas.CheckID(msg.WorkspaceID) == nil {
				t.Fatalf("workspace %q passes CheckID but was refused: %v", msg.WorkspaceID, err)
			}
		}
		for _, w := range r.All() {
			if err := schemas.CheckID(w.Workspace); err != nil {
				t.Fatalf("registry holds workspace %q: %v", w.Workspace, err)
			}
		}
	})
}

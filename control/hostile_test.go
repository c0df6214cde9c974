package control

import (
	"strings"
	"testing"

	"github.com/outbound-webhooks/outbound/schemas"
)

// TestHostileControlMessages runs hostile control records through what the
// Reader does with one (decode, apply, name the reason) against a registry that
// knows ws_1, and checks the exact reason counted and logged, or that the record
// was applied.
func TestHostileControlMessages(t *testing.T) {
	configure := func(ws, extra string) string {
		return `{"type":"webhook.configure","workspace_id":` + ws + `,"url":"https://a.example/h","granularity":"1h","enabled":true,"owner_email":"o@example.com"` + extra + `}`
	}
	tests := []struct {
		name, record, want string // want: a Reject* reason, or "applied"
	}{
		{"a valid configure", configure(`"ws_2"`, ``), "applied"},
		{"workspace_id with the key separator", `{"type":"webhook.disable","workspace_id":"ws_1\u001f"}`, RejectInvalidWorkspace},
		{"workspace_id that is a window's reserved field", `{"type":"webhook.delete","workspace_id":"\u0000d"}`, RejectInvalidWorkspace},
		{"900 000-byte workspace_id", configure(`"`+strings.Repeat("w", 900_000)+`"`, ``), RejectInvalidWorkspace},
		{"65 emoji workspace_id (260 bytes)", configure(`"`+strings.Repeat("😀", 65)+`"`, ``), RejectInvalidWorkspace},
		{"invalid UTF-8 workspace_id", "{\"type\":\"webhook.delete\",\"workspace_id\":\"ws\xff\"}", RejectInvalidWorkspace},
		{"empty workspace_id", `{"type":"webhook.delete","workspace_id":""}`, RejectMissingWorkspace},
		{"workspace_id a number", `{"type":"webhook.delete","workspace_id":1}`, RejectSchema},
		{"id with a C1 control", `{"type":"webhook.enable","workspace_id":"ws_1","id":"c\u0085"}`, RejectInvalidID},
		{"id of 257 bytes", `{"type":"webhook.enable","workspace_id":"ws_1","id":"` + strings.Repeat("i", 257) + `"}`, RejectInvalidID},
		{"RTL override in a workspace_id is allowed", configure(`"ws\u202e3"`, ``), "applied"},
		{"duplicate workspace_id", `{"type":"webhook.enable","workspace_id":"ws_1","workspace_id":"ws_2"}`, RejectInvalidJSON},
		{"differently cased Workspace_ID is another field", `{"type":"webhook.enable","Workspace_ID":"ws\u001f","workspace_id":"ws_1"}`, "applied"},
		{"unknown type", `{"type":"webhook.explode","workspace_id":"ws_1"}`, RejectUnknownType},
		{"javascript: URL", `{"type":"webhook.configure","workspace_id":"ws_1","url":"javascript:alert(1)","granularity":"1h","enabled":true,"owner_email":"o@example.com"}`, RejectInvalidURL},
		{"unknown granularity", `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://a.example/h","granularity":"2h","enabled":true,"owner_email":"o@example.com"}`, RejectInvalidGranularity},
		{"enable of an unknown workspace", `{"type":"webhook.enable","workspace_id":"ws_nobody"}`, RejectUnknownWorkspace},
		{"consecutive_errors beyond int32", `{"type":"webhook.auto_disabled","workspace_id":"ws_1","consecutive_errors":1e30,"last_error":"x","at":1614183929}`, RejectSchema},
		{"negative at", `{"type":"webhook.disable","workspace_id":"ws_1","at":-5}`, RejectSchema},
		{"nested past the limit", `{"type":"webhook.delete","workspace_id":"ws_1","x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, RejectInvalidJSON},
		{"truncated", `{"type":"webhook.delete",`, RejectInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			if _, err := r.Apply(0, 0, configureMsg("ws_1", "https://a.example/h", "1h", nil)); err != nil {
				t.Fatal(err)
			}
			got := "applied"
			msg, err := schemas.DecodeControl([]byte(tt.record))
			if err == nil {
				_, err = r.Apply(0, 1, msg)
			}
			if err != nil {
				got = rejectReason(err, []byte(tt.record))
			}
			if got != tt.want {
				t.Fatalf("outcome %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

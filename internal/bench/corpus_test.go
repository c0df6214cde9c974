package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/schemas"
)

// The corpus must be valid input and the same in every run. With every field of
// the contract filled, as upstream sends them, an event is 650-800 bytes.
func TestCorpus(t *testing.T) {
	k := corpus{workspaces: 100, chats: 2000}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 5000
	total := 0
	for i := range n {
		ev := k.event(i, i%k.chats, at)
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := schemas.DecodeEvent(b)
		if err != nil {
			t.Fatalf("event %d: %v\n%s", i, err, b)
		}
		if got.Message.MessageID != ev.Message.MessageID {
			t.Fatalf("event %d: message id %q decoded as %q", i, ev.Message.MessageID, got.Message.MessageID)
		}
		if id := messageID(i); id != ev.Message.MessageID {
			t.Fatalf("messageID(%d) = %q, the event has %q", i, id, ev.Message.MessageID)
		}
		if j, ok := messageIndex(ev.Message.MessageID); !ok || j != i {
			t.Fatalf("messageIndex(%q) = %d, %v; want %d", ev.Message.MessageID, j, ok, i)
		}
		total += len(b)
	}
	if avg := total / n; avg < 650 || avg > 800 {
		t.Errorf("average event is %d bytes, want 650-800", avg)
	}
	a, _ := json.Marshal(k.event(7, 3, at))
	b, _ := json.Marshal(k.event(7, 3, at))
	if string(a) != string(b) {
		t.Error("event 7 differs between two calls")
	}
}

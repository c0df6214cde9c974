package chaos

import (
	"crypto/sha256"
	"reflect"
	"testing"
)

// TestCheckTellsRedeliveriesFromDuplicatesAndDisorder: the verdicts the table
// rests on, on hand-made deliveries.
func TestCheckTellsRedeliveriesFromDuplicatesAndDisorder(t *testing.T) {
	p := &plan{workspaces: 1, chats: 2, chat: []int{0, 0, 0, 1, 1, 0}, kind: []kind{text, text, text, text, attachment, text}}
	body := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	d := func(id, b string, msgs ...int) delivery {
		var ids []string
		for _, i := range msgs {
			ids = append(ids, messageID(i))
		}
		return delivery{ID: id, Chat: chatID(p.chat[msgs[0]]), Messages: ids, body: body(b)}
	}
	res := check(p, []delivery{
		d("a", "A", 0, 1),
		d("a", "A", 0, 1), // the same bundle again: allowed
		d("c", "C", 3),
		d("b", "B", 2),
		d("a", "changed", 0, 1), // the same id with another body
		d("e", "E", 1),          // message 1 in a second bundle, and behind message 2
	})
	want := Result{Events: 6, Deliverable: 5, Delivered: 4, Lost: 1, Duplicated: 1, Redeliveries: 2, ChangedBodies: 1,
		OrderViolations: 1, Deliveries: 6}
	got := *res
	got.Findings = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

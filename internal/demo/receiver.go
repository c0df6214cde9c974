package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/outbound-webhooks/outbound/schemas"
)

// receiver is the local webhook endpoint: /hooks/<workspace>. It prints every
// call and answers 500 to the failing workspace, 200 to the others.
type receiver struct {
	out     *console
	failing map[string]bool // workspaces whose calls are answered 500
	base    string

	mu        sync.Mutex
	fails     int
	bundles   int
	singles   int
	seenIDs   map[string]bool // webhook-id: a redelivery carries the same one
	delivered map[string]bool // message ids
}

func newReceiver(out *console, failing map[string]bool, base string) *receiver {
	return &receiver{out: out, failing: failing, base: base, seenIDs: map[string]bool{}, delivered: map[string]bool{}}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ws, ok := strings.CutPrefix(req.URL.Path, "/hooks/")
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if !ok || req.Method != http.MethodPost || err != nil {
		http.Error(w, "not a webhook call", http.StatusBadRequest)
		return
	}
	var p struct {
		Chat        schemas.Chat      `json:"chat"`
		Message     *schemas.Message  `json:"message"`
		Messages    []schemas.Message `json:"messages"`
		Aggregation string            `json:"aggregation"`
	}
	_ = json.Unmarshal(body, &p)
	chat := fmt.Sprintf("chat %q (%s)", p.Chat.FullName, chatKind(p.Chat))

	if r.failing[ws] {
		r.mu.Lock()
		r.fails++
		n := r.fails
		r.mu.Unlock()
		note := ""
		if n == 1 {
			note = " (more than 10 in a row disable the webhook)"
		}
		r.out.event("✗ %-14s %s: answered 500, error %d in a row%s", ws, chat, n, note)
		http.Error(w, "the demo's failing receiver is down", http.StatusInternalServerError)
		return
	}

	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	again := r.seenIDs[id]
	r.seenIDs[id] = true
	msgs := p.Messages
	if p.Message != nil {
		msgs = []schemas.Message{*p.Message}
	}
	for _, m := range msgs {
		r.delivered[m.MessageID] = true
	}
	if !again {
		if p.Message != nil {
			r.singles++
		} else {
			r.bundles++
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)

	suffix := ""
	if again {
		suffix = "  (again: same webhook-id, receivers de-duplicate on it)"
	}
	if p.Message != nil {
		m := p.Message
		who := "from " + m.Sender.FullName
		if m.Direction == schemas.DirectionSent {
			who = "by " + m.Sender.FullName
		}
		r.out.event("→ %-14s %s: 1 message, %s %s: %s%s", ws, chat, m.Direction, who, m.Text, suffix)
		return
	}
	lines := strings.Split(p.Aggregation, "<br/>")
	for i := range lines {
		prefix := "             "
		if i == 0 {
			prefix = "aggregation: "
		}
		lines[i] = prefix + lines[i]
	}
	r.out.eventWith(lines, "→ %-14s %s: bundle of %s%s", ws, chat, plural(len(p.Messages), "message"), suffix)
}

func chatKind(c schemas.Chat) string {
	if c.IsGroup {
		return "group"
	}
	return "direct, " + c.Phone
}

func (r *receiver) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fails
}

func (r *receiver) counts() (bundles, singles int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bundles, r.singles
}

// missing counts the ids not delivered yet.
func (r *receiver) missing(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if !r.delivered[id] {
			n++
		}
	}
	return n
}

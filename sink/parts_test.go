package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// TestLargeWindowArrivesInOrderedParts: a busy chat's window goes out as
// ordered parts within both limits, each a valid bundle of its own; a part
// sent again keeps its id and body, a delivered part is never sent again, and
// every message arrives exactly once, in order.
func TestLargeWindowArrivesInOrderedParts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		textBytes int
		minParts  int
	}{
		{name: "600 B messages: cut by bytes", textBytes: 600, minParts: 4},
		{name: "10 B messages: cut by count", textBytes: 10, minParts: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const total = 2500
			type request struct {
				id   string
				body string
			}
			var (
				mu       sync.Mutex
				failed   = map[string]string{} // id -> body of the refused attempt
				accepted []request
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				body, _ := io.ReadAll(req.Body)
				id := req.Header.Get("webhook-id")
				mu.Lock()
				defer mu.Unlock()
				if _, ok := failed[id]; !ok {
					// Every part is refused once, so each is delivered again.
					failed[id] = string(body)
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				accepted = append(accepted, request{id, string(body)})
			}))
			defer srv.Close()
			h := hook("ws", srv.URL)
			h.Granularity = webhook.H1
			r := newRig(t, webhook.Fixed{"ws": h})

			// One window, closed an hour ago, so the flusher seals it at once.
			start := windowing.WindowStart(time.Now().Add(-2*time.Hour), time.Hour)
			var es []windowing.Entry
			for i := range total {
				es = append(es, windowing.Entry{Offset: int64(i + 1), Workspace: "ws", Epoch: 1, Granularity: webhook.H1,
					Chat: schemas.Chat{ChatID: "busy", FullName: "Busy chat", ChatURL: "https://app.example/chat/busy"},
					Message: windowing.Message{ID: fmt.Sprintf("m%04d", i), Direction: "sent", At: start.Add(time.Duration(i) * time.Second),
						Sender: schemas.Party{FullName: "Agent"}, Text: strings.Repeat("x", tc.textBytes)}})
			}
			if _, err := r.store.Append(context.Background(), 0, es, total, -1); err != nil {
				t.Fatal(err)
			}
			delivered := func() int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, a := range accepted {
					var p schemas.BundlePayload
					if err := json.Unmarshal([]byte(a.body), &p); err != nil {
						t.Fatal(err)
					}
					n += len(p.Messages)
				}
				return n
			}
			testenv.Eventually(t, "every message delivered", 60*time.Second, func() bool { return delivered() >= total })
			time.Sleep(200 * time.Millisecond) // lets a stray extra part show

			mu.Lock()
			defer mu.Unlock()
			if len(accepted) < tc.minParts {
				t.Fatalf("%d parts, want at least %d", len(accepted), tc.minParts)
			}
			var got []string
			for i, a := range accepted {
				if want := fmt.Sprintf("_p%d", i+1); !strings.HasSuffix(a.id, want) {
					t.Errorf("part %d has id %q, want the bundle's id + %q", i, a.id, want)
				}
				if failed[a.id] != a.body {
					t.Errorf("part %s changed between its two attempts", a.id)
				}
				if len(a.body) > sink.DefaultMaxBundleBytes {
					t.Errorf("part %s is %d bytes, over 1 MiB", a.id, len(a.body))
				}
				if err := schemas.ValidateBundlePayload([]byte(a.body)); err != nil {
					t.Errorf("part %s: %v", a.id, err)
				}
				var p schemas.BundlePayload
				if err := json.Unmarshal([]byte(a.body), &p); err != nil {
					t.Fatal(err)
				}
				if len(p.Messages) > sink.DefaultMaxBundleMessages {
					t.Errorf("part %s holds %d messages, over 1000", a.id, len(p.Messages))
				}
				first, last := p.Messages[0], p.Messages[len(p.Messages)-1]
				if !p.FirstMessageTimestamp.Equal(first.Timestamp.Time) || !p.LastMessageTimestamp.Equal(last.Timestamp.Time) {
					t.Errorf("part %s: timestamps %s..%s are not its own messages'", a.id, p.FirstMessageTimestamp, p.LastMessageTimestamp)
				}
				if n := strings.Count(p.Aggregation, "from Agent on "); n != len(p.Messages) {
					t.Errorf("part %s: aggregation joins %d messages, want its own %d", a.id, n, len(p.Messages))
				}
				for _, m := range p.Messages {
					got = append(got, m.MessageID)
				}
			}
			if len(failed) != len(accepted) {
				t.Errorf("%d part ids attempted, %d accepted: a delivered part was sent again", len(failed), len(accepted))
			}
			if len(got) != total {
				t.Fatalf("%d messages delivered, want %d exactly once", len(got), total)
			}
			for i, id := range got {
				if id != fmt.Sprintf("m%04d", i) {
					t.Fatalf("message %d is %s: out of order or repeated", i, id)
				}
			}
		})
	}
}

// TestAMessageOverTheByteLimitGoesAlone: a message larger than MaxBytes is
// not stuck: it makes a part of one.
func TestAMessageOverTheByteLimitGoesAlone(t *testing.T) {
	b := windowing.Bundle{ID: "obw_x", Workspace: "ws", ChatID: "c", Granularity: webhook.H1,
		Chat: schemas.Chat{ChatID: "c", FullName: "C"}}
	at := time.Date(2021, 2, 24, 16, 25, 0, 0, time.UTC)
	for i, n := range []int{10, 5000, 10} {
		b.Messages = append(b.Messages, windowing.Message{ID: fmt.Sprint("m", i), Direction: "sent", At: at.Add(time.Duration(i) * time.Minute), Text: strings.Repeat("y", n)})
	}
	lim := sink.BundleLimits{MaxBytes: 2000}
	var sizes []int
	for ; ; b.Part++ {
		p, err := sink.RenderPart(b, "TimelinesAI", lim)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != fmt.Sprintf("obw_x_p%d", b.Part+1) {
			t.Errorf("part %d has id %s", b.Part, p.ID)
		}
		sizes = append(sizes, p.Messages)
		if p.Last {
			break
		}
		b.Sent += p.Messages
	}
	if fmt.Sprint(sizes) != "[1 1 1]" {
		t.Fatalf("parts of %v messages, want [1 1 1]: the large one alone", sizes)
	}
}

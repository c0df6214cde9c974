package chaos

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-webhooks/outbound/internal/bgserve"
)

// delivery is one webhook call the receiver accepted (answered 200).
type delivery struct {
	At        time.Time `json:"at"`
	ID        string    `json:"webhook_id"`
	Workspace string    `json:"workspace"`
	Chat      string    `json:"chat"`
	Messages  []string  `json:"messages"` // message ids in payload order
	body      [sha256.Size]byte
}

// receiver is the customers' webhook endpoint: every workspace posts to
// /<workspace>. During an outage it answers 503 with Retry-After: 1 instead.
type receiver struct {
	srv *bgserve.Server
	url string

	down    atomic.Bool
	calls   atomic.Int64 // requests received
	refused atomic.Int64 // 503s answered during outages

	mu         sync.Mutex
	deliveries []delivery // in arrival order
	undecoded  int        // bodies that were not a payload of the spec
	seen       map[string]bool
	refusedBy  map[string]int // per webhook path, see maxRefused
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for webhooks: %w", err)
	}
	r := &receiver{url: "http://" + ln.Addr().String(), seen: map[string]bool{}, refusedBy: map[string]int{}}
	r.srv = bgserve.Serve(&http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}, ln)
	return r, nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.calls.Add(1)
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.refuse(req.URL.Path) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p struct {
		Chat struct {
			ChatID string `json:"chat_id"`
		} `json:"chat"`
		Message *struct {
			MessageID string `json:"message_id"`
		} `json:"message"`
		Messages []struct {
			MessageID string `json:"message_id"`
		} `json:"messages"`
	}
	d := delivery{At: time.Now(), ID: req.Header.Get("webhook-id"), Workspace: strings.TrimPrefix(req.URL.Path, "/"), body: sha256.Sum256(body)}
	decodeErr := json.Unmarshal(body, &p)
	d.Chat = p.Chat.ChatID
	if p.Message != nil {
		d.Messages = append(d.Messages, p.Message.MessageID)
	}
	for _, m := range p.Messages {
		d.Messages = append(d.Messages, m.MessageID)
	}
	r.mu.Lock()
	if decodeErr != nil || d.ID == "" || len(d.Messages) == 0 {
		r.undecoded++
	} else {
		r.deliveries = append(r.deliveries, d)
		for _, m := range d.Messages {
			r.seen[m] = true
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// recorded returns the deliveries so far and the count of undecodable bodies.
func (r *receiver) recorded() ([]delivery, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.deliveries...), r.undecoded
}

// distinct counts the distinct message ids delivered so far.
func (r *receiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// maxRefused caps the 503s of one webhook in an outage. Every attempt counts
// toward auto-disable, and a busy webhook has up to --per-webhook deliveries in
// flight per worker when the outage starts, each of which fails: an outage of
// even one second could disable it, which would stop its deliveries for good.
const maxRefused = 5

// refuse reports whether the request to path is to be refused; the outage ends
// early once one webhook has been refused maxRefused times.
func (r *receiver) refuse(path string) bool {
	if !r.down.Load() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refusedBy[path] >= maxRefused {
		r.down.Store(false)
		return false
	}
	r.refusedBy[path]++
	r.refused.Add(1)
	return true
}

// mostRefused is the most 503s one webhook got.
func (r *receiver) mostRefused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.refusedBy {
		n = max(n, v)
	}
	return n
}

// dump writes every delivery as a JSON line, for the post-mortem of a failed run.
func dump(path string, deliveries []delivery) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, d := range deliveries {
		if err := enc.Encode(d); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func (r *receiver) close() error {
	return r.srv.Close()
}

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/outbound-webhooks/outbound/internal/bgserve"
)

// receiver is the webhook receiver of every delivery phase: a real HTTP server
// on loopback that answers 200 at once, so what is measured is the sender.
type receiver struct {
	srv *bgserve.Server
	URL string

	requests atomic.Int64
	conns    atomic.Int64 // connections accepted: a sender that reuses them opens few
	// arrivals, when tracking, holds per event index the instant (Unix ns) its
	// first delivery arrived; the index is read from message.message_id, which
	// both a webhook payload and a raw event carry.
	arrivals []atomic.Int64
	foreign  atomic.Int64 // tracked requests whose message id was not the bench's
}

// startReceiver listens on a free loopback port; track > 0 records arrivals of
// events [0, track).
func startReceiver(track int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for webhooks: %w", err)
	}
	r := &receiver{URL: "http://" + ln.Addr().String()}
	if track > 0 {
		r.arrivals = make([]atomic.Int64, track)
	}
	r.srv = bgserve.Serve(&http.Server{
		Handler:           http.HandlerFunc(r.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				r.conns.Add(1)
			}
		},
	}, ln)
	return r, nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	at := time.Now().UnixNano()
	if r.arrivals == nil {
		_, _ = io.Copy(io.Discard, req.Body)
	} else {
		var body struct {
			Message struct {
				MessageID string `json:"message_id"`
			} `json:"message"`
		}
		err := json.NewDecoder(req.Body).Decode(&body)
		i, ok := messageIndex(body.Message.MessageID)
		if err != nil || !ok || i < 0 || i >= len(r.arrivals) {
			r.foreign.Add(1)
		} else {
			r.arrivals[i].CompareAndSwap(0, at)
		}
	}
	r.requests.Add(1)
	w.WriteHeader(http.StatusOK)
}

// close stops the receiver at once: the measurement it served is over, and
// Shutdown would wait 5 s for every connection a client dialled but never
// used.
func (r *receiver) close() error {
	return r.srv.Close()
}

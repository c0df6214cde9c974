package demo

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"time"

	// The demo has a console of its own: its terminal output.
	webconsole "github.com/outbound-webhooks/outbound/internal/console"
)

// page is the worker's HTTP server in the demo: the workspace page, the admin
// API and the probes, on a loopback port.
type page struct {
	ln         net.Listener
	base       string
	token, key string // the operator's sign-in token and the console key, fresh per run
	srv        *http.Server
	done       chan struct{}
}

// listenPage opens the page's listener before the worker is built, so that
// the worker knows its public URL.
func (d *demo) listenPage() error {
	addr := d.opts.PageAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for the workspace page: %w", err)
	}
	d.page = &page{ln: ln, base: "http://" + ln.Addr().String(), token: randomHex(), key: randomHex()}
	return nil
}

// servePage serves the worker's handler and prints where to look, with an
// owner link per workspace.
func (d *demo) servePage() error {
	p := d.page
	p.srv = &http.Server{Handler: d.worker.Handler(), ReadHeaderTimeout: 5 * time.Second}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		// Serve returns once close shuts the server down.
		_ = p.srv.Serve(p.ln)
	}()
	until := "until the demo ends (--follow keeps it up until Ctrl-C)"
	if d.opts.Follow {
		until = "until Ctrl-C"
	}
	d.out.line("  Page      %s/ %s; operators sign in with the token %s", p.base, until, p.token)
	for _, ws := range d.plan.workspaces {
		link, err := webconsole.ScopedLink(p.key, p.base, ws.id, time.Now())
		if err != nil {
			return err
		}
		d.out.line("            owner of %-14s %s", ws.id, link)
	}
	d.out.line("")
	return nil
}

func (p *page) close() {
	if p.srv == nil {
		_ = p.ln.Close()
		return
	}
	_ = p.srv.Close()
	<-p.done
}

// randomHex is a fresh secret for one run.
func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand's documented contract)
	return hex.EncodeToString(b)
}

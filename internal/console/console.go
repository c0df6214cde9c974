package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/windowing"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Config configures a Console. Redis, Publisher, Logs, Store and Partitions
// are required.
type Config struct {
	// Redis holds the control materialisation, the sink's health and the logs.
	Redis redis.UniversalClient
	// Prefix starts the keys of the workers' state (default "outbound").
	Prefix string
	// Publisher publishes what a form saves, as `outbound ctl` does.
	Publisher *control.Publisher
	// Logs are the webhooks' activity and request logs.
	Logs *webhooklog.Log
	// Store counts what a workspace has waiting, kept per events partition;
	// Partitions says how many partitions the events topic has.
	Store      *windowing.Store
	Partitions func(context.Context) (int, error)
	// AdminToken signs operators in; empty: only owner links open the page.
	AdminToken string
	// Key signs sessions, owner links and CSRF tokens; empty: a random key per
	// process (see the package comment).
	Key string
	// PublicURL is the page's address as browsers reach it (for owner links
	// and the Secure flag); empty: taken from each request.
	PublicURL string
	// Guard is the workers' SSRF guard: the form refuses a URL it would
	// refuse, by address or by port. Nil: no such check.
	Guard *sink.Guard
	// TimeScale and Grace are the workers', to say when the next bundle is due
	// (defaults 1 and 1m).
	TimeScale float64
	Grace     time.Duration
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Console serves the pages. It is an http.Handler meant for `/` of the
// worker's HTTP server.
type Console struct {
	cfg        Config
	sign       signer
	pages      map[string]*template.Template
	mux        *http.ServeMux
	partitions partitionCount
	signIns    *signInLimiter
}

// New validates cfg, fills its defaults and returns a Console.
func New(cfg Config) (*Console, error) {
	if cfg.Redis == nil || cfg.Publisher == nil || cfg.Logs == nil || cfg.Store == nil || cfg.Partitions == nil {
		return nil, errors.New("configuring the console: Redis, Publisher, Logs, Store and Partitions are required")
	}
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("configuring the console: the public URL must be an absolute http or https URL")
		}
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	if cfg.Grace == 0 {
		cfg.Grace = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, sign: signer{key: []byte(cfg.Key)}, pages: map[string]*template.Template{}, signIns: newSignInLimiter()}
	if cfg.Key == "" {
		k, err := randomKey()
		if err != nil {
			return nil, err
		}
		c.sign.key = k
	}
	for _, page := range []string{"signin.html", "overview.html", "workspace.html", "message.html"} {
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page)
		if err != nil {
			return nil, fmt.Errorf("parsing the console's %s: %w", page, err)
		}
		c.pages[page] = t
	}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("opening the console's assets: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /{$}", c.serveOverview)
	mux.HandleFunc("GET /signin", c.serveSignIn)
	mux.HandleFunc("POST /signin", c.signIn)
	mux.HandleFunc("POST /signout", c.signOut)
	mux.HandleFunc("GET /o/{token}", c.openLink)
	mux.HandleFunc("GET /w/{id}", c.serveWorkspace)
	mux.HandleFunc("POST /w/{id}/settings", c.saveSettings)
	mux.HandleFunc("POST /w/{id}/switch", c.switchWebhook)
	mux.HandleFunc("GET /w/{id}/requests.json", c.downloadRequests)
	c.mux = mux
	return c, nil
}

// ServeHTTP serves the console with headers that keep its pages out of caches
// and frames and allow no script at all.
func (c *Console) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h := rw.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// Owner links carry their token in the path: never send it on.
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, "/assets/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(rw, r)
}

// view is what every page template receives.
type view struct {
	Title string
	Who   scope
	// SignedIn is false on the sign-in page and the messages shown before one.
	SignedIn bool
	CSRF     string
	// Message is the text of message.html; Status its HTTP status.
	Message string
	Status  int

	SignIn    *signInView
	Overview  *overviewView
	Workspace *workspaceView
}

// render writes a page. An error after the header is out can only be a broken
// connection; before, it is ours and logged.
func (c *Console) render(rw http.ResponseWriter, r *http.Request, status int, page string, v view) {
	csrf, err := c.csrfToken(rw, r)
	if err != nil {
		c.failed(rw, r, err)
		return
	}
	v.CSRF = csrf
	v.Who, v.SignedIn = c.who(r)
	var buf strings.Builder
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.failed(rw, r, fmt.Errorf("rendering %s: %w", page, err))
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(status)
	_, _ = rw.Write([]byte(buf.String()))
}

// message renders a page that only says something, with status.
func (c *Console) message(rw http.ResponseWriter, r *http.Request, status int, title, msg string) {
	c.render(rw, r, status, "message.html", view{Title: title, Message: msg, Status: status})
}

// failed answers a request that our side could not serve (Redis, Kafka).
func (c *Console) failed(rw http.ResponseWriter, r *http.Request, err error) {
	c.cfg.Logger.Warn("serving the console", zap.String("path", r.URL.Path), zap.Error(err))
	http.Error(rw, "The page could not be served: Redis or Kafka did not answer. See the worker's log.", http.StatusServiceUnavailable)
}

// baseURL is where browsers reach the console.
func (c *Console) baseURL(r *http.Request) string {
	if c.cfg.PublicURL != "" {
		return strings.TrimRight(c.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

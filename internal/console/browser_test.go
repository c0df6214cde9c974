package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/outbound-webhooks/outbound/internal/app"
	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/console"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
)

const (
	adminToken = "console-admin-token"
	consoleKey = "console-key-for-tests"
)

// browserPath finds the headless browser. A missing one fails the test:
// the page is only proven in a real browser.
func browserPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OUTBOUND_TEST_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("no headless browser: run `bash scripts/chromium.sh install` (Debian's chromium via apt-get; `make test` does it), " +
			"or set OUTBOUND_TEST_CHROMIUM to a Chromium or Chrome binary")
	}
	return p
}

// artifacts is where screenshots go: $OUTBOUND_ARTIFACTS, else a directory
// under the system's temporary one that outlives the test.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OUTBOUND_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "outbound-console-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// newBrowser starts a headless browser, stopped at the test's cleanup, and
// returns a tab in it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browserPath(t)), chromedp.WindowSize(1100, 900))
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox on.
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", browserPath(t), err)
	}
	return ctx
}

// page drives one tab against the console.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// submit clicks sel and waits for the page the browser lands on: navigating
// away sooner would abort the form's POST.
func (p *page) submit(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.submitted = true`)); err != nil {
		p.t.Fatal(err)
	}
	p.do(chromedp.Click(chromedp.CSS(sel)))
	for {
		loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.submitted === undefined && document.readyState === "complete"`))
		if err == nil && loaded {
			return
		}
		if ctx.Err() != nil {
			p.t.Fatalf("submitting %s: no page loaded: %v", sel, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *page) location() string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		p.t.Fatal(err)
	}
	return loc
}

// open navigates to path and returns the page's text.
func (p *page) open(path string) string {
	p.t.Helper()
	p.do(chromedp.Navigate(p.base + path))
	return p.text("body")
}

// waitFor reloads path until the text of sel contains want: the page shows
// what the workers have materialised, which follows within about a second.
func (p *page) waitFor(path, sel, want string) {
	p.t.Helper()
	var last string
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		p.do(chromedp.Navigate(p.base + path))
		if last = p.text(sel); strings.Contains(last, want) {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	p.t.Fatalf("%s %s never showed %q; last:\n%s", path, sel, want, last)
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// TestWorkspacePageInABrowser drives the console of a real worker, on real
// Kafka and Redis, from headless Chromium: every step an operator or owner
// takes, and the refusals.
func TestWorkspacePageInABrowser(t *testing.T) {
	c := apptest.NewCluster(t, 2)
	recv := apptest.NewReceiver(t)
	recv.FailFor("ws_failing")
	// ws_held's receiver holds every request until the test lets it answer,
	// so that its bundles wait where the page can count them.
	release := make(chan struct{})
	held := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { letGo(); held.Close() })
	c.Publish(apptest.Configure("ws_shop", recv.Srv.URL+"/ws_shop", "none"),
		apptest.Configure("ws_failing", recv.Srv.URL+"/ws_failing", "none"),
		apptest.Configure("ws_busy", recv.Srv.URL+"/ws_busy", "none"),
		apptest.Configure("ws_held", held.URL+"/ws_held", "none"))
	w, err := app.New(app.Config{Brokers: c.Brokers, Kafka: c.Kafka, Redis: c.Redis, RedisKeyPrefix: c.KeyPrefix, GroupID: c.Group,
		EventsTopic: c.Events, ControlTopic: c.Control, DLQTopic: c.DLQ, SessionTimeout: 6 * time.Second,
		// Receivers are on loopback; the time scale makes backoff take
		// milliseconds, so that eleven failures take no minutes.
		AllowPrivate: true, TimeScale: 3600,
		AdminToken: adminToken, ConsoleKey: consoleKey}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	apptest.RunUntilCleanup(t, "worker", w.Run)
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)

	// Traffic: a few messages for the shop, 105 for the busy workspace (the
	// log keeps 100), one for the failing receiver.
	now := time.Now()
	var events []kafka.Message
	for i := range 3 {
		events = append(events, apptest.Event("ws_shop", "chat-s", fmt.Sprintf("s%d", i), now))
	}
	for i := range 105 {
		events = append(events, apptest.Event("ws_busy", fmt.Sprintf("chat-b%d", i%5), fmt.Sprintf("b%03d", i), now))
	}
	events = append(events, apptest.Event("ws_failing", "chat-f", "f0", now))
	kw := c.Writer()
	defer kw.Close()
	testenv.Eventually(t, "the worker consuming", 60*time.Second, func() bool { return len(w.Owned()) == 2 })
	if err := kw.WriteMessages(context.Background(), events...); err != nil {
		t.Fatal(err)
	}

	p := &page{t: t, ctx: newBrowser(t), base: srv.URL, dir: artifacts(t)}

	t.Run("sign in", func(t *testing.T) {
		p.t = t
		if body := p.open("/"); !strings.Contains(body, "Admin token") {
			t.Fatalf("/ signed out does not ask for the admin token:\n%s", body)
		}
		p.do(chromedp.SendKeys(chromedp.CSS("#token"), "wrong"))
		p.submit("#signin")
		if body := p.text("body"); !strings.Contains(body, "not the admin token") {
			t.Fatalf("a wrong token was not refused in words:\n%s", body)
		}
		p.do(chromedp.SendKeys(chromedp.CSS("#token"), adminToken))
		p.submit("#signin")
		body := p.text("body")
		for _, ws := range []string{"ws_shop", "ws_failing", "ws_busy", "Operator"} {
			if !strings.Contains(body, ws) {
				t.Errorf("overview lacks %s:\n%s", ws, body)
			}
		}
		if body := p.open("/?q=shop"); !strings.Contains(body, "ws_shop") || strings.Contains(body, "ws_busy") {
			t.Errorf("searching for shop:\n%s", body)
		}
		p.screenshot("overview")
	})

	t.Run("validation errors in words, nothing published", func(t *testing.T) {
		p.t = t
		p.open("/w/ws_shop")
		p.do(chromedp.SetValue(chromedp.CSS("#owner_email"), "owner at example"))
		p.submit("#save")
		if got := p.text("#owner-email-problem"); !strings.Contains(got, "not an email address") {
			t.Errorf("owner email problem = %q", got)
		}
		p.screenshot("validation")
	})

	t.Run("change granularity and URL, see the activity", func(t *testing.T) {
		p.t = t
		p.open("/w/ws_shop")
		p.do(chromedp.Click(chromedp.CSS(`input[name=granularity][value="1h"]`)),
			chromedp.SetValue(chromedp.CSS("#url"), recv.Srv.URL+"/ws_shop?v=2"))
		p.submit("#save")
		p.waitFor("/w/ws_shop", "#activity", "configured")
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		checked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[name=granularity][value="1h"]').checked`))
		if err != nil || !checked {
			t.Errorf("1h is not the saved granularity (checked %v, %v)", checked, err)
		}
		url, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#url")))
		if err != nil || !strings.HasSuffix(url, "/ws_shop?v=xxxxx") {
			t.Errorf("URL field = %q (%v), want the new URL with its query redacted", url, err)
		}
		if due := p.text("#next-due"); !strings.Contains(due, "1h window closes") {
			t.Errorf("next due = %q", due)
		}
	})

	t.Run("disable then enable", func(t *testing.T) {
		p.t = t
		p.open("/w/ws_shop")
		p.submit("#switch")
		// The page waits for the workers; it may already have seen them apply it.
		if loc := p.location(); !strings.Contains(loc, "pending=") {
			t.Errorf("after switching off, the page is %s, not the one that waits for the change", loc)
		}
		p.screenshot("pending")
		p.waitFor("/w/ws_shop", "#state", "Disabled by an operator")
		p.screenshot("disabled")
		p.submit("#switch")
		p.waitFor("/w/ws_shop", "#state", "Enabled")
		p.waitFor("/w/ws_shop", "#activity", "enabled")
	})

	t.Run("bundles waiting", func(t *testing.T) {
		p.t = t
		var held []kafka.Message
		for i := range 3 {
			held = append(held, apptest.Event("ws_held", "chat-h", fmt.Sprintf("h%d", i), time.Now()))
		}
		if err := kw.WriteMessages(context.Background(), held...); err != nil {
			t.Fatal(err)
		}
		// The first is being delivered, the others queue behind it.
		p.waitFor("/w/ws_held", "#waiting", "3 queued for delivery")
		p.screenshot("waiting")
		letGo()
		p.waitFor("/w/ws_held", "#waiting", "0 queued for delivery")
	})

	t.Run("a failing receiver reaches auto-disable", func(t *testing.T) {
		p.t = t
		p.waitFor("/w/ws_failing", "#state", "Auto-disabled")
		if got := p.text("#last-error"); !strings.Contains(got, "500") {
			t.Errorf("last error = %q, want the receiver's 500 in words", got)
		}
		if got := p.text("#errors"); !strings.HasPrefix(got, "11") {
			t.Errorf("errors in a row = %q, want 11", got)
		}
		p.screenshot("auto-disabled")
		if body := p.open("/?filter=disabled"); !strings.Contains(body, "ws_failing") || strings.Contains(body, "ws_busy") {
			t.Errorf("the overview filtered on disabled:\n%s", body)
		}
		p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
		p.open("/w/ws_failing")
		p.screenshot("auto-disabled-phone")
		p.do(chromedp.EmulateViewport(1100, 900))
	})

	t.Run("download the request log", func(t *testing.T) {
		p.t = t
		testenv.Eventually(t, "105 deliveries of ws_busy", 90*time.Second, func() bool {
			n := 0
			for _, d := range recv.Snapshot() {
				if d.Workspace == "ws_busy" {
					n++
				}
			}
			return n >= 105
		})
		// The chart counts every delivery, not only the 100 the log keeps.
		p.waitFor("/w/ws_busy", "#chart-legend", "deliveries (105)")
		p.screenshot("workspace")
		dir := t.TempDir()
		progress := chromedp.BrowserEvents(p.ctx, browser.DownloadProgress)
		p.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: ptr(true)})
			return err
		}), chromedp.Click(chromedp.CSS("#download")))
		var file string
		for ev, err := range progress {
			if err != nil {
				t.Fatal(err)
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				file = filepath.Join(dir, ev.GUID)
				break
			}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var log webhooklog.RequestLog
		if err := json.Unmarshal(data, &log); err != nil {
			t.Fatalf("the download does not parse: %v\n%s", err, data)
		}
		if log.Workspace != "ws_busy" || len(log.Requests) != webhooklog.RequestsSize {
			t.Fatalf("download of %q holds %d requests, want ws_busy and %d", log.Workspace, len(log.Requests), webhooklog.RequestsSize)
		}
	})

	t.Run("a POST without the CSRF token is refused", func(t *testing.T) {
		p.t = t
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		p.open("/w/ws_shop")
		cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL}})
		if err != nil {
			t.Fatal(err)
		}
		jar := make([]string, 0, len(cookies.Cookies))
		for _, ck := range cookies.Cookies {
			jar = append(jar, ck.Name+"="+ck.Value)
		}
		for name, form := range map[string]url.Values{
			"no token":    {"on": {"0"}},
			"wrong token": {"on": {"0"}, "csrf": {"AAAA"}},
		} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/w/ws_shop/switch", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", strings.Join(jar, "; "))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: POST answered %d, want 403", name, resp.StatusCode)
			}
		}
		if st := p.text("#state"); !strings.Contains(st, "Enabled") {
			t.Errorf("state after refused POSTs = %q, want Enabled", st)
		}
	})

	t.Run("an owner link opens one workspace only", func(t *testing.T) {
		owner, cancel := chromedp.NewContext(p.ctx, chromedp.WithNewBrowserContext())
		defer cancel()
		// The first run makes the tab and must outlive it: no timeout.
		if err := chromedp.Do(owner); err != nil {
			t.Fatal(err)
		}
		o := &page{t: t, ctx: owner, base: srv.URL, dir: p.dir}
		link, err := console.ScopedLink(consoleKey, srv.URL, "ws_failing", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		o.do(chromedp.Navigate(link))
		if body := o.text("body"); !strings.Contains(body, "Webhook of ws_failing") || !strings.Contains(body, "Owner of ws_failing") {
			t.Fatalf("the owner link does not open ws_failing:\n%s", body)
		}
		o.screenshot("owner")
		for _, path := range []string{"/", "/w/ws_shop", "/w/ws_shop/requests.json", "/?q=ws"} {
			if body := o.open(path); !strings.Contains(body, "one workspace's page only") || strings.Contains(body, "ws_shop") {
				t.Errorf("owner of ws_failing at %s:\n%s", path, body)
			}
		}
		// One character of the signature changed: "xx" in place of the last
		// two could spell the same signature again.
		i := len(link) - 10
		c := byte('A')
		if link[i] == c {
			c = 'B'
		}
		forged := link[:i] + string(c) + link[i+1:]
		if body := o.open(strings.TrimPrefix(forged, srv.URL)); !strings.Contains(body, "not valid") {
			t.Errorf("a forged link was accepted:\n%s", body)
		}
	})
}

func ptr[T any](v T) *T { return &v }

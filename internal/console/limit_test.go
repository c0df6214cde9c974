package console

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/windowing"
)

// operatorFrom is a browser-like client whose connections come from ip, a
// loopback address: the server sees a different client for each.
type operatorFrom struct {
	t    *testing.T
	http *http.Client
	base string
}

func newOperatorFrom(t *testing.T, base, ip string) *operatorFrom {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &operatorFrom{t: t, base: base, http: &http.Client{Jar: jar, Transport: &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfInForm = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn sends the sign-in form with token and returns the answer.
func (o *operatorFrom) signIn(token string) (status int, body, retryAfter string, session bool) {
	o.t.Helper()
	resp, err := o.http.Get(o.base + "/signin")
	if err != nil {
		o.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInForm.FindSubmatch(page)
	if m == nil {
		o.t.Fatalf("no CSRF token in the sign-in page:\n%s", page)
	}
	resp, err = o.http.PostForm(o.base+"/signin", url.Values{"csrf": {string(m[1])}, "token": {token}, "next": {"/"}})
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		session = session || (ck.Name == sessionCookie && ck.Value != "")
	}
	return resp.StatusCode, string(b), resp.Header.Get("Retry-After"), session
}

// TestSignInIsRateLimited tries the admin token over real sockets from
// several loopback addresses: each address gets a few tries a minute, all of
// them together a few more, and a refused try is not even checked.
func TestSignInIsRateLimited(t *testing.T) {
	rdb := testenv.Redis(t)
	pub, err := control.NewPublisher(control.PublisherConfig{Brokers: testenv.KafkaBrokers(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	store, err := windowing.NewStore(windowing.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	clk := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	c, err := New(Config{Redis: rdb, Publisher: pub, Logs: webhooklog.New(rdb, testenv.KeyPrefix()), Store: store,
		Partitions: func(context.Context) (int, error) { return 1, nil }, AdminToken: "right", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)

	a := newOperatorFrom(t, srv.URL, "127.0.0.1")
	for i := range perClientBurst {
		if status, body, _, _ := a.signIn("wrong"); status != http.StatusUnauthorized || !strings.Contains(body, "not the admin token") {
			t.Fatalf("wrong token #%d: %d\n%s", i+1, status, body)
		}
	}
	status, body, retry, session := a.signIn("right")
	if status != http.StatusTooManyRequests || session || retry != "12" ||
		!strings.Contains(body, "Too many sign-in attempts from your address. The token was not checked: try again in 12 seconds.") {
		t.Fatalf("attempt %d from one address: %d, Retry-After %q, session %v\n%s", perClientBurst+1, status, retry, session, body)
	}
	if status, _, _, session := newOperatorFrom(t, srv.URL, "127.0.0.2").signIn("right"); status != http.StatusSeeOther || !session {
		t.Fatalf("another address was held back with the first: %d, session %v", status, session)
	}
	clk.Advance(perClientEvery)
	if status, _, _, session := a.signIn("right"); status != http.StatusSeeOther || !session {
		t.Fatalf("the first address, %s later: %d, session %v", perClientEvery, status, session)
	}

	// Many addresses: the global cap stops them, each still within its own.
	allowed := 0
	for ip := 10; ip < 100; ip++ {
		o := newOperatorFrom(t, srv.URL, "127.0.0."+strconv.Itoa(ip))
		for range perClientBurst - 1 {
			status, body, _, _ := o.signIn("wrong")
			if status == http.StatusUnauthorized {
				allowed++
				continue
			}
			if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many sign-in attempts on this server.") {
				t.Fatalf("127.0.0.%d: %d\n%s", ip, status, body)
			}
			if allowed > globalBurst {
				t.Fatalf("the global cap let %d attempts through, want at most %d", allowed, globalBurst)
			}
			clk.Advance(globalEvery)
			if status, _, _, _ := newOperatorFrom(t, srv.URL, "127.0.0.200").signIn("wrong"); status != http.StatusUnauthorized {
				t.Fatalf("%s after the global cap, a new address got %d, want its token checked", globalEvery, status)
			}
			return
		}
	}
	t.Fatalf("%d attempts from 90 addresses, and the global cap never held one back", allowed)
}

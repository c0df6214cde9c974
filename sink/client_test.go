package sink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// newLocalClient is the delivery client with the guard off, for tests whose
// receiver is an httptest server on 127.0.0.1.
func newLocalClient(t *testing.T, cfg ClientConfig) *http.Client {
	t.Helper()
	cfg.AllowPrivate = true
	cfg.dialHook = loopbackOnly(t)
	c, err := NewHTTPClient(cfg)
	if err != nil {
		t.Fatalf("NewHTTPClient: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// countingServer starts a server that counts the TCP connections it accepts.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestNewHTTPClientConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ClientConfig
		wantErr string
	}{
		{name: "zero value takes defaults", cfg: ClientConfig{}},
		{name: "explicit values", cfg: ClientConfig{ConnectTimeout: time.Second, RequestTimeout: 2 * time.Second, MaxResponseBody: 10, UserAgent: "x"}},
		{name: "negative connect timeout", cfg: ClientConfig{ConnectTimeout: -1}, wantErr: "connect timeout"},
		{name: "negative request timeout", cfg: ClientConfig{RequestTimeout: -time.Second}, wantErr: "request timeout"},
		{name: "negative max body", cfg: ClientConfig{MaxResponseBody: -5}, wantErr: "max response body"},
		{name: "bad allowed ports", cfg: ClientConfig{AllowedPorts: "80,http"}, wantErr: "parsing allowed ports"},
		{name: "bad denied ports", cfg: ClientConfig{DeniedPorts: "0"}, wantErr: "parsing denied ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewHTTPClient(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewHTTPClient() error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewHTTPClient() error = %v", err)
			}
			want := tt.cfg.WithDefaults()
			if c.Timeout != want.RequestTimeout {
				t.Errorf("Timeout = %s, want %s", c.Timeout, want.RequestTimeout)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	got := ClientConfig{}.WithDefaults()
	want := ClientConfig{
		ConnectTimeout:  5 * time.Second,
		RequestTimeout:  15 * time.Second,
		MaxResponseBody: 64 << 10,
		UserAgent:       DefaultUserAgent,
	}
	if got.ConnectTimeout != want.ConnectTimeout || got.RequestTimeout != want.RequestTimeout ||
		got.MaxResponseBody != want.MaxResponseBody || got.UserAgent != want.UserAgent {
		t.Errorf("WithDefaults() = %+v, want %+v", got, want)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
	}))
	defer srv.Close()

	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, srv.URL+"/elsewhere", code)
			})
			hook := httptest.NewServer(mux)
			defer hook.Close()

			c := newLocalClient(t, ClientConfig{})
			resp, err := c.Post(hook.URL+"/hook", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Errorf("status = %d, want %d (the redirect itself)", resp.StatusCode, code)
			}
			if got := resp.Header.Get("Location"); got != srv.URL+"/elsewhere" {
				t.Errorf("Location = %q", got)
			}
		})
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("redirect target was called %d times, want 0", n)
	}
}

func TestClientCapsLargeResponse(t *testing.T) {
	const size = 1 << 20
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), size))
	}))
	cfg := ClientConfig{}
	c := newLocalClient(t, cfg)
	max := cfg.WithDefaults().MaxResponseBody

	for i := range 2 {
		resp, err := c.Post(srv.URL, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatalf("Post %d: %v", i, err)
		}
		body, truncated, err := ReadCapped(resp.Body, max)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("ReadCapped: %v", err)
		}
		if int64(len(body)) != 64<<10 || !truncated {
			t.Errorf("ReadCapped() = %d bytes, truncated %v; want 65536 bytes, truncated", len(body), truncated)
		}
	}
	// The rest of the megabyte was drained, so the connection went back to the pool.
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1 (reused)", n)
	}
}

func TestClientRequestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Wait past the client's timeout, but let the server close promptly
		// once the client gives up. The server notices a closed connection only
		// once the request body has been read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()

	c := newLocalClient(t, ClientConfig{RequestTimeout: 200 * time.Millisecond})
	start := time.Now()
	resp, err := c.Post(srv.URL, "application/json", strings.NewReader(`{}`))
	elapsed := time.Since(start)
	if err == nil {
		resp.Body.Close()
		t.Fatal("Post succeeded, want a timeout")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error = %v, want a net.Error with Timeout() true", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("gave up after %s, want about 200ms", elapsed)
	}
}

func TestClientReusesConnections(t *testing.T) {
	var (
		mu         sync.Mutex
		userAgents []string
	)
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		userAgents = append(userAgents, r.UserAgent())
		mu.Unlock()
		w.Write([]byte(`ok`))
	}))
	c := newLocalClient(t, ClientConfig{UserAgent: "outbound-test/1"})

	const requests = 5
	for i := range requests {
		resp, err := c.Post(srv.URL, "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatalf("Post %d: %v", i, err)
		}
		body, truncated, err := ReadCapped(resp.Body, 1024)
		resp.Body.Close()
		if err != nil || truncated || string(body) != "ok" {
			t.Fatalf("ReadCapped() = %q, %v, %v", body, truncated, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d sequential requests opened %d connections, want 1", requests, n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, ua := range userAgents {
		if ua != "outbound-test/1" {
			t.Errorf("request %d User-Agent = %q, want the configured one", i, ua)
		}
	}
}

func TestClientKeepsCallersUserAgent(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.UserAgent()
	}))
	defer srv.Close()
	c := newLocalClient(t, ClientConfig{})
	req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
	req.Header.Set("User-Agent", "caller/2")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ua := <-got; ua != "caller/2" {
		t.Errorf("User-Agent = %q, want the request's own", ua)
	}
}

func TestClientIgnoresProxyEnvironment(t *testing.T) {
	var proxyHits atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxyHits.Add(1)
	}))
	defer proxy.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	// net/http never proxies requests to localhost or 127.0.0.1, so the target
	// has a host name (resolved to 127.0.0.1 by the fake DNS) for the proxy
	// setting to matter.
	dns := startFakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	c := newLocalClient(t, ClientConfig{Resolver: dns.resolver()})
	resp, err := c.Get(fmt.Sprintf("http://receiver.test:%d/", srv.Listener.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := proxyHits.Load(); n != 0 {
		t.Errorf("proxy got %d requests, want 0", n)
	}
	if !dns.asked("receiver.test.") {
		t.Error("the client did not resolve the target itself")
	}
}

// shortReader returns its data, then err instead of io.EOF.
type shortReader struct {
	data []byte
	err  error
}

func (r *shortReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadCapped(t *testing.T) {
	errBoom := errors.New("connection reset")
	tests := []struct {
		name          string
		r             io.Reader
		max           int64
		wantLen       int
		wantTruncated bool
		wantErr       bool
		wantLeft      int // bytes still unread in the source after the call, -1: unknown
	}{
		{name: "empty", r: strings.NewReader(""), max: 10, wantLen: 0, wantLeft: 0},
		{name: "shorter than max", r: strings.NewReader("hello"), max: 10, wantLen: 5, wantLeft: 0},
		{name: "exactly max", r: strings.NewReader("0123456789"), max: 10, wantLen: 10, wantLeft: 0},
		{name: "one byte over", r: strings.NewReader("0123456789a"), max: 10, wantLen: 10, wantTruncated: true, wantLeft: 0},
		{name: "zero max", r: strings.NewReader("abc"), max: 0, wantLen: 0, wantTruncated: true, wantLeft: 0},
		{name: "negative max reads nothing", r: strings.NewReader("abc"), max: -1, wantLen: 0, wantTruncated: true, wantLeft: 0},
		{
			name: "drains at most a MiB beyond max", r: bytes.NewReader(make([]byte, 10+maxDrain+7)), max: 10,
			wantLen: 10, wantTruncated: true, wantLeft: 7,
		},
		{name: "error within max", r: &shortReader{data: []byte("abc"), err: errBoom}, max: 10, wantLen: 3, wantErr: true, wantLeft: -1},
		{
			// The kept body is whole; whether more was coming is unknown.
			name: "error past max", r: &shortReader{data: []byte("0123456789"), err: errBoom}, max: 10,
			wantLen: 10, wantTruncated: true, wantLeft: -1,
		},
		{name: "one byte at a time", r: iotest.OneByteReader(strings.NewReader("abcdef")), max: 4, wantLen: 4, wantTruncated: true, wantLeft: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, truncated, err := ReadCapped(tt.r, tt.max)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, errBoom) {
				t.Errorf("err = %v, want it to wrap the reader's error", err)
			}
			if len(body) != tt.wantLen || truncated != tt.wantTruncated {
				t.Errorf("ReadCapped() = %d bytes, truncated %v; want %d, %v", len(body), truncated, tt.wantLen, tt.wantTruncated)
			}
			if tt.wantLeft >= 0 {
				if br, ok := tt.r.(interface{ Len() int }); ok && br.Len() != tt.wantLeft {
					t.Errorf("%d bytes left unread, want %d", br.Len(), tt.wantLeft)
				}
			}
		})
	}
}

package sink

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/outbound-webhooks/outbound/windowing"
)

// Defaults of ClientConfig.
const (
	DefaultConnectTimeout  = 5 * time.Second
	DefaultRequestTimeout  = windowing.DefaultRequestTimeout
	DefaultMaxResponseBody = 64 << 10
	DefaultUserAgent       = "outbound-webhooks"
)

// maxDrain is how much of a response beyond the kept part ReadCapped reads and
// throws away. A connection can only go back to the idle pool once its body has
// been read to the end; reading up to a MiB is cheaper than a new TCP and TLS
// handshake, and a receiver that sends more than that gets its connection closed.
const maxDrain = 1 << 20

// ClientConfig configures the HTTP client of webhook deliveries. The zero value is
// usable: NewHTTPClient fills the defaults.
type ClientConfig struct {
	// ConnectTimeout bounds the TCP connect and, separately, the TLS handshake.
	// Default 5s.
	ConnectTimeout time.Duration
	// RequestTimeout bounds a whole request: connect, send, wait for the answer and
	// read the response body. Default 15s. A receiver slower than that counts as a
	// failed delivery, which is what keeps one slow webhook from holding a
	// delivery slot.
	RequestTimeout time.Duration
	// AllowPrivate turns the SSRF guard off, so loopback, private and link-local
	// addresses can be dialled. Only for demos and tests whose receivers run
	// locally: in production it lets customers make the worker call internal
	// services.
	AllowPrivate bool
	// AllowedPorts and DeniedPorts are the port policy (see ParsePortPolicy):
	// a delivery may dial a port in an allowed range and in no denied one.
	// Defaults DefaultAllowedPorts and DefaultDeniedPorts. AllowPrivate does
	// not lift it: a receiver on 127.0.0.1:6379 is Redis.
	AllowedPorts, DeniedPorts string
	// Resolver resolves webhook host names; nil means net.DefaultResolver. Every
	// address it returns still goes through the guard.
	Resolver *net.Resolver
	// MaxResponseBody is how much of a receiver's response the delivery loop keeps
	// (for the request log) when it calls ReadCapped. Default 64 KiB. The client
	// itself does not cut bodies: the caller decides what it reads.
	MaxResponseBody int64
	// UserAgent is sent with every request that does not set its own.
	// Default "outbound-webhooks".
	UserAgent string

	// dialHook, when set, runs after the guard has accepted an address and just
	// before connect(2). Tests use it to prove nothing but loopback is ever dialled.
	dialHook func(network, address string) error
}

// WithDefaults returns cfg with every unset field filled with its default, so the
// delivery loop can read the effective MaxResponseBody.
func (cfg ClientConfig) WithDefaults() ClientConfig {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxResponseBody == 0 {
		cfg.MaxResponseBody = DefaultMaxResponseBody
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.AllowedPorts == "" {
		cfg.AllowedPorts = DefaultAllowedPorts
	}
	if cfg.DeniedPorts == "" {
		cfg.DeniedPorts = DefaultDeniedPorts
	}
	return cfg
}

// Guard returns the SSRF guard cfg configures, for deliveries and for checking
// a webhook URL when it is configured.
func (cfg ClientConfig) Guard() (Guard, error) {
	cfg = cfg.WithDefaults()
	ports, err := ParsePortPolicy(cfg.AllowedPorts, cfg.DeniedPorts)
	if err != nil {
		return Guard{}, err
	}
	return Guard{allowPrivate: cfg.AllowPrivate, ports: ports}, nil
}

func (cfg ClientConfig) validate() error {
	var errs []error
	if cfg.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("connect timeout %s is negative", cfg.ConnectTimeout))
	}
	if cfg.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("request timeout %s is negative", cfg.RequestTimeout))
	}
	if cfg.MaxResponseBody < 0 {
		errs = append(errs, fmt.Errorf("max response body %d is negative", cfg.MaxResponseBody))
	}
	return errors.Join(errs...)
}

// NewHTTPClient returns the client deliveries are sent with. It:
//   - refuses, at dial time, addresses and ports the SSRF guard blocks (see
//     Guard.CheckAddress); AllowPrivate lifts the address ranges only;
//   - ignores HTTP_PROXY and friends: through a proxy the guard would only see the
//     proxy's address, and the proxy would reach whatever the URL names;
//   - does not follow redirects: a 3xx comes back as the response, which the
//     delivery loop counts as an error. Following it would send the signed
//     payload to a URL the customer never configured, and a redirect to
//     127.0.0.1 would be one more way around the guard;
//   - keeps connections alive, with enough idle connections per host for many
//     workspaces that share one receiver (hooks.zapier.com, for one).
func NewHTTPClient(cfg ClientConfig) (*http.Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("validating client config: %w", err)
	}
	cfg = cfg.WithDefaults()
	guard, err := cfg.Guard()
	if err != nil {
		return nil, fmt.Errorf("validating client config: %w", err)
	}

	dialer := newGuardedDialer(&net.Dialer{
		Timeout:   cfg.ConnectTimeout,
		KeepAlive: 30 * time.Second,
		Resolver:  cfg.Resolver,
	}, guard, cfg.dialHook)

	transport := &http.Transport{
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// A custom DialContext turns HTTP/2 off unless asked for; receivers
		// that speak it multiplex all deliveries on one connection.
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		ExpectContinueTimeout: time.Second,
		// Many workspaces share a receiver host (hooks.zapier.com, for one), so
		// keep as many idle connections to a host as deliveries can be in
		// flight; fewer means a new TCP (and TLS) handshake per delivery.
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		// Headers are held in memory whole; a receiver has no reason to send
		// more than this, and a hostile one should not cost a megabyte each.
		MaxResponseHeaderBytes: 64 << 10,
	}

	return &http.Client{
		Transport: &userAgentTransport{base: transport, userAgent: cfg.UserAgent},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: cfg.RequestTimeout,
	}, nil
}

// userAgentTransport sets the User-Agent on requests that have none.
type userAgentTransport struct {
	base      *http.Transport
	userAgent string
}

func (t *userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := req.Header["User-Agent"]; !ok {
		// A RoundTripper must not modify the caller's request.
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.userAgent)
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (t *userAgentTransport) CloseIdleConnections() {
	t.base.CloseIdleConnections()
}

// ReadCapped reads at most max bytes of r, then reads and discards up to 1 MiB
// more so that an HTTP connection can be reused. truncated reports that r had
// more than max bytes, or that whether it had could not be found out because
// reading past max failed. err is only about the first max bytes: a failure
// while discarding does not make the kept body wrong, it only costs the
// connection, which the transport closes by itself.
func ReadCapped(r io.Reader, max int64) (body []byte, truncated bool, err error) {
	if max < 0 {
		max = 0
	}
	body, err = io.ReadAll(io.LimitReader(r, max))
	if err != nil {
		return body, false, fmt.Errorf("reading response body: %w", err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, maxDrain))
	return body, n > 0 || err != nil, nil
}

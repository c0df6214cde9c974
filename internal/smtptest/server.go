package smtptest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted mail transaction.
type Message struct {
	// From is the envelope sender (MAIL FROM), To the envelope recipients (RCPT TO).
	From string
	To   []string
	// TLS says whether the message came over a TLS connection.
	TLS bool
	// AuthUser is the PLAIN identity the client authenticated as, "" if it did not.
	AuthUser string
	// Data is the message as transmitted, dot-unstuffed, with "\n" line endings.
	Data []byte
	// Header is Data's header; Subject is decoded from RFC 2047 encoded words.
	Header  mail.Header
	Subject string
	// Body is Data's body, decoded from quoted-printable or base64 when the
	// Content-Transfer-Encoding says so. It is Data's raw body when Data does not
	// parse as a message.
	Body string
	// ParseError says why Data did not parse as an RFC 5322 message, if it did not.
	ParseError error
}

// Server is a running SMTP server. Its methods are safe for concurrent use.
type Server struct {
	ln   net.Listener
	smtp *smtp.Server
	done chan struct{} // closed when Serve returned

	mu        sync.Mutex
	msgs      []Message
	arrived   chan struct{} // closed and replaced whenever a message is accepted
	failNext  int
	onMessage func(Message)
}

// maxMessageBytes bounds one message so that a runaway client cannot exhaust memory.
const maxMessageBytes = 10 << 20

// idleTimeout closes connections whose client went silent, so Close never waits
// on a half-dead peer for long.
const idleTimeout = time.Minute

// New listens on addr ("127.0.0.1:0" picks a free port) and serves until Close.
func New(addr string) (*Server, error) { return NewTLS(addr, TLSNone, nil) }

// TLSMode is how a server started by NewTLS secures its connections.
type TLSMode int

const (
	TLSNone     TLSMode = iota // plain text only
	TLSStartTLS                // plain text, STARTTLS offered
	TLSImplicit                // TLS from the first byte (smtps)
)

// NewTLS is New with TLS as mode says, presenting cert (see SelfSigned).
func NewTLS(addr string, mode TLSMode, cert *tls.Config) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if mode == TLSImplicit {
		ln = tls.NewListener(ln, cert)
	}
	s := &Server{ln: ln, arrived: make(chan struct{}), done: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{srv: s, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.MaxMessageBytes = maxMessageBytes
	srv.ReadTimeout, srv.WriteTimeout = idleTimeout, idleTimeout
	// Credentials in plain text are fine here: the server only listens where its
	// tests and the demo run.
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if mode == TLSStartTLS {
		srv.TLSConfig = cert
	}
	s.smtp = srv
	go func() {
		defer close(s.done)
		_ = srv.Serve(ln)
	}()
	return s, nil
}

// Start starts a server on 127.0.0.1 and closes it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New("127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting SMTP server: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// SelfSigned returns a server TLS config with a fresh self-signed certificate
// for 127.0.0.1 and localhost, and the pool that trusts it.
func SelfSigned() (*tls.Config, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtptest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}, pool, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's address as an smtp:// URL without credentials.
func (s *Server) URL() string { return "smtp://" + s.Addr() }

// Messages returns a copy of the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitFor returns the accepted messages as soon as there are at least n, or
// ctx's error (with the count reached) when ctx ends first.
func (s *Server) WaitFor(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return msgs, nil
		}
		arrived, have := s.arrived, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return s.Messages(), fmt.Errorf("waiting for %d messages (have %d): %w", n, have, ctx.Err())
		}
	}
}

// FailNext makes the next n DATA transactions fail with a transient "451" reply
// after the client sent the whole message; nothing is stored for them.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// OnMessage registers fn to be called with every message accepted from now on,
// before the client's DATA is acknowledged. fn must not block for long: it holds up
// the client. A nil fn removes the callback.
func (s *Server) OnMessage(fn func(Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMessage = fn
}

// Close stops listening, closes open connections and waits until the server
// stopped serving.
func (s *Server) Close() error {
	err := s.smtp.Close()
	<-s.done
	if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("closing SMTP server: %w", err)
	}
	return nil
}

// session is one client connection's transaction state.
type session struct {
	srv      *Server
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

func (c *session) AuthMechanisms() []string { return []string{sasl.Plain} }

// Auth accepts any PLAIN credentials and records the identity.
func (c *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, _ string) error {
		c.authUser = username
		return nil
	}), nil
}

func (c *session) Mail(from string, _ *smtp.MailOptions) error {
	c.from = from
	return nil
}

func (c *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	c.to = append(c.to, to)
	return nil
}

func (c *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, secure := c.conn.TLSConnectionState()
	m := Message{From: c.from, To: slices.Clone(c.to), AuthUser: c.authUser, TLS: secure,
		Data: bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))}
	if !c.srv.accept(m) {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "transient failure (smtptest FailNext)"}
	}
	return nil
}

func (c *session) Reset() { c.from, c.to = "", nil }

func (c *session) Logout() error { return nil }

// accept stores m unless a FailNext is pending; it reports whether it stored m.
func (s *Server) accept(m Message) bool {
	parse(&m)
	s.mu.Lock()
	if s.failNext > 0 {
		s.failNext--
		s.mu.Unlock()
		return false
	}
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
	fn := s.onMessage
	s.mu.Unlock()
	if fn != nil {
		fn(m)
	}
	return true
}

// parse fills Header, Subject and Body from Data.
func parse(m *Message) {
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(m.Data)))
	if err != nil {
		m.ParseError = fmt.Errorf("parsing message: %w", err)
		m.Body = string(m.Data)
		return
	}
	m.Header = msg.Header
	dec := new(mime.WordDecoder)
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Subject = subj
	} else {
		m.Subject = msg.Header.Get("Subject")
	}
	var body io.Reader = msg.Body
	switch strings.ToLower(strings.TrimSpace(msg.Header.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	}
	b, err := io.ReadAll(body)
	if err != nil && !errors.Is(err, io.EOF) {
		m.ParseError = fmt.Errorf("decoding body: %w", err)
	}
	m.Body = string(b)
}

// newlineStripper drops CR and LF so that base64 split over lines decodes.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, c := range p[:k] {
			if c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

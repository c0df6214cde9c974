package smtptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one accepted mail transaction.
type Message struct {
	// From is the envelope sender (MAIL FROM), To the envelope recipients (RCPT TO).
	From string
	To   []string
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
	ln net.Listener
	wg sync.WaitGroup

	mu        sync.Mutex
	msgs      []Message
	arrived   chan struct{} // closed and replaced whenever a message is accepted
	conns     map[net.Conn]struct{}
	closed    bool
	failNext  int
	onMessage func(Message)
}

// maxMessageBytes bounds one message so that a runaway client cannot exhaust memory.
const maxMessageBytes = 10 << 20

// idleTimeout closes connections whose client went silent, so Close never waits
// on a half-dead peer for long.
const idleTimeout = time.Minute

// New listens on addr ("127.0.0.1:0" picks a free port) and serves until Close.
func New(addr string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	s := &Server{
		ln:      ln,
		arrived: make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.serve()
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

// Close stops listening, closes open connections and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("closing listener: %w", err)
	}
	return nil
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			// The listener only fails for good once Close closed it; a transient
			// accept error on loopback is not worth a retry loop in a test server.
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.session(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// session speaks SMTP with one client until QUIT, an I/O error or Close.
func (s *Server) session(c net.Conn) {
	tp := textproto.NewConn(c)
	reply := func(format string, args ...any) bool {
		_ = c.SetWriteDeadline(time.Now().Add(idleTimeout))
		return tp.PrintfLine(format, args...) == nil
	}
	if !reply("220 smtptest ESMTP ready") {
		return
	}

	var (
		greeted  bool
		authUser string
		from     string
		inTx     bool
		rcpts    []string
	)
	reset := func() { from, inTx, rcpts = "", false, nil }

	for {
		_ = c.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "HELO":
			greeted = true
			reset()
			reply("250 smtptest")
		case "EHLO":
			greeted = true
			reset()
			reply("250-smtptest greets %s", arg)
			reply("250-8BITMIME")
			reply("250-SIZE %d", maxMessageBytes)
			reply("250 AUTH PLAIN")
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			switch {
			case !greeted:
				reply("503 5.5.1 EHLO first")
				continue
			case !strings.EqualFold(mech, "PLAIN"):
				reply("504 5.5.4 only PLAIN is supported")
				continue
			}
			if initial == "" {
				if !reply("334 ") {
					return
				}
				if initial, err = tp.ReadLine(); err != nil {
					return
				}
			}
			user, ok := decodePlain(initial)
			if !ok {
				reply("501 5.5.2 malformed PLAIN response")
				continue
			}
			authUser = user
			reply("235 2.7.0 authentication succeeded")
		case "MAIL":
			addr, ok := pathArg(arg, "FROM:")
			switch {
			case !greeted:
				reply("503 5.5.1 EHLO first")
			case inTx:
				reply("503 5.5.1 nested MAIL command")
			case !ok:
				reply("501 5.5.4 syntax: MAIL FROM:<address>")
			default:
				from, inTx = addr, true
				reply("250 2.1.0 ok")
			}
		case "RCPT":
			addr, ok := pathArg(arg, "TO:")
			switch {
			case !inTx:
				reply("503 5.5.1 MAIL first")
			case !ok || addr == "":
				reply("501 5.5.4 syntax: RCPT TO:<address>")
			default:
				rcpts = append(rcpts, addr)
				reply("250 2.1.5 ok")
			}
		case "DATA":
			if !inTx || len(rcpts) == 0 {
				reply("503 5.5.1 RCPT first")
				continue
			}
			if !reply("354 end data with <CR><LF>.<CR><LF>") {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(idleTimeout))
			data, err := io.ReadAll(io.LimitReader(tp.DotReader(), maxMessageBytes+1))
			if err != nil {
				return
			}
			if len(data) > maxMessageBytes {
				reply("552 5.3.4 message too big")
				reset()
				continue
			}
			if s.accept(Message{From: from, To: rcpts, AuthUser: authUser, Data: data}) {
				reply("250 2.0.0 queued")
			} else {
				reply("451 4.3.0 temporary failure (smtptest FailNext)")
			}
			reset()
		case "RSET":
			reset()
			reply("250 2.0.0 ok")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "VRFY":
			reply("252 2.5.0 cannot verify, will attempt delivery")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("502 5.5.2 command not implemented")
		}
	}
}

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

// pathArg extracts the address from "FROM:<a@b> SIZE=12"-style arguments.
func pathArg(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		// Some clients omit the angle brackets; take the first word.
		addr, _, _ := strings.Cut(rest, " ")
		return addr, addr != ""
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

// decodePlain decodes a SASL PLAIN response ("authzid\x00authcid\x00password").
func decodePlain(b64 string) (string, bool) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return "", false
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 {
		return "", false
	}
	return string(parts[1]), true
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

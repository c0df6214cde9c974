// Package smtptest is a small, real SMTP server (RFC 5321 subset) that keeps every
// message it accepts in memory.
//
// It owns one listening socket on 127.0.0.1 and the connections accepted on it.
// The protocol is github.com/emersion/go-smtp's server; this package adds only
// the in-memory mailbox. AUTH PLAIN is offered in plain text and any credentials
// are accepted and recorded: the server only listens where tests and the demo run.
//
// Guarantees: a message is visible in Messages, and wakes WaitFor, before the
// client receives the "250" that accepts it, so a test that saw its send succeed
// can assert on the message without sleeping. Messages are kept in acceptance
// order. FailNext makes the next transactions fail with a transient 451 reply so
// that callers can test their retry path.
//
// Start is for tests (the server is closed by t.Cleanup); New and Close are for
// programs such as `outbound-demo`, which use OnMessage to show the email that a
// production deployment would send.
package smtptest

package sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// BlockedAddressError is returned when a webhook delivery would dial an address
// that the SSRF guard refuses. Webhook URLs are chosen by customers, so without the
// guard anyone could make the worker call its own metadata service, Redis or admin
// API. The check runs on the IP the socket is about to connect to, after DNS, so a
// name that resolves to a public address at configuration time and to 127.0.0.1 at
// delivery time (DNS rebinding) is still refused.
type BlockedAddressError struct {
	// Addr is the address being dialled, as the dialer saw it.
	Addr string
	// Reason says which rule refused it: "loopback", "private", "link-local"...
	// or, when ByPort, "port 6379 is not an allowed webhook port".
	Reason string
	// ByPort says the port policy refused it, not the address ranges:
	// --allow-private-targets does not lift that.
	ByPort bool
}

func (e *BlockedAddressError) Error() string {
	if e.ByPort {
		return fmt.Sprintf("dialing %s: %s", e.Addr, e.Reason)
	}
	return fmt.Sprintf("dialing %s: address is %s; set --allow-private-targets to allow it", e.Addr, e.Reason)
}

// blockedPrefix is one range the guard refuses, with the reason it gives.
type blockedPrefix struct {
	prefix netip.Prefix
	reason string
}

// Checked in order, so a narrower range must come before a wider one that would
// give a less precise reason (0.0.0.0/32 before 0.0.0.0/8).
var blockedV4 = []blockedPrefix{
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified"},
	{netip.MustParsePrefix("0.0.0.0/8"), `in 0.0.0.0/8 ("this network")`},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved for IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("198.51.100.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved for benchmarking"},
	// Anycast of the deprecated 6to4 relays: whoever answers it nearby gets
	// the payload.
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast (deprecated)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4)"},
}

var blockedV6 = []blockedPrefix{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	// IPv4-compatible addresses (::a.b.c.d) are deprecated; nothing legitimate
	// is reached through them, and some stacks route them to the IPv4 address.
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	// SIIT's IPv4-translated form (::ffff:0:a.b.c.d) leads a translator to
	// an IPv4 address. The IPv4-mapped form (::ffff:a.b.c.d) never gets here:
	// blockReason judges it as the IPv4 address it is on the wire.
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated (SIIT)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "reserved (discard-only)"},
	{netip.MustParsePrefix("2001:10::/28"), "ORCHID (deprecated)"},
	{netip.MustParsePrefix("2001:db8::/32"), "reserved for documentation"},
	{netip.MustParsePrefix("3fff::/20"), "reserved for documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing (SRv6) SIDs"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// IPv6 forms that carry an IPv4 address a gateway will forward to: a NAT64 or
// 6to4 gateway inside a private network would turn these into calls to, say,
// 10.0.0.7. Checking the embedded address costs a few comparisons.
var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	teredo         = netip.MustParsePrefix("2001::/32")
)

// blockReason returns why ip must not be dialled, or "" when it may be.
func blockReason(ip netip.Addr) string {
	// netip.Prefix.Contains never matches an address with a zone (fe80::1%eth0),
	// which would let a zoned link-local address through.
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return "invalid"
	}
	// ::ffff:127.0.0.1 is 127.0.0.1 on the wire.
	ip = ip.Unmap()
	if ip.Is4() {
		return match(ip, blockedV4)
	}
	if r := match(ip, blockedV6); r != "" {
		return r
	}
	b := ip.As16()
	var embedded netip.Addr
	var form string
	switch {
	case nat64WellKnown.Contains(ip):
		embedded, form = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), "NAT64"
	case sixToFour.Contains(ip):
		embedded, form = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), "6to4"
	case teredo.Contains(ip):
		// The client's IPv4 address is stored inverted in the last 32 bits.
		embedded, form = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), "Teredo"
	default:
		return ""
	}
	if r := match(embedded, blockedV4); r != "" {
		return fmt.Sprintf("%s (%s in a %s address)", r, embedded, form)
	}
	return ""
}

func match(ip netip.Addr, list []blockedPrefix) string {
	for _, p := range list {
		if p.prefix.Contains(ip) {
			return p.reason
		}
	}
	return ""
}

// Guard is the SSRF guard of deliveries: the address ranges above, unless
// private targets are allowed, and the port policy, always. Build it with
// ClientConfig.Guard.
type Guard struct {
	allowPrivate bool
	ports        PortPolicy
}

// CheckAddress reports whether a delivery may dial addr ("ip:port", as a
// net.Dialer passes it to its Control function). It returns a
// *BlockedAddressError for a refused address or port, and also for an address
// that is not a literal IP and port, since the guard cannot vouch for what it
// cannot read.
func (g Guard) CheckAddress(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return &BlockedAddressError{Addr: addr, Reason: "not a literal IP address and port"}
	}
	return g.check(addr, ap.Addr(), ap.Port())
}

// CheckURL applies what can be known of the guard before any DNS lookup to a
// webhook URL being configured: its port (explicit, or the scheme's), and its
// host when that is a literal IP. A host name is judged at dial time, on every
// address it resolves to then. raw must have passed urls.CheckHTTP; the error
// names the host and port, never the URL's password or query.
func (g Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a well-formed URL")
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return &BlockedAddressError{Addr: u.Host, Reason: "port " + port + " is not a port number", ByPort: true}
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		// A name: only its port can be judged now.
		return g.check(u.Host, netip.Addr{}, uint16(n))
	}
	return g.check(u.Host, ip, uint16(n))
}

// check refuses ip (unless it is the zero Addr, not yet known) and port; addr
// is what the error names.
func (g Guard) check(addr string, ip netip.Addr, port uint16) error {
	if ip.IsValid() && !g.allowPrivate {
		if r := blockReason(ip); r != "" {
			return &BlockedAddressError{Addr: addr, Reason: r}
		}
	}
	if !g.ports.Allows(port) {
		return &BlockedAddressError{Addr: addr, Reason: fmt.Sprintf("port %d is not an allowed webhook port", port), ByPort: true}
	}
	return nil
}

// guardedDialer dials through a net.Dialer whose Control function applies
// Guard.CheckAddress. Control runs after the socket is created and before connect(2),
// on every address the dialer tries (each A/AAAA record, each Happy Eyeballs
// attempt), so no packet leaves for a refused address.
type guardedDialer struct {
	dialer *net.Dialer
}

func newGuardedDialer(d *net.Dialer, g Guard, hook func(network, address string) error) *guardedDialer {
	d.Control = func(network, address string, _ syscall.RawConn) error {
		if err := g.CheckAddress(address); err != nil {
			return err
		}
		if hook != nil {
			return hook(network, address)
		}
		return nil
	}
	return &guardedDialer{dialer: d}
}

// DialContext is the transport's dial function. A refusal comes back from the
// dialer wrapped in a *net.OpError whose text repeats the address
// ("dial tcp 127.0.0.1:80: dialing 127.0.0.1:80: ..."); returning the
// *BlockedAddressError itself keeps the message readable in activity logs, and
// it is not a timeout, so nobody mistakes it for a transient network error.
func (g *guardedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := g.dialer.DialContext(ctx, network, address)
	if err != nil {
		var blocked *BlockedAddressError
		if errors.As(err, &blocked) {
			return nil, blocked
		}
		return nil, err
	}
	return conn, nil
}

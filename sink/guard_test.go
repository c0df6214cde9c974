package sink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// These tests must never send a packet to anything but loopback: this machine's
// network policy forbids it, and a guard test that "works" by reaching 10.1.2.3
// would prove nothing anyway. Two things make sure of it:
//   - every client gets a resolver that talks only to fakeDNS on 127.0.0.1, so
//     not even a DNS query leaves the machine;
//   - every client's dial hook, which runs only after the guard has accepted an
//     address and before connect(2), fails the test and refuses the dial for
//     any non-loopback address.

// loopbackOnly is a dial hook that lets loopback through and fails the test, and
// the dial, for anything else.
func loopbackOnly(t *testing.T) func(network, address string) error {
	return func(network, address string) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			t.Errorf("dialer was about to connect to %s %s: only loopback may be dialled in tests", network, address)
			return fmt.Errorf("test refuses to dial %s", address)
		}
		return nil
	}
}

// fakeDNS is a minimal DNS server on 127.0.0.1 UDP. It answers every A query
// with answerA and every other query with no records, and remembers the names
// it was asked about.
type fakeDNS struct {
	conn    *net.UDPConn
	answerA [4]byte

	mu      sync.Mutex
	queries []string
}

func startFakeDNS(t *testing.T, answerA netip.Addr) *fakeDNS {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listening for DNS: %v", err)
	}
	d := &fakeDNS{conn: conn, answerA: answerA.As4()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return // closed
			}
			if resp := d.answer(buf[:n]); resp != nil {
				conn.WriteToUDP(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return d
}

// answer builds the response to one query, or nil for a packet it cannot read.
func (d *fakeDNS) answer(q []byte) []byte {
	const headerLen = 12
	if len(q) < headerLen || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// The question: length-prefixed labels up to a zero byte, then type and class.
	var labels []string
	i := headerLen
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[headerLen : i+4]

	name := strings.Join(labels, ".") + "."
	d.mu.Lock()
	d.queries = append(d.queries, name)
	d.mu.Unlock()

	const typeA = 1
	var answers uint16
	if qtype == typeA {
		answers = 1
	}
	resp := make([]byte, headerLen, headerLen+len(question)+16)
	copy(resp[0:2], q[0:2])                       // same id
	binary.BigEndian.PutUint16(resp[2:4], 0x8180) // response, recursion desired and available, no error
	binary.BigEndian.PutUint16(resp[4:6], 1)      // one question
	binary.BigEndian.PutUint16(resp[6:8], answers)
	resp = append(resp, question...)
	if answers == 1 {
		resp = append(resp, 0xc0, headerLen)           // name: pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, 1)  // type A
		resp = binary.BigEndian.AppendUint16(resp, 1)  // class IN
		resp = binary.BigEndian.AppendUint32(resp, 60) // TTL
		resp = binary.BigEndian.AppendUint16(resp, 4)  // rdlength
		resp = append(resp, d.answerA[:]...)
	}
	return resp
}

func (d *fakeDNS) asked(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range d.queries {
		if strings.EqualFold(q, name) {
			return true
		}
	}
	return false
}

// resolver sends every DNS query to d, whatever server /etc/resolv.conf names.
func (d *fakeDNS) resolver() *net.Resolver {
	addr := d.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "udp", addr)
		},
	}
}

func TestFakeDNSResolves(t *testing.T) {
	dns := startFakeDNS(t, netip.MustParseAddr("10.0.0.7"))
	addrs, err := dns.resolver().LookupHost(context.Background(), "hooks.internal.example")
	if err != nil {
		t.Fatalf("LookupHost: %v", err)
	}
	if len(addrs) != 1 || addrs[0] != "10.0.0.7" {
		t.Fatalf("LookupHost = %v, want [10.0.0.7]", addrs)
	}
}

func TestGuardRefusesInternalTargets(t *testing.T) {
	dns := startFakeDNS(t, netip.MustParseAddr("10.0.0.7"))

	type outcome int
	const (
		// blocked: the guard refused the resolved address at dial time.
		blocked outcome = iota
		// notFound: Go's resolver refuses the name before any lookup. Go does not
		// read the numeric shorthands inet_aton accepts (decimal, octal, "127.1"),
		// and a name made only of digits and dots is not a valid host name, so
		// no DNS query is sent. Were the cgo resolver used, getaddrinfo would turn
		// them into 127.0.0.1, and the dial guard would refuse that.
		notFound
	)
	tests := []struct {
		name       string
		url        string
		want       outcome
		wantReason string // substring of BlockedAddressError.Reason
		viaDNS     string // name the fake DNS must have been asked about
	}{
		{name: "IPv4 loopback", url: "http://127.0.0.1/", wantReason: "loopback"},
		{name: "IPv4 loopback other address", url: "http://127.5.6.7:6379/", wantReason: "loopback"},
		{name: "https loopback", url: "https://127.0.0.1/", wantReason: "loopback"},
		// From /etc/hosts: the fake DNS is not asked.
		{name: "localhost", url: "http://localhost/", wantReason: "loopback"},
		// Go looks an absolute name up in DNS, not in /etc/hosts. A real DNS
		// server answers 127.0.0.1 (or nothing) for it; the fake says 10.0.0.7.
		{name: "localhost with trailing dot", url: "http://localhost./", wantReason: "private", viaDNS: "localhost."},
		{name: "IPv6 loopback", url: "http://[::1]/", wantReason: "loopback"},
		{name: "IPv4-mapped IPv6 loopback", url: "http://[::ffff:127.0.0.1]/", wantReason: "loopback"},
		{name: "IPv4-mapped IPv6 loopback in hex", url: "http://[::ffff:7f00:1]/", wantReason: "loopback"},
		{name: "IPv4-mapped IPv6 private", url: "http://[::ffff:10.0.0.1]/", wantReason: "private"},
		{name: "decimal IPv4", url: "http://2130706433/", want: notFound},
		{name: "octal IPv4", url: "http://0177.0.0.1/", want: notFound},
		{name: "short IPv4", url: "http://127.1/", want: notFound},
		// Has letters, so it is a host name: DNS answers 10.0.0.7 here. A real
		// DNS would say NXDOMAIN, or whatever an attacker's zone says, and the
		// guard would judge that address the same way.
		{name: "hex IPv4", url: "http://0x7f000001/", wantReason: "private", viaDNS: "0x7f000001."},
		{name: "RFC1918 10/8", url: "http://10.1.2.3/", wantReason: "private"},
		{name: "RFC1918 172.16/12", url: "http://172.16.0.1/", wantReason: "private"},
		{name: "RFC1918 172.16/12 upper end", url: "http://172.31.255.254/", wantReason: "private"},
		{name: "RFC1918 192.168/16", url: "http://192.168.1.1/", wantReason: "private"},
		{name: "cloud metadata", url: "http://169.254.169.254/latest/meta-data/", wantReason: "link-local"},
		{name: "CGNAT", url: "http://100.64.0.1/", wantReason: "carrier-grade NAT"},
		{name: "IPv4 unspecified", url: "http://0.0.0.0/", wantReason: "unspecified"},
		{name: "this network", url: "http://0.1.2.3/", wantReason: "0.0.0.0/8"},
		{name: "IPv6 unspecified", url: "http://[::]/", wantReason: "unspecified"},
		{name: "broadcast", url: "http://255.255.255.255/", wantReason: "broadcast"},
		{name: "IPv6 unique local", url: "http://[fd00::1]/", wantReason: "private"},
		{name: "IPv6 link-local", url: "http://[fe80::1]/", wantReason: "link-local"},
		{name: "IPv6 link-local with zone", url: "http://[fe80::1%25lo]/", wantReason: "link-local"},
		{name: "IPv4 multicast", url: "http://224.0.0.1/", wantReason: "multicast"},
		{name: "IPv6 multicast", url: "http://[ff02::1]/", wantReason: "multicast"},
		{name: "NAT64 of loopback", url: "http://[64:ff9b::127.0.0.1]/", wantReason: "loopback"},
		{name: "6to4 of private", url: "http://[2002:a00:1::1]/", wantReason: "private"},
		{name: "host name resolving to 10.x", url: "http://hooks.internal.example/webhook", wantReason: "private", viaDNS: "hooks.internal.example."},
	}

	var dials atomic.Int64
	hook := loopbackOnly(t)
	c, err := NewHTTPClient(ClientConfig{
		Resolver: dns.resolver(),
		dialHook: func(network, address string) error {
			dials.Add(1)
			return hook(network, address)
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dials.Load()
			resp, err := c.Post(tt.url, "application/json", strings.NewReader(`{}`))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("Post(%s) succeeded, want a refusal", tt.url)
			}
			if n := dials.Load() - before; n != 0 {
				t.Errorf("guard let %d dial(s) through to connect", n)
			}
			switch tt.want {
			case blocked:
				var be *BlockedAddressError
				if !errors.As(err, &be) {
					t.Fatalf("error = %v (%T), want a *BlockedAddressError", err, errors.Unwrap(err))
				}
				if !strings.Contains(be.Reason, tt.wantReason) {
					t.Errorf("reason = %q, want it to contain %q", be.Reason, tt.wantReason)
				}
				t.Logf("refused: %v", err)
			case notFound:
				var de *net.DNSError
				if !errors.As(err, &de) || !de.IsNotFound {
					t.Fatalf("error = %v, want a not-found *net.DNSError", err)
				}
				t.Logf("not resolved: %v", err)
			}
			if tt.viaDNS != "" && !dns.asked(tt.viaDNS) {
				t.Errorf("fake DNS was never asked about %s", tt.viaDNS)
			}
		})
	}
}

func TestGuardErrorText(t *testing.T) {
	dns := startFakeDNS(t, netip.MustParseAddr("10.0.0.7"))
	c, err := NewHTTPClient(ClientConfig{Resolver: dns.resolver(), dialHook: loopbackOnly(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Post("http://127.0.0.1/", "application/json", nil)
	want := `Post "http://127.0.0.1/": dialing 127.0.0.1:80: address is loopback; set --allow-private-targets to allow it`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a refusal must not look like a timeout: %v", err)
	}
}

// TestGuardOnRealServer points the client at a live server on 127.0.0.1: with the
// guard on, the server never sees a connection; with AllowPrivate it answers.
func TestGuardOnRealServer(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("reached"))
	}))
	dns := startFakeDNS(t, netip.MustParseAddr("10.0.0.7"))

	port := srv.Listener.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name         string
		allowPrivate bool
		deniedPorts  string
		wantReason   string // "" when the server must be reached
	}{
		{name: "guard on", allowPrivate: false, wantReason: "loopback"},
		{name: "allow private targets", allowPrivate: true},
		// DNS rebinding to an internal service on a denied port is refused at
		// dial time, even with private targets allowed.
		{name: "denied port", allowPrivate: true, deniedPorts: strconv.Itoa(port),
			wantReason: fmt.Sprintf("port %d is not an allowed webhook port", port)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := conns.Load()
			c, err := NewHTTPClient(ClientConfig{AllowPrivate: tt.allowPrivate, DeniedPorts: tt.deniedPorts,
				Resolver: dns.resolver(), dialHook: loopbackOnly(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			resp, err := c.Post(srv.URL, "application/json", strings.NewReader(`{}`))
			if tt.wantReason != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatal("Post succeeded, want a refusal")
				}
				var be *BlockedAddressError
				if !errors.As(err, &be) || be.Reason != tt.wantReason {
					t.Errorf("error = %v, want a *BlockedAddressError for %q", err, tt.wantReason)
				}
				if n := conns.Load() - before; n != 0 {
					t.Errorf("server saw %d connection(s), want none: the refusal must come before connect", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			body, _, err := ReadCapped(resp.Body, 100)
			resp.Body.Close()
			if err != nil || string(body) != "reached" {
				t.Errorf("body = %q, %v; want %q", body, err, "reached")
			}
		})
	}
}

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		addr       string
		wantReason string // "" means allowed
	}{
		// Allowed: public addresses, and ranges just outside the blocked ones.
		{"8.8.8.8:443", ""},
		{"1.1.1.1:80", ""},
		{"172.15.255.255:80", ""},
		{"172.32.0.1:80", ""},
		{"100.63.255.255:80", ""},
		{"100.128.0.1:80", ""},
		{"11.0.0.1:80", ""},
		{"223.255.255.255:80", ""},
		{"[2606:4700:4700::1111]:443", ""},
		{"[2001:4860:4860::8888]:443", ""},
		{"[64:ff9b::8.8.8.8]:443", ""},
		{"[2002:808:808::1]:443", ""},
		{"[::ffff:8.8.8.8]:443", ""},

		{"127.0.0.1:80", "loopback"},
		{"127.255.255.255:80", "loopback"},
		{"[::1]:80", "loopback"},
		{"[::ffff:127.0.0.1]:80", "loopback"},
		{"10.0.0.0:80", "private"},
		{"10.255.255.255:80", "private"},
		{"172.16.0.0:80", "private"},
		{"172.31.255.255:80", "private"},
		{"192.168.0.1:80", "private"},
		{"[fc00::1]:80", "private"},
		{"[fdff:ffff::1]:80", "private"},
		{"169.254.169.254:80", "link-local"},
		{"[fe80::1]:80", "link-local"},
		{"[fe80::1%eth0]:80", "link-local"},
		{"[febf::1]:80", "link-local"},
		{"100.64.0.1:80", "carrier-grade NAT (100.64.0.0/10)"},
		{"100.127.255.255:80", "carrier-grade NAT (100.64.0.0/10)"},
		{"224.0.0.1:80", "multicast"},
		{"239.255.255.250:1900", "multicast"},
		{"[ff02::1]:80", "multicast"},
		{"[ff0e::1]:80", "multicast"},
		{"0.0.0.0:80", "unspecified"},
		{"[::]:80", "unspecified"},
		{"0.0.0.1:80", `in 0.0.0.0/8 ("this network")`},
		{"255.255.255.255:80", "broadcast"},
		{"240.0.0.1:80", "reserved (240.0.0.0/4)"},
		{"192.0.2.1:80", "reserved for documentation"},
		{"198.51.100.1:80", "reserved for documentation"},
		{"203.0.113.1:80", "reserved for documentation"},
		{"[2001:db8::1]:80", "reserved for documentation"},
		{"198.18.0.1:80", "reserved for benchmarking"},
		{"192.0.0.1:80", "reserved for IETF protocol assignments"},
		{"[::127.0.0.1]:80", "IPv4-compatible (deprecated)"},
		{"[fec0::1]:80", "site-local (deprecated)"},
		{"[64:ff9b:1::1]:80", "local-use NAT64"},
		{"[100::1]:80", "reserved (discard-only)"},
		{"[64:ff9b::127.0.0.1]:80", "loopback (127.0.0.1 in a NAT64 address)"},
		{"[64:ff9b::a9fe:a9fe]:80", "link-local (169.254.169.254 in a NAT64 address)"},
		{"[2002:7f00:1::]:80", "loopback (127.0.0.1 in a 6to4 address)"},
		{"[2002:c0a8:101::1]:80", "private (192.168.1.1 in a 6to4 address)"},
		// Teredo stores the client address inverted: ^10.0.0.1 = f5ff:fffe.
		{"[2001:0:4136:e378:8000:63bf:f5ff:fffe]:80", "private (10.0.0.1 in a Teredo address)"},
		{"localhost:80", "not a literal IP address and port"},
		{"127.0.0.1", "not a literal IP address and port"},

		// Special-purpose ranges of the IANA registries.
		{"192.88.99.1:80", "6to4 relay anycast (deprecated)"},
		{"[::ffff:192.88.99.1]:80", "6to4 relay anycast (deprecated)"},
		{"[::ffff:0:808:808]:443", "IPv4-translated (SIIT)"},
		{"[::ffff:0:7f00:1]:443", "IPv4-translated (SIIT)"},
		{"[2001:10::1]:443", "ORCHID (deprecated)"},
		{"[2001:1f:ffff::1]:443", "ORCHID (deprecated)"},
		{"[2001:20::1]:443", ""},
		{"[3fff::1]:443", "reserved for documentation"},
		{"[3fff:fff::1]:443", "reserved for documentation"},
		{"[3fff:1000::1]:443", ""},
		{"[5f00::1]:443", "segment routing (SRv6) SIDs"},
		{"[5f01::1]:443", ""},
		// The IPv4-mapped range is ::ffff:0:0/96 too: it is judged by its IPv4
		// meaning, not refused as a whole.
		{"[::ffff:0:0]:80", "unspecified"},

		// The default port policy.
		{"8.8.8.8:0", "port 0 is not an allowed webhook port"},
		{"8.8.8.8:22", "port 22 is not an allowed webhook port"},
		{"8.8.8.8:25", "port 25 is not an allowed webhook port"},
		{"8.8.8.8:53", "port 53 is not an allowed webhook port"},
		{"8.8.8.8:1023", "port 1023 is not an allowed webhook port"},
		{"8.8.8.8:1024", ""},
		{"8.8.8.8:3000", ""},
		{"8.8.8.8:5432", "port 5432 is not an allowed webhook port"},
		{"8.8.8.8:6379", "port 6379 is not an allowed webhook port"},
		{"[2606:4700::1]:9092", "port 9092 is not an allowed webhook port"},
		{"8.8.8.8:8080", ""},
		{"8.8.8.8:8443", ""},
		{"8.8.8.8:11211", "port 11211 is not an allowed webhook port"},
		{"8.8.8.8:27017", "port 27017 is not an allowed webhook port"},
		{"8.8.8.8:65535", ""},
		// An address the ranges refuse names its range, not its port.
		{"127.0.0.1:6379", "loopback"},
	}
	g := defaultGuard(t, false)
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := g.CheckAddress(tt.addr)
			if tt.wantReason == "" {
				if err != nil {
					t.Errorf("CheckAddress(%s) = %v, want allowed", tt.addr, err)
				}
				return
			}
			var be *BlockedAddressError
			if !errors.As(err, &be) {
				t.Fatalf("CheckAddress(%s) = %v, want a *BlockedAddressError", tt.addr, err)
			}
			if be.Reason != tt.wantReason || be.Addr != tt.addr {
				t.Errorf("CheckAddress(%s) = {%s, %q}, want {%s, %q}", tt.addr, be.Addr, be.Reason, tt.addr, tt.wantReason)
			}
		})
	}
}

func defaultGuard(t *testing.T, allowPrivate bool) Guard {
	t.Helper()
	g, err := ClientConfig{AllowPrivate: allowPrivate}.Guard()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCheckAddressAllowPrivate(t *testing.T) {
	g := defaultGuard(t, true)
	for _, addr := range []string{"127.0.0.1:80", "[::1]:80", "10.0.0.7:80", "169.254.169.254:80", "[fd00::1]:80", "0.0.0.0:80", "8.8.8.8:443", "127.0.0.1:40000"} {
		t.Run(addr, func(t *testing.T) {
			if err := g.CheckAddress(addr); err != nil {
				t.Errorf("CheckAddress(%s) with private targets allowed = %v, want allowed", addr, err)
			}
		})
	}
	// Allowing private targets is about addresses: the port policy stays.
	for _, addr := range []string{"127.0.0.1:6379", "10.0.0.7:22", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			var be *BlockedAddressError
			if err := g.CheckAddress(addr); !errors.As(err, &be) || !be.ByPort {
				t.Errorf("CheckAddress(%s) with private targets allowed = %v, want a port refusal", addr, err)
			}
		})
	}
}

func TestPortPolicy(t *testing.T) {
	tests := []struct {
		name            string
		allowed, denied string
		allow, refuse   []uint16
		wantErr         string
	}{
		{name: "defaults", allowed: DefaultAllowedPorts, denied: DefaultDeniedPorts,
			allow:  []uint16{80, 443, 1024, 3000, 8080, 8443, 9000, 65535},
			refuse: []uint16{0, 1, 21, 22, 23, 25, 53, 110, 143, 465, 587, 993, 995, 1023, 2375, 2379, 3306, 5432, 6379, 9092, 11211, 27017}},
		{name: "allow one extra low port", allowed: "80,443,8025,1024-65535", denied: "none",
			allow: []uint16{80, 6379, 8025}, refuse: []uint16{0, 25}},
		{name: "only 443", allowed: "443", denied: "none", allow: []uint16{443}, refuse: []uint16{80, 8443}},
		{name: "deny a range", allowed: "1-65535", denied: "1-1023, 6379", allow: []uint16{1024, 6380}, refuse: []uint16{0, 80, 6379}},
		{name: "none allowed", allowed: "none", denied: "none", refuse: []uint16{80, 443}},
		{name: "port 0", allowed: "0-80", wantErr: `"0" is not a port`},
		{name: "too big", allowed: "80,65536", wantErr: `"65536" is not a port`},
		{name: "backwards", allowed: "443-80", wantErr: `range "443-80" ends before it starts`},
		{name: "empty item", allowed: "80,,443", wantErr: `"" is not a port`},
		{name: "bad denied", allowed: "80", denied: "x", wantErr: "parsing denied ports"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePortPolicy(tc.allowed, tc.denied)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePortPolicy(%q, %q) = %v, want an error containing %q", tc.allowed, tc.denied, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, port := range tc.allow {
				if !p.Allows(port) {
					t.Errorf("port %d refused, want allowed", port)
				}
			}
			for _, port := range tc.refuse {
				if p.Allows(port) {
					t.Errorf("port %d allowed, want refused", port)
				}
			}
		})
	}
}

// CheckURL is what a configure can be told before any DNS lookup.
func TestGuardCheckURL(t *testing.T) {
	tests := []struct {
		url  string
		want string // the error, "" for accepted
	}{
		{"https://hooks.example/h?token=s3cret", ""},
		{"http://hooks.example:8080/h", ""},
		{"https://[2606:4700::1]/h", ""},
		{"http://hooks.example:6379/", "dialing hooks.example:6379: port 6379 is not an allowed webhook port"},
		{"https://hooks.example:22/", "dialing hooks.example:22: port 22 is not an allowed webhook port"},
		{"http://hooks.example:0/", "dialing hooks.example:0: port 0 is not an allowed webhook port"},
		{"http://u:s3cret@127.0.0.1/?token=s3cret", "dialing 127.0.0.1: address is loopback; set --allow-private-targets to allow it"},
		{"http://[::ffff:10.0.0.1]:8080/", "dialing [::ffff:10.0.0.1]:8080: address is private; set --allow-private-targets to allow it"},
		{"http://[fe80::1%25eth0]/", "dialing [fe80::1%eth0]: address is link-local; set --allow-private-targets to allow it"},
		{"http://192.88.99.1/", "dialing 192.88.99.1: address is 6to4 relay anycast (deprecated); set --allow-private-targets to allow it"},
		// A name resolving to 10.0.0.7 is refused at dial time, not here.
		{"http://hooks.internal.example/", ""},
	}
	g := defaultGuard(t, false)
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			err := g.CheckURL(tc.url)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("CheckURL(%q) = %q, want %q", tc.url, got, tc.want)
			}
		})
	}
	if err := defaultGuard(t, true).CheckURL("http://127.0.0.1:8080/"); err != nil {
		t.Errorf("CheckURL with private targets allowed = %v, want accepted", err)
	}
}

package sink

import (
	"fmt"
	"strconv"
	"strings"
)

// The default port policy. Ports below 1024 belong to system services (SSH,
// SMTP, DNS...), except HTTP and HTTPS; above, the denied list names the
// well-known ports of the databases, brokers and control planes that are most
// often reachable from inside a network and most often unauthenticated there.
// Receivers on 8080, 8443 or 3000 stay allowed.
const (
	DefaultAllowedPorts = "80,443,1024-65535"
	DefaultDeniedPorts  = "1433,1521,2181,2375,2376,2379,2380,3306,4369,5432,5672,5984,6379,6443," +
		"8500,9042,9092,9200,9300,10250,11211,26379,27017"
)

// PortPolicy says which ports a delivery may dial: a port in an allowed range
// and in no denied one. Port 0 is never allowed.
type PortPolicy struct {
	allowed, denied []portRange
}

type portRange struct{ lo, hi uint16 }

// ParsePortPolicy reads two lists of ports and ranges ("80,443,1024-65535").
// "none" is an empty list: "none" allowed refuses every delivery, "none" denied
// leaves the allowed ranges whole.
func ParsePortPolicy(allowed, denied string) (PortPolicy, error) {
	a, err := parsePortRanges(allowed)
	if err != nil {
		return PortPolicy{}, fmt.Errorf("parsing allowed ports: %w", err)
	}
	d, err := parsePortRanges(denied)
	if err != nil {
		return PortPolicy{}, fmt.Errorf("parsing denied ports: %w", err)
	}
	return PortPolicy{allowed: a, denied: d}, nil
}

func parsePortRanges(s string) ([]portRange, error) {
	if strings.TrimSpace(s) == "none" {
		return nil, nil
	}
	var out []portRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		loS, hiS, isRange := strings.Cut(item, "-")
		lo, err := parsePort(loS)
		if err != nil {
			return nil, err
		}
		hi := lo
		if isRange {
			if hi, err = parsePort(hiS); err != nil {
				return nil, err
			}
		}
		if hi < lo {
			return nil, fmt.Errorf("range %q ends before it starts", item)
		}
		out = append(out, portRange{lo, hi})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port from 1 to 65535", s)
	}
	return uint16(n), nil
}

// Allows reports whether a delivery may dial port.
func (p PortPolicy) Allows(port uint16) bool {
	return port != 0 && inRanges(p.allowed, port) && !inRanges(p.denied, port)
}

func inRanges(rs []portRange, port uint16) bool {
	for _, r := range rs {
		if r.lo <= port && port <= r.hi {
			return true
		}
	}
	return false
}

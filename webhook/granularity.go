package webhook

import (
	"fmt"
	"time"
)

// Granularity is the aggregation period of a webhook. None delivers each message
// on its own as soon as it is stored.
type Granularity string

const (
	None Granularity = "none"
	H1   Granularity = "1h"
	H6   Granularity = "6h"
	H12  Granularity = "12h"
	H24  Granularity = "24h"
)

// ParseGranularity accepts exactly the values of the control contract.
func ParseGranularity(s string) (Granularity, error) {
	switch g := Granularity(s); g {
	case None, H1, H6, H12, H24:
		return g, nil
	}
	return "", fmt.Errorf("unknown granularity %q (want none, 1h, 6h, 12h or 24h)", s)
}

// Duration is the nominal window length; zero for None.
func (g Granularity) Duration() time.Duration {
	switch g {
	case H1:
		return time.Hour
	case H6:
		return 6 * time.Hour
	case H12:
		return 12 * time.Hour
	case H24:
		return 24 * time.Hour
	}
	return 0
}

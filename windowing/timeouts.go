package windowing

import (
	"fmt"
	"time"
)

// Defaults of Timeouts.
const (
	DefaultRequestTimeout = 15 * time.Second
	DefaultLeaseGrace     = 5 * time.Second
)

// Timeouts bound one delivery. The lease of a claimed chat is derived from
// them, so a delivery's HTTP request ends before its lease by construction and
// another worker never delivers the same bundle while ours may still land.
type Timeouts struct {
	// Request bounds one delivery's HTTP request (default 15s).
	Request time.Duration
	// Grace is what the lease keeps past the request to record the outcome
	// (ack or retry), and how long that recording may take (default 5s).
	Grace time.Duration
}

// WithDefaults returns t with its unset fields filled.
func (t Timeouts) WithDefaults() Timeouts {
	if t.Request == 0 {
		t.Request = DefaultRequestTimeout
	}
	if t.Grace == 0 {
		t.Grace = DefaultLeaseGrace
	}
	return t
}

func (t Timeouts) validate() error {
	if t.Request <= 0 || t.Grace <= 0 {
		return fmt.Errorf("windowing: Timeouts must be positive, got request %s and grace %s", t.Request, t.Grace)
	}
	return nil
}

// Lease is how long a claimed chat stays hidden from other workers.
func (t Timeouts) Lease() time.Duration { return t.Request + t.Grace }

// requestDeadline is when the request of a delivery whose lease ends at
// leaseEnd must be over: the grace before it, whatever part of the lease a wait
// for a delivery slot has already used.
func (t Timeouts) requestDeadline(leaseEnd time.Time) time.Time { return leaseEnd.Add(-t.Grace) }

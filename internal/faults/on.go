//go:build faults

package faults

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

var (
	armed Point
	nth   int64 = 1
	hits  atomic.Int64
)

func init() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	p, n, found := strings.Cut(v, ":")
	armed = Point(p)
	switch armed {
	case AfterAppend, AfterSeal, AfterPost, AfterAlertClaim:
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown point; want %s, %s, %s or %s\n", Env, v, AfterAppend, AfterSeal, AfterPost, AfterAlertClaim)
		os.Exit(2)
	}
	if found {
		var err error
		if nth, err = strconv.ParseInt(n, 10, 64); err != nil || nth < 1 {
			fmt.Fprintf(os.Stderr, "%s=%q: the count after ':' must be a positive integer\n", Env, v)
			os.Exit(2)
		}
	}
	fmt.Fprintf(os.Stderr, "faults: will crash at %s, hit %d\n", armed, nth)
}

// Crash kills the process with SIGKILL the n-th time p is reached, when p is
// the armed point.
func Crash(p Point) {
	if p != armed || hits.Add(1) != nth {
		return
	}
	fmt.Fprintf(os.Stderr, "faults: crashing at %s\n", p)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way; run nothing more
}

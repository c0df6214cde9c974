package console

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// How often the admin token may be tried. The limits live in each worker's
// memory: behind a load balancer a guesser gets them once per worker, and a
// restart forgets them. The global cap is what bounds a guesser with many
// addresses; behind a reverse proxy every client has the proxy's address, and
// the per-client limit is a second global one (X-Forwarded-For is not
// trusted: anyone can write it).
const (
	perClientBurst = 5
	perClientEvery = 12 * time.Second // 5 a minute
	globalBurst    = 20
	globalEvery    = 3 * time.Second // 20 a minute
	// trackedClients bounds the per-client table; past it, clients whose
	// budget is full again are forgotten first.
	trackedClients = 10000
)

// signInLimiter decides whether a sign-in attempt may be checked at all.
type signInLimiter struct {
	mu      sync.Mutex
	global  *rate.Limiter
	clients map[string]*rate.Limiter
}

func newSignInLimiter() *signInLimiter {
	return &signInLimiter{global: rate.NewLimiter(rate.Every(globalEvery), globalBurst), clients: map[string]*rate.Limiter{}}
}

// refusal is why an attempt waits, and for how long.
type refusal struct {
	msg  string
	wait time.Duration
}

// allow takes one attempt from client's budget and the global one at now, or
// says why not without taking any.
func (l *signInLimiter) allow(client string, now time.Time) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients[client]
	if !ok {
		l.forget(now)
		lim = rate.NewLimiter(rate.Every(perClientEvery), perClientBurst)
		l.clients[client] = lim
	}
	mine := lim.ReserveN(now, 1)
	if d := mine.DelayFrom(now); d > 0 {
		mine.CancelAt(now)
		return &refusal{msg: "Too many sign-in attempts from your address.", wait: d}
	}
	all := l.global.ReserveN(now, 1)
	if d := all.DelayFrom(now); d > 0 {
		all.CancelAt(now)
		mine.CancelAt(now)
		return &refusal{msg: "Too many sign-in attempts on this server.", wait: d}
	}
	return nil
}

// forget keeps the client table bounded before it grows.
func (l *signInLimiter) forget(now time.Time) {
	if len(l.clients) < trackedClients {
		return
	}
	for c, lim := range l.clients {
		if lim.TokensAt(now) >= perClientBurst {
			delete(l.clients, c)
		}
	}
	if len(l.clients) >= trackedClients {
		// Every one of them is guessing: the global cap holds them anyway.
		clear(l.clients)
	}
}

// clientAddr is the address an attempt came from, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// refuseSignIn answers an attempt over the limit: 429, when to try again, and
// the form for then.
func (c *Console) refuseSignIn(rw http.ResponseWriter, r *http.Request, no *refusal, next string) {
	secs := int(math.Ceil(no.wait.Seconds()))
	rw.Header().Set("Retry-After", fmt.Sprint(secs))
	c.render(rw, r, http.StatusTooManyRequests, "signin.html", view{Title: "Sign in",
		SignIn: &signInView{Next: next, Error: fmt.Sprintf("%s The token was not checked: try again in %d seconds.", no.msg, secs)}})
}

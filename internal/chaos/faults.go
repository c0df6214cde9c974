package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"syscall"
	"time"
)

// faults injects the configured faults at fixed points of the load, one at a
// time, so that each one's effect can be told apart in the logs.
type faults struct {
	cfg   Config
	say   func(format string, args ...any)
	ws    *workers
	redis *redisServer
	kafka *kafkaBroker
	recv  *receiver
	r     *rand.Rand

	done []string // what was injected, in order
}

type fault struct {
	at   float64 // fraction of the load
	name string
	do   func(ctx context.Context) error
}

// restartDelay is how long a killed worker stays down: long enough for its
// group's next rebalance to start without it.
const restartDelay = time.Second

func (f *faults) run(ctx context.Context, start time.Time) error {
	var plan []fault
	for k := range f.cfg.Kills {
		plan = append(plan, fault{at: (float64(k) + 0.5) / float64(f.cfg.Kills), name: "kill", do: f.killWorker})
	}
	if f.cfg.RedisRestart {
		plan = append(plan, fault{at: 0.3, name: "redis", do: f.restartRedis})
	}
	if f.cfg.Freeze > 0 {
		plan = append(plan, fault{at: 0.45, name: "freeze", do: f.freezeWorker})
	}
	if f.cfg.Outage > 0 {
		plan = append(plan, fault{at: 0.6, name: "outage", do: f.outage})
	}
	if f.cfg.KafkaRestart {
		plan = append(plan, fault{at: 0.75, name: "kafka", do: f.restartKafka})
	}
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].at < plan[j].at })
	for _, x := range plan {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(time.Duration(x.at * float64(f.cfg.Load))))):
		}
		if err := x.do(ctx); err != nil {
			return fmt.Errorf("%s: %w", x.name, err)
		}
	}
	return nil
}

func (f *faults) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	f.done = append(f.done, s)
	f.say("%s", s)
}

func (f *faults) killWorker(ctx context.Context) error {
	i := f.ws.pick(f.r)
	p := f.ws.kill(i)
	f.note("SIGKILL %s (pid %d)", p.Name, p.Pid())
	if err := sleep(ctx, restartDelay); err != nil {
		return err
	}
	return f.ws.startSlot(i)
}

func (f *faults) restartRedis(ctx context.Context) error {
	return f.restart(ctx, f.redis.restart, "SIGKILL redis-server and restart on its AOF")
}

// restart runs a service's restart and notes what was done and how long the
// service was down.
func (f *faults) restart(ctx context.Context, restart func(context.Context) error, what string) error {
	t := time.Now()
	if err := restart(ctx); err != nil {
		return err
	}
	f.note("%s (%s down)", what, since(t))
	return nil
}

// freezeWorker stops a worker for longer than the session timeout: the group
// moves its partitions while it still believes it owns them, and it resumes as
// a zombie with leases and fetch buffers from before.
func (f *faults) freezeWorker(ctx context.Context) error {
	p := f.ws.proc(f.ws.pick(f.r))
	p.Signal(syscall.SIGSTOP)
	f.say("SIGSTOP %s (pid %d) for %s", p.Name, p.Pid(), f.cfg.Freeze)
	err := sleep(ctx, f.cfg.Freeze)
	p.Signal(syscall.SIGCONT)
	f.note("SIGSTOP %s (pid %d) for %s, then SIGCONT (session timeout %s)", p.Name, p.Pid(), f.cfg.Freeze, sessionTimeout)
	return err
}

// outage starts at a delivery, not at a moment chosen blind: right after a kill
// the group may be rebalancing, and an outage nobody meets proves nothing.
func (f *faults) outage(ctx context.Context) error {
	before := f.recv.calls.Load()
	if err := waitUntil(ctx, time.Minute, "a delivery to start the outage at", func() (bool, error) {
		return f.recv.calls.Load() > before, nil
	}); err != nil {
		return err
	}
	t := time.Now()
	f.recv.down.Store(true)
	// The receiver ends the outage early should one webhook reach maxRefused.
	deadline := t.Add(f.cfg.Outage)
	for f.recv.down.Load() && time.Now().Before(deadline) {
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	f.recv.down.Store(false)
	f.note("receiver answered 503 (Retry-After: 1) for %s: %d requests refused, at most %d of one webhook (11 would disable it)",
		since(t), f.recv.refused.Load(), f.recv.mostRefused())
	return nil
}

func (f *faults) restartKafka(ctx context.Context) error {
	return f.restart(ctx, f.kafka.restart, "Kafka broker stopped and restarted on the same port")
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

package redisbatch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/testenv"
)

// countPipelines counts the callers' pipelines a client sends; the first one
// waits until hold returns.
type countPipelines struct {
	n    atomic.Int64
	hold func()
}

func (h *countPipelines) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *countPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		// A new connection's handshake is a pipeline too.
		if cmds[0].Name() == "incr" && h.n.Add(1) == 1 {
			h.hold()
		}
		return next(ctx, cmds)
	}
}

// Many callers at once share pipelines of at most the cap: each one's
// commands run exactly once, and a command that fails fails only its caller,
// on one Redis as on the cluster (whose pipelines split by node).
func TestConcurrentCallersSharePipelinesAndKeepTheirErrors(t *testing.T) {
	const callers, max = 200, 64
	ctx := context.Background()
	rdb := testenv.Redis(t)
	prefix := testenv.KeyPrefix()
	b := New(rdb, max)
	key := func(kind string, i int) string { return fmt.Sprintf("%s:%s:%d", prefix, kind, i) }
	// Every fifth caller also pushes onto a string (WRONGTYPE), every
	// seventh runs a script Redis does not have (NOSCRIPT).
	for i := 0; i < callers; i += 5 {
		if err := rdb.Set(ctx, key("str", i), "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The first pipeline (its sender alone) is held until all the others
	// wait, so that they go in full batches.
	hook := &countPipelines{hold: func() {
		testenv.Eventually(t, "all callers waiting", 10*time.Second, func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return len(b.waiting) == callers-1
		})
	}}
	rdb.AddHook(hook)

	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			errs[i] = b.Do(ctx, func(pipe redis.Pipeliner) {
				pipe.Incr(ctx, key("n", i))
				pipe.Expire(ctx, key("n", i), time.Minute)
				if i%5 == 0 {
					pipe.LPush(ctx, key("str", i), "y")
				}
				if i%7 == 0 {
					pipe.EvalSha(ctx, "0000000000000000000000000000000000000000", []string{key("n", i)})
				}
			})
		})
	}
	wg.Wait()

	for i, err := range errs {
		switch {
		case i%5 == 0 && !redis.HasErrorPrefix(err, "WRONGTYPE"):
			t.Errorf("caller %d: error %v, want its own WRONGTYPE", i, err)
		case i%5 != 0 && i%7 == 0 && !redis.HasErrorPrefix(err, "NOSCRIPT"):
			t.Errorf("caller %d: error %v, want its own NOSCRIPT", i, err)
		case i%5 != 0 && i%7 != 0 && err != nil:
			t.Errorf("caller %d: error %v, want none: another caller's failure", i, err)
		}
		if n, err := rdb.Get(ctx, key("n", i)).Int(); err != nil || n != 1 {
			t.Errorf("caller %d's increment ran %d times (%v), want once", i, n, err)
		}
	}
	// One pipeline for the first caller, then the other 199 by 64.
	if n, want := hook.n.Load(), int64(1+(callers-1+max-1)/max); n != want {
		t.Errorf("%d pipelines sent, want %d", n, want)
	}
}

// A caller whose context is cancelled while it waits does not fail the
// batch it shares: the batch goes under the latest deadline of its callers.
func TestBatchContextOutlivesACancelledCaller(t *testing.T) {
	cancelled, cancel := context.WithTimeout(context.Background(), time.Minute)
	cancel()
	later, cancelLater := context.WithTimeout(context.Background(), time.Hour)
	defer cancelLater()
	ctx, done := batchContext([]*call{{ctx: cancelled}, {ctx: later}})
	defer done()
	if ctx.Err() != nil {
		t.Fatalf("batch context is done: %v", ctx.Err())
	}
	if d, ok := ctx.Deadline(); !ok || d.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("batch deadline %v (%v), want the latest caller's", d, ok)
	}
}

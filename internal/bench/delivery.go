package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/jonboulle/clockwork"
	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// product is the product name in rendered bundles (the sink's default).
const product = "TimelinesAI"

// deliverySet is the bundles a delivery measurement drains: n bundles of
// corpus c, in granularity g, each bundle one event.
type deliverySet struct {
	c     corpus
	n     int
	g     webhook.Granularity
	at    time.Time // message time
	chat  func(i int) int
	hooks *control.Registry
}

// bundle is bundle i as the flusher would hand it to the sink, so that the
// baseline posts the very bodies the sink renders.
func (s deliverySet) bundle(i int) windowing.Bundle {
	ev := s.c.event(i, s.chat(i), s.at)
	e := entry(ev, int64(i), s.g, s.epoch(ev.WorkspaceID))
	b := windowing.Bundle{ID: "obw_bench" + e.Message.ID, Workspace: e.Workspace, ChatID: e.Chat.ChatID,
		Granularity: s.g, Epoch: e.Epoch, Account: e.Account, Chat: e.Chat, Messages: []windowing.Message{e.Message}, Attempt: 1}
	if s.g != webhook.None {
		b.WindowStart = windowing.WindowStart(s.at, s.g.Duration())
	}
	return b
}

func (s deliverySet) epoch(ws string) int64 {
	wh, _ := s.hooks.Lookup(ws)
	return wh.Epoch
}

// receiverAndRegistry starts a receiver and a registry holding every
// workspace's webhook at it, in granularity g. The caller closes the receiver.
func (r *run) receiverAndRegistry(g webhook.Granularity) (*receiver, *control.Registry, error) {
	rec, err := startReceiver(0)
	if err != nil {
		return nil, nil, err
	}
	hooks, err := r.registry(r.sc.Workspaces, g, rec.URL)
	if err != nil {
		rec.close()
		return nil, nil, err
	}
	return rec, hooks, nil
}

func (r *run) phaseDelivery(ctx context.Context) error {
	x, err := r.deliveryRow(ctx, r, "delivery_throughput")
	if err != nil {
		return err
	}
	r.rep.add(x.target(">= 50% of the plain client", *x.Ratio >= 0.5))
	return nil
}

// deliveryRow measures delivery through on's Redis against a plain client
// posting the same bodies, and returns the row.
func (r *run) deliveryRow(ctx context.Context, on *run, name string) (Row, error) {
	rec, hooks, err := r.receiverAndRegistry(webhook.None)
	if err != nil {
		return Row{}, err
	}
	defer rec.close()
	// Four bundles per chat on average: per-chat order allows one delivery in
	// flight per chat, and a handful queued is what a busy chat has.
	n := r.sc.Deliveries
	c := corpus{workspaces: r.sc.Workspaces, chats: n / 4}
	set := deliverySet{c: c, n: n, g: webhook.None, at: time.Now(), chat: c.chatOf, hooks: hooks}
	ours, err := on.drain(ctx, rec, set, name, nil)
	if err != nil {
		return Row{}, fmt.Errorf("measuring delivery: %w", err)
	}
	base, err := r.plainPosts(ctx, rec, set)
	if err != nil {
		return Row{}, fmt.Errorf("measuring the plain client: %w", err)
	}
	return row(name, ours.rate(), "deliveries/s", "higher", float64(set.n)/base.seconds, "plain http.Client, same bodies and concurrency").
		with(fmt.Sprintf("%s of granularity none (%s, %d workspaces) through Store claims, Flusher and Sink to a local receiver answering 200 at once; %d in flight, %d per webhook",
			plural(set.n, "bundle"), plural(c.chats, "chat"), r.sc.Workspaces, r.sc.WorkerFlushers, perWebhook),
			ours.notes, ours.cpu, "baseline: "+base.notes+", "+base.cpu), nil
}

func (r *run) phaseStorm(ctx context.Context) error {
	rec, hooks, err := r.receiverAndRegistry(webhook.H1)
	if err != nil {
		return err
	}
	defer rec.close()
	// One window per chat, every window in the same hour: they all close at
	// its end. The store's clock is moved there once they are filled.
	n := r.sc.StormWindows
	c := corpus{workspaces: r.sc.Workspaces, chats: n}
	clk := newClock()
	hour := time.Now().Truncate(time.Hour)
	clk.set(hour.Add(10 * time.Minute))
	set := deliverySet{c: c, n: n, g: webhook.H1, at: hour.Add(5 * time.Minute), chat: func(i int) int { return i }, hooks: hooks}
	ours, err := r.drain(ctx, rec, set, "flush_storm", clk)
	if err != nil {
		return fmt.Errorf("measuring the flush storm: %w", err)
	}
	base, err := r.plainPosts(ctx, rec, set)
	if err != nil {
		return fmt.Errorf("measuring the plain client: %w", err)
	}
	// The goal is 100 000 bundles in 5 s; a quick run is judged by that rate.
	goal := 100_000.0 / 5
	rate := ours.rate()
	settings := fmt.Sprintf("%s of one message each (%s, %d workspaces), 1h windows closing at one instant (the store's clock jumps past close + grace + stagger), drained by Seal, Claim, Flusher and Sink to a receiver answering 200 at once",
		plural(n, "window"), plural(n, "chat"), r.sc.Workspaces)
	r.rep.add(row("flush_storm", float64(n)/rate, "s", "lower", base.seconds, "plain http.Client posting the same bodies").
		target("100 000 in <= 5 s", rate >= goal).
		with(settings, ours.notes, ours.cpu))
	r.rep.add(row("flush_storm_rate", rate, "bundles/s", "higher", float64(n)/base.seconds, "plain http.Client").
		target(">= 20 000 bundles/s", rate >= goal).
		with("same run as flush_storm; baseline: " + base.notes + ", " + base.cpu))
	return nil
}

// drainResult is one drain or baseline run. A drain that hits its time limit
// reports how many it delivered by then.
type drainResult struct {
	seconds   float64
	delivered int
	notes     string
	cpu       string
}

func (d drainResult) rate() float64 { return float64(d.delivered) / d.seconds }

// drain fills a fresh store with the set's bundles (windows when clk is set,
// which then jumps past their close) and times the flushers of every partition
// delivering all of them through the real sink.
func (r *run) drain(ctx context.Context, rec *receiver, s deliverySet, name string, clk *clock) (drainResult, error) {
	rdb, _, drop, err := r.database(ctx, name)
	if err != nil {
		return drainResult{}, err
	}
	defer drop()
	var storeClock clockwork.Clock = clockwork.NewRealClock()
	if clk != nil {
		storeClock = clk
	}
	store, err := windowing.NewStore(windowing.Config{Redis: rdb, Clock: storeClock})
	if err != nil {
		return drainResult{}, err
	}
	r.say("%s: filling %d bundles", name, s.n)
	if err := r.fill(ctx, store, s); err != nil {
		return drainResult{}, err
	}
	if clk != nil {
		// Past the window's close, the grace (1m) and the largest stagger (5m).
		end := windowing.WindowStart(s.at, s.g.Duration()).Add(s.g.Duration())
		clk.set(end.Add(6*time.Minute + time.Second))
	}
	snk, err := r.sink(rdb, s.hooks)
	if err != nil {
		return drainResult{}, err
	}
	flusher, err := windowing.NewFlusher(windowing.FlusherConfig{Store: store, Deliverer: snk, Logger: r.log, PerWorkspace: perWebhook,
		Concurrency: r.sc.WorkerFlushers})
	if err != nil {
		return drainResult{}, err
	}
	conns, reqs := rec.conns.Load(), rec.requests.Load()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	meter := startCPU(ctx, r.r)
	stop := r.profile(name)
	t0 := time.Now()
	g, gctx := errgroup.WithContext(cctx)
	for p := range r.sc.Partitions {
		g.Go(func() error {
			return stopped(cctx, flusher.RunPartition(gctx, p, caughtUp{storeClock.Now}), "a flusher")
		})
	}
	stats := snk.Stats()
	limit := r.sc.DrainLimit
	_, err = waitFor(ctx, limit, 10*time.Millisecond, "every delivery", func() (bool, error) {
		if stats.Failed.Load() > 0 || stats.Dropped.Load() > 0 {
			return false, fmt.Errorf("%d deliveries failed and %d were dropped", stats.Failed.Load(), stats.Dropped.Load())
		}
		if stats.Delivered.Load() < int64(s.n) {
			return false, nil
		}
		// Delivered counts before the flusher acknowledges: wait for the acks.
		return r.drained(ctx, store)
	})
	elapsed := time.Since(t0)
	stop()
	cpu := meter.stop(ctx)
	cancel()
	capped := errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
	if capped {
		err = nil
	}
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return drainResult{}, err
	}
	res := drainResult{seconds: elapsed.Seconds(), delivered: int(stats.Delivered.Load()), cpu: cpu,
		notes: fmt.Sprintf("%s for %s at the receiver", plural(int(rec.conns.Load()-conns), "connection"),
			plural(int(rec.requests.Load()-reqs), "request"))}
	if capped && res.delivered == 0 {
		return drainResult{}, fmt.Errorf("nothing was delivered in %s", limit)
	}
	if capped {
		res.notes = fmt.Sprintf("STOPPED at the %s limit with %s of %s delivered: the figure is projected from that rate; ",
			limit, groupThousands(int64(res.delivered)), groupThousands(int64(s.n))) + res.notes
	}
	r.say("%s: %s of %s in %.1fs (%.0f/s)", name, groupThousands(int64(res.delivered)), plural(s.n, "bundle"), res.seconds, res.rate())
	return res, nil
}

// fill appends the set's bundles as the processor would: per partition, in
// batches of the consumer's batch size, with offsets rising.
func (r *run) fill(ctx context.Context, store *windowing.Store, s deliverySet) error {
	const batch = 500
	parts := make([][]windowing.Entry, r.sc.Partitions)
	flush := func(p int) error {
		es := parts[p]
		if len(es) == 0 {
			return nil
		}
		if _, err := store.Append(ctx, p, es, es[len(es)-1].Offset, -1); err != nil {
			return err
		}
		parts[p] = es[:0]
		return nil
	}
	offsets := make([]int64, r.sc.Partitions)
	for i := range s.n {
		ev := s.c.event(i, s.chat(i), s.at)
		p := s.chat(i) % r.sc.Partitions
		parts[p] = append(parts[p], entry(ev, offsets[p], s.g, s.epoch(ev.WorkspaceID)))
		offsets[p]++
		if len(parts[p]) == batch {
			if err := flush(p); err != nil {
				return err
			}
		}
	}
	for p := range parts {
		if err := flush(p); err != nil {
			return err
		}
	}
	return nil
}

// drained reports whether the store has no window or bundle left.
func (r *run) drained(ctx context.Context, store *windowing.Store) (bool, error) {
	for p := range r.sc.Partitions {
		w, c, err := store.Pending(ctx, p)
		if err != nil || w > 0 || c > 0 {
			return false, err
		}
	}
	return true, nil
}

// caughtUp is the progress of a partition whose consumer has read everything:
// sealing may go up to now.
type caughtUp struct{ now func() time.Time }

func (c caughtUp) CaughtUpTo() time.Time { return c.now() }

// Appended never fires: nothing is appended while a drain runs.
func (caughtUp) Appended() <-chan struct{} { return nil }

// Applied is -1: the bench appends without a consumer, nothing to fence.
func (caughtUp) Applied() int64 { return -1 }

// plainPosts is the delivery baseline: the same bodies posted by a plain
// http.Client with as many requests in flight as the flusher allows.
func (r *run) plainPosts(ctx context.Context, rec *receiver, s deliverySet) (drainResult, error) {
	concurrency := r.sc.WorkerFlushers
	client := plainClient(concurrency)
	defer client.CloseIdleConnections()
	conns, reqs := rec.conns.Load(), rec.requests.Load()
	var next atomic.Int64
	meter := startCPU(ctx, r.r)
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range concurrency {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= s.n {
					return nil
				}
				b := s.bundle(i)
				body, err := sink.Render(b, product)
				if err != nil {
					return err
				}
				if err := post(gctx, client, rec.URL+"/hook/"+b.Workspace, body); err != nil {
					return err
				}
			}
		})
	}
	err := g.Wait()
	elapsed := time.Since(t0)
	cpu := meter.stop(ctx)
	if err != nil {
		return drainResult{}, err
	}
	r.say("plain client: %s in %.1fs (%.0f/s)", plural(s.n, "post"), elapsed.Seconds(), float64(s.n)/elapsed.Seconds())
	return drainResult{seconds: elapsed.Seconds(), cpu: cpu,
		notes: fmt.Sprintf("%d in flight, %s for %s", concurrency, plural(int(rec.conns.Load()-conns), "connection"),
			plural(int(rec.requests.Load()-reqs), "request"))}, nil
}

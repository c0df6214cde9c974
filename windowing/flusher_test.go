package windowing

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/redis/go-redis/v9"
)

type progress struct{ ch chan struct{} }

func (p progress) CaughtUpTo() time.Time     { return time.Now() }
func (p progress) Appended() <-chan struct{} { return p.ch }
func (p progress) Applied() int64            { return -1 }

// recorder is a Deliverer that fails the first attempts of chosen messages.
type recorder struct {
	mu        sync.Mutex
	failFirst map[string]int // message id -> attempts to fail
	attempts  []string
	delivered []string
}

func (r *recorder) Deliver(_ context.Context, b Bundle) Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := b.Messages[0].ID
	r.attempts = append(r.attempts, id)
	if r.failFirst[id] > 0 {
		r.failFirst[id]--
		return Outcome{RetryAt: time.Now().Add(20 * time.Millisecond)}
	}
	r.delivered = append(r.delivered, id)
	return Outcome{Done: true}
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.delivered...)
}

func TestFlusherDeliversEveryBundleInChatOrderDespiteFailures(t *testing.T) {
	s := newTestStore(t, clockwork.NewRealClock())
	rec := &recorder{failFirst: map[string]int{"m0": 3, "m4": 1}}
	f, err := NewFlusher(FlusherConfig{Store: s, Deliverer: rec, PollInterval: 5 * time.Millisecond, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	var es []Entry
	for i := range 12 {
		es = append(es, entry(int64(i), "ws", fmt.Sprint("c", i%2), fmt.Sprint("m", i), time.Now(), webhook.None))
	}
	mustAppend(t, s, 0, es...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.RunPartition(ctx, 0, progress{make(chan struct{})}) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.snapshot()) < 12 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := rec.snapshot()
	perChat := map[string][]string{}
	for _, id := range got {
		var n int
		fmt.Sscanf(id, "m%d", &n)
		c := fmt.Sprint("c", n%2)
		perChat[c] = append(perChat[c], id)
	}
	if fmt.Sprint(perChat["c0"]) != "[m0 m2 m4 m6 m8 m10]" || fmt.Sprint(perChat["c1"]) != "[m1 m3 m5 m7 m9 m11]" {
		t.Fatalf("delivered out of order or incompletely: %v", perChat)
	}
	if w, c, _ := s.Pending(context.Background(), 0); w != 0 || c != 0 {
		t.Fatalf("pending after delivery: %d windows, %d chats", w, c)
	}
}

// gauge is a Deliverer that records the most deliveries it saw at once per
// workspace.
type gauge struct {
	mu        sync.Mutex
	now, peak map[string]int
	done      int
}

func (g *gauge) Deliver(_ context.Context, b Bundle) Outcome {
	g.mu.Lock()
	g.now[b.Workspace]++
	g.peak[b.Workspace] = max(g.peak[b.Workspace], g.now[b.Workspace])
	g.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	g.mu.Lock()
	g.now[b.Workspace]--
	g.done++
	g.mu.Unlock()
	return Outcome{Done: true}
}

// TestPerWorkspaceCapHoldsAcrossPartitions: four partitions claim at once, yet
// no workspace ever has more than PerWorkspace deliveries running.
func TestPerWorkspaceCapHoldsAcrossPartitions(t *testing.T) {
	s := newTestStore(t, clockwork.NewRealClock())
	g := &gauge{now: map[string]int{}, peak: map[string]int{}}
	f, err := NewFlusher(FlusherConfig{Store: s, Deliverer: g, PerWorkspace: 2, Concurrency: 64, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const partitions, perPartition = 4, 40
	for p := range partitions {
		var es []Entry
		for i := range perPartition {
			ws := fmt.Sprint("ws", i%2)
			es = append(es, entry(int64(i), ws, fmt.Sprintf("p%d-c%d", p, i), fmt.Sprintf("p%d-m%d", p, i), time.Now(), webhook.None))
		}
		mustAppend(t, s, p, es...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p := range partitions {
		wg.Add(1)
		go func() { defer wg.Done(); f.RunPartition(ctx, p, progress{make(chan struct{})}) }()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		g.mu.Lock()
		done := g.done
		g.mu.Unlock()
		if done == partitions*perPartition || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if g.done != partitions*perPartition {
		t.Fatalf("delivered %d of %d", g.done, partitions*perPartition)
	}
	for ws, peak := range g.peak {
		if peak > 2 {
			t.Errorf("%s had %d deliveries running at once, cap is 2", ws, peak)
		}
	}
	if g.peak["ws0"] < 2 {
		t.Errorf("ws0 never used its second slot (peak %d): the cap throttles too hard", g.peak["ws0"])
	}
}

// deadlines is a Deliverer that records how much time each delivery had left
// before its context's deadline, on the fake clock, and then runs during.
type deadlines struct {
	clk    *clockwork.FakeClock
	during func(ctx context.Context)
	mu     sync.Mutex
	left   map[string]time.Duration // message id -> time to the deadline
}

func (d *deadlines) Deliver(ctx context.Context, b Bundle) Outcome {
	deadline, _ := ctx.Deadline()
	d.mu.Lock()
	d.left[b.Messages[0].ID] = deadline.Sub(d.clk.Now())
	d.mu.Unlock()
	if d.during != nil {
		d.during(ctx)
	}
	return Outcome{Done: true}
}

// claimOne appends one message of granularity none for ws and chat, and claims
// its bundle through f, as a pass would.
func claimOne(t *testing.T, f *Flusher, s *Store, ws, chat, id string) Claimed {
	t.Helper()
	mustAppend(t, s, 0, entry(1, ws, chat, id, s.cfg.Clock.Now(), webhook.None))
	claimed, err := f.claim(context.Background(), 0, 1, nil)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %d bundles: %v", len(claimed), err)
	}
	return claimed[0]
}

// TestASlotWaitShortensTheRequestNotTheLease: a delivery that waited for its
// workspace's slot gets only what is left of its request time, and one that
// waited past its request deadline is handed back instead of posted, so a
// delivery never outlives its chat's lease.
func TestASlotWaitShortensTheRequestNotTheLease(t *testing.T) {
	timeouts := Timeouts{Request: 10 * time.Second, Grace: 2 * time.Second}
	for _, tc := range []struct {
		name      string
		wait      time.Duration
		delivered bool
		left      time.Duration
	}{
		{name: "most of the request time", wait: 7 * time.Second, delivered: true, left: 3 * time.Second},
		{name: "past the request deadline", wait: 10*time.Second + time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clockwork.NewFakeClockAt(time.Now())
			s := newTestStore(t, clk)
			d := &deadlines{clk: clk, left: map[string]time.Duration{}}
			f, err := NewFlusher(FlusherConfig{Store: s, Deliverer: d, PerWorkspace: 1, Timeouts: timeouts})
			if err != nil {
				t.Fatal(err)
			}
			c := claimOne(t, f, s, "ws", "chat", "m1")
			// Another delivery of the workspace holds its only slot. The map is
			// read once, here: the flusher deletes the entry when it is done.
			ctx := context.Background()
			slot := f.perWS["ws"]
			if err := slot.sem.Acquire(ctx, 1); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { f.deliverInSlot(ctx, c); close(done) }()
			if err := clk.BlockUntilContext(ctx, 1); err != nil { // the wait's deadline timer
				t.Fatal(err)
			}
			clk.Advance(tc.wait)
			slot.sem.Release(1)
			<-done

			left, delivered := d.left["m1"]
			if delivered != tc.delivered {
				t.Fatalf("delivered = %v, want %v", delivered, tc.delivered)
			}
			if delivered && left != tc.left {
				t.Errorf("request had %s left, want %s (the lease's rest minus its grace)", left, tc.left)
			}
			if !delivered {
				// Handed back: due again now, for a fresh lease.
				again, err := s.Claim(ctx, 0, 1, timeouts.Lease(), 0, nil)
				if err != nil || len(again) != 1 {
					t.Fatalf("handed-back chat claimed %d times: %v", len(again), err)
				}
			}
		})
	}
}

// TestAckLandsAfterTheDeliveryContextExpired: the outcome is recorded with a
// context of its own, so a delivery that used all of its request time is still
// acknowledged rather than delivered again.
func TestAckLandsAfterTheDeliveryContextExpired(t *testing.T) {
	clk := clockwork.NewFakeClockAt(time.Now())
	s := newTestStore(t, clk)
	timeouts := Timeouts{Request: 10 * time.Second, Grace: 2 * time.Second}
	d := &deadlines{clk: clk, left: map[string]time.Duration{}, during: func(ctx context.Context) {
		clk.Advance(timeouts.Lease())
		<-ctx.Done()
	}}
	f, err := NewFlusher(FlusherConfig{Store: s, Deliverer: d, Timeouts: timeouts})
	if err != nil {
		t.Fatal(err)
	}
	f.deliverInSlot(context.Background(), claimOne(t, f, s, "ws", "chat", "m1"))
	if _, chats, err := s.Pending(context.Background(), 0); err != nil || chats != 0 {
		t.Fatalf("%d chats still pending after the ack (%v)", chats, err)
	}
}

// blocked is a Deliverer that holds every delivery until release is closed.
type blocked struct{ release chan struct{} }

func (b blocked) Deliver(context.Context, Bundle) Outcome {
	<-b.release
	return Outcome{Done: true}
}

// TestPartitionsClaimingAtOnceLeaseNoMoreChatsThanSlots: every partition
// claims in the same instant, yet no more chats are leased than there are
// delivery slots, so no leased chat waits for a slot.
func TestPartitionsClaimingAtOnceLeaseNoMoreChatsThanSlots(t *testing.T) {
	s := newTestStore(t, clockwork.NewRealClock())
	d := blocked{make(chan struct{})}
	f, err := NewFlusher(FlusherConfig{Store: s, Deliverer: d, Concurrency: 3, PerWorkspace: 10})
	if err != nil {
		t.Fatal(err)
	}
	const partitions = 6
	for p := range partitions {
		var es []Entry
		for i := range 10 {
			es = append(es, entry(int64(i), "ws", fmt.Sprintf("p%d-c%d", p, i), fmt.Sprintf("p%d-m%d", p, i), time.Now(), webhook.None))
		}
		mustAppend(t, s, p, es...)
	}
	ctx := context.Background()
	var inflight, passes sync.WaitGroup
	for p := range partitions {
		passes.Add(1)
		go func() {
			defer passes.Done()
			if err := f.pass(ctx, p, progress{}, false, &inflight, make(chan struct{}, 1)); err != nil {
				t.Error(err)
			}
		}()
	}
	passes.Wait()
	leased := int64(0)
	for p := range partitions {
		n, err := s.cfg.Redis.ZCount(ctx, s.keys(p).ready(), fmt.Sprint("(", time.Now().UnixMilli()), "+inf").Result()
		if err != nil {
			t.Fatal(err)
		}
		leased += n
	}
	close(d.release)
	inflight.Wait()
	if leased != 3 {
		t.Fatalf("%d chats leased with 3 delivery slots, want 3", leased)
	}
}

// midClaim is a Deliverer whose Admission, which a claim calls between its
// read of the due chats and its lease of them, records how many delivery
// slots the flusher holds at that moment.
type midClaim struct {
	blocked
	f    *Flusher
	held []int
}

func (m *midClaim) Admission(context.Context, redis.Pipeliner, []string) func(string) any {
	m.f.mu.Lock()
	m.held = append(m.held, m.f.busy)
	m.f.mu.Unlock()
	return func(string) any { return nil }
}

// TestAClaimHoldsOnlyTheSlotsOfTheChatsDue: a claim that finds two chats due
// holds two delivery slots while it leases them, not every free slot, so
// the other partitions claim meanwhile instead of waiting for it.
func TestAClaimHoldsOnlyTheSlotsOfTheChatsDue(t *testing.T) {
	s := newTestStore(t, clockwork.NewRealClock())
	d := &midClaim{blocked: blocked{make(chan struct{})}}
	f, err := NewFlusher(FlusherConfig{Store: s, Deliverer: d, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	d.f = f
	mustAppend(t, s, 0, entry(0, "ws", "c0", "m0", time.Now(), webhook.None), entry(1, "ws", "c1", "m1", time.Now(), webhook.None))
	var inflight sync.WaitGroup
	if err := f.pass(context.Background(), 0, progress{}, false, &inflight, make(chan struct{}, 1)); err != nil {
		t.Fatal(err)
	}
	close(d.release)
	inflight.Wait()
	if !slices.Equal(d.held, []int{2}) {
		t.Fatalf("slots held while leasing, per claim: %v; want [2] (the chats due, of 8 slots)", d.held)
	}
}

package windowing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/redis/go-redis/v9"
)

func newTestStore(t *testing.T, clk clockwork.Clock) *Store {
	t.Helper()
	s, err := NewStore(Config{Redis: testenv.Redis(t), Prefix: testenv.KeyPrefix(), Clock: clk, Grace: time.Minute, MaxSpread: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func entry(off int64, ws, chat, id string, at time.Time, g webhook.Granularity) Entry {
	return Entry{
		Offset: off, Workspace: ws, Epoch: 1, Granularity: g,
		Account: schemas.Account{FullName: "Amnon Haha", Email: "amnon@acme.com", Phone: "+972500000000"},
		Chat:    schemas.Chat{ChatID: chat, FullName: "John Doe", ChatURL: "https://app.example/chat/" + chat},
		Message: Message{ID: id, Direction: "sent", At: at, Text: "text of " + id,
			Sender: schemas.Party{FullName: "John Doe"}, Recipient: schemas.Party{FullName: "Jane Smith"}},
	}
}

// drain seals everything due at upTo and claims and acks every bundle, returning
// the bundles in claim order.
func drain(t *testing.T, s *Store, partition int, upTo time.Time) []Bundle {
	t.Helper()
	var out []Bundle
	for _, c := range drainClaimed(t, s, partition, upTo) {
		out = append(out, c.Bundle)
	}
	return out
}

// drainClaimed is drain returning the claims themselves.
func drainClaimed(t *testing.T, s *Store, partition int, upTo time.Time) []Claimed {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Seal(ctx, partition, upTo, -1, 10000); err != nil {
		t.Fatal(err)
	}
	var out []Claimed
	for {
		claimed, err := s.Claim(ctx, partition, 100, time.Minute, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) == 0 {
			return out
		}
		for _, c := range claimed {
			if err := s.Ack(ctx, c); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
	}
}

// drainIDs drains like drain and returns the ids of every message delivered,
// in delivery order.
func drainIDs(t *testing.T, s *Store, partition int, upTo time.Time) []string {
	t.Helper()
	var out []string
	for _, b := range drain(t, s, partition, upTo) {
		out = append(out, ids(b)...)
	}
	return out
}

func ids(b Bundle) []string {
	out := make([]string, len(b.Messages))
	for i, m := range b.Messages {
		out[i] = m.ID
	}
	return out
}

func mustAppend(t *testing.T, s *Store, partition int, es ...Entry) AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), partition, es, es[len(es)-1].Offset, -1)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestWindowSealsOnlyAfterCloseAndGrace(t *testing.T) {
	base := utc("2024-02-29T10:00:00Z")
	clk := clockwork.NewFakeClockAt(base.Add(62 * time.Minute)) // m3 is not in the future
	s := newTestStore(t, clk)
	mustAppend(t, s, 0,
		entry(0, "ws", "c1", "m2", base.Add(20*time.Minute), webhook.H1),
		entry(1, "ws", "c1", "m1", base.Add(10*time.Minute), webhook.H1),
		entry(2, "ws", "c1", "m3", base.Add(61*time.Minute), webhook.H1),
	)
	if got := drain(t, s, 0, base.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("sealed at the close, before the grace period: %v", got)
	}
	clk.Advance(base.Add(time.Hour + time.Minute).Sub(clk.Now()))
	got := drain(t, s, 0, clk.Now())
	if len(got) != 1 {
		t.Fatalf("got %d bundles after close+grace, want 1", len(got))
	}
	b := got[0]
	if fmt.Sprint(ids(b)) != "[m1 m2]" {
		t.Fatalf("bundle holds %v, want [m1 m2] sorted by timestamp", ids(b))
	}
	if !b.WindowStart.Equal(base) || b.Granularity != webhook.H1 || b.Workspace != "ws" || b.ChatID != "c1" {
		t.Fatalf("bundle metadata = %+v", b)
	}
	if b.Account.FullName != "Amnon Haha" || b.Chat.ChatURL != "https://app.example/chat/c1" {
		t.Fatalf("details not kept: %+v %+v", b.Account, b.Chat)
	}
	if b.Attempt != 1 {
		t.Fatalf("first claim has attempt %d", b.Attempt)
	}
}

func TestReplayedBatchIsANoOp(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	batch := []Entry{entry(10, "ws", "c", "a", base, webhook.H1), entry(11, "ws", "c", "b", base, webhook.H1)}
	if res := mustAppend(t, s, 3, batch...); res.Applied != 2 {
		t.Fatalf("first append applied %d", res.Applied)
	}
	if res := mustAppend(t, s, 3, batch...); res.Applied != 0 || res.Duplicates != 0 {
		t.Fatalf("replayed append = %+v, want nothing applied", res)
	}
	// A batch straddling the watermark applies only what is new.
	res := mustAppend(t, s, 3, entry(11, "ws", "c", "b", base, webhook.H1), entry(12, "ws", "c", "c", base, webhook.H1))
	if res.Applied != 1 {
		t.Fatalf("straddling append applied %d, want 1", res.Applied)
	}
	if wm, _ := s.Watermark(context.Background(), 3); wm != 12 {
		t.Fatalf("watermark = %d, want 12", wm)
	}
	clk.Advance(base.Add(2 * time.Hour).Sub(clk.Now()))
	got := drain(t, s, 3, clk.Now())
	if len(got) != 1 || fmt.Sprint(ids(got[0])) != "[a b c]" {
		t.Fatalf("bundles = %v", got)
	}
}

// inNoneAndHourly runs test in granularity none and in 1h windows, each with
// a store of its own on a fake clock at base.
func inNoneAndHourly(t *testing.T, base time.Time, test func(t *testing.T, g webhook.Granularity, clk *clockwork.FakeClock, s *Store)) {
	for _, g := range []webhook.Granularity{webhook.None, webhook.H1} {
		t.Run(string(g), func(t *testing.T) {
			clk := clockwork.NewFakeClockAt(base)
			test(t, g, clk, newTestStore(t, clk))
		})
	}
}

// TestUpstreamDuplicatesAppearOnce: a message id published again at a new offset
// is delivered once, and counted as a duplicate where it is dropped: on append
// in granularity none, when its bundle is read for a window (windows pack their
// messages and keep no index of ids).
func TestUpstreamDuplicatesAppearOnce(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	inNoneAndHourly(t, base, func(t *testing.T, g webhook.Granularity, clk *clockwork.FakeClock, s *Store) {
		first := entry(0, "ws", "c", "dup", base, g)
		first.Message.Text = "first copy"
		mustAppend(t, s, 0, first, entry(1, "ws", "c", "x", base, g))
		again := entry(5, "ws", "c", "dup", base, g)
		again.Message.Text = "second copy"
		res := mustAppend(t, s, 0, again)
		onAppend := 0
		if g == webhook.None {
			onAppend = 1
		}
		if res.Duplicates != onAppend || res.Applied != 1-onAppend {
			t.Fatalf("duplicate append = %+v, want %d duplicates", res, onAppend)
		}
		clk.Advance(base.Add(2 * time.Hour).Sub(clk.Now()))
		var texts []string
		dropped := 0
		for _, c := range drainClaimed(t, s, 0, clk.Now()) {
			dropped += c.duplicates
			for _, m := range c.Messages {
				texts = append(texts, m.ID+": "+m.Text)
			}
		}
		if want := "[dup: first copy x: text of x]"; fmt.Sprint(texts) != want {
			t.Fatalf("delivered %v, want %s", texts, want)
		}
		if dropped != 1-onAppend {
			t.Fatalf("reading the bundles dropped %d duplicates, want %d", dropped, 1-onAppend)
		}
	})
}

// A chat's messages of granularity none go to Redis as one group, whose ids
// are added at once; a duplicate among them, of an earlier batch or of the
// same one, must still be the only message dropped, and the partition's
// oldest buffered offset must be the first message kept.
func TestNoneDropsDuplicatesInsideABatch(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	ctx := context.Background()
	copyOf := func(off int64, id, text string) Entry {
		e := entry(off, "ws", "c", id, base, webhook.None)
		e.Message.Text = text
		return e
	}
	appendWant := func(applied, dups int, oldest int64, es ...Entry) {
		t.Helper()
		if res := mustAppend(t, s, 0, es...); res.Applied != applied || res.Duplicates != dups {
			t.Fatalf("append of %d = %+v, want %d applied and %d duplicates", len(es), res, applied, dups)
		}
		cp, err := s.Checkpoint(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Oldest != oldest {
			t.Fatalf("oldest buffered offset = %d, want %d", cp.Oldest, oldest)
		}
	}
	deliver := func(want string) {
		t.Helper()
		var texts []string
		for _, c := range drainClaimed(t, s, 0, clk.Now()) {
			for _, m := range c.Messages {
				texts = append(texts, m.ID+": "+m.Text)
			}
		}
		if fmt.Sprint(texts) != want {
			t.Fatalf("delivered %v, want %s", texts, want)
		}
	}
	appendWant(2, 1, 0, copyOf(0, "a", "first"), copyOf(1, "b", "first"), copyOf(2, "a", "again in the batch"))
	appendWant(1, 1, 0, copyOf(3, "b", "again a batch later"), copyOf(4, "c", "first"))
	deliver("[a: first b: first c: first]")
	// The queue is empty: the batch's first message is a duplicate, and the
	// second is where the partition's consumption now waits.
	appendWant(1, 1, 6, copyOf(5, "c", "again after delivery"), copyOf(6, "d", "first"))
	deliver("[d: first]")
}

// A chat remembers the ids of its last SeenPerChat messages of granularity
// none, for SeenFor after its latest: an id older than those is delivered
// again, and the ids of a chat gone quiet leave Redis.
func TestNoneRemembersSeenPerChatIdsForSeenFor(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	rdb := testenv.Redis(t)
	s, err := NewStore(Config{Redis: rdb, Prefix: testenv.KeyPrefix(), Clock: clk, SeenPerChat: 2, SeenFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := func(off int64, id string) Entry { return entry(off, "ws", "c", id, base, webhook.None) }
	mustAppend(t, s, 0, e(0, "a"), e(1, "b"), e(2, "c"))
	res := mustAppend(t, s, 0, e(3, "c"), e(4, "b"), e(5, "a"))
	if res.Applied != 1 || res.Duplicates != 2 {
		t.Fatalf("append = %+v, want a (forgotten) applied and b, c dropped", res)
	}
	var got []string
	for _, b := range drain(t, s, 0, clk.Now()) {
		got = append(got, ids(b)...)
	}
	if fmt.Sprint(got) != "[a b c a]" {
		t.Fatalf("delivered %v, want [a b c a]", got)
	}
	// Redis expires the ids on its own clock: their time to live is what an
	// operator can check.
	ttl, err := rdb.PTTL(context.Background(), s.keys(0).seen(chatRef("ws", "c"))).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("the chat's seen ids expire in %v, want SeenFor, 1h", ttl)
	}
}

// deliverTenOClock returns a store whose chat "c" had its 10:00 hourly window
// (one on-time message) delivered at 11:30, with the clock at 11:30, and that
// delivered bundle.
func deliverTenOClock(t *testing.T) (base time.Time, clk *clockwork.FakeClock, s *Store, first Bundle) {
	t.Helper()
	base = utc("2024-01-01T10:00:00Z")
	clk = clockwork.NewFakeClockAt(base)
	s = newTestStore(t, clk)
	mustAppend(t, s, 0, entry(0, "ws", "c", "on-time", base.Add(5*time.Minute), webhook.H1))
	clk.Advance(base.Add(90 * time.Minute).Sub(clk.Now()))
	got := drain(t, s, 0, clk.Now())
	if len(got) != 1 {
		t.Fatalf("want the 10:00 bundle, got %v", got)
	}
	return base, clk, s, got[0]
}

func TestLateMessageJoinsTheOpenWindow(t *testing.T) {
	base, clk, s, first := deliverTenOClock(t)
	// A message of 10:30 arrives after the 10:00 window was delivered.
	mustAppend(t, s, 0, entry(1, "ws", "c", "late", base.Add(30*time.Minute), webhook.H1))
	clk.Advance(base.Add(3 * time.Hour).Sub(clk.Now()))
	second := drain(t, s, 0, clk.Now())
	if len(second) != 1 || fmt.Sprint(ids(second[0])) != "[late]" {
		t.Fatalf("late message: got %v", second)
	}
	if want := base.Add(time.Hour); !second[0].WindowStart.Equal(want) {
		t.Fatalf("late message went to window %s, want the open one %s", second[0].WindowStart, want)
	}
	if second[0].ID == first.ID {
		t.Fatal("the late bundle reuses the delivered bundle's id; receivers would drop it")
	}
}

// TestLateMessageOfALaggingConsumerKeepsChatOrder: a consumer that lags (a
// replay after a crash) appends a late message and then the chat's next one,
// whose window is still open. The late message must join the chat's first open
// window, not the window of now: there it would be delivered after the next
// message's bundle. Found by `make chaos` (cmd/outbound-chaos).
func TestLateMessageOfALaggingConsumerKeepsChatOrder(t *testing.T) {
	base, clk, s, _ := deliverTenOClock(t)
	// Hours later the consumer appends a late 10:30 message, then the chat's
	// 11:10 message.
	clk.Advance(base.Add(4*time.Hour + 30*time.Minute).Sub(clk.Now()))
	mustAppend(t, s, 0, entry(1, "ws", "c", "late", base.Add(30*time.Minute), webhook.H1),
		entry(2, "ws", "c", "next", base.Add(70*time.Minute), webhook.H1))
	clk.Advance(base.Add(6 * time.Hour).Sub(clk.Now()))
	if got := drainIDs(t, s, 0, clk.Now()); fmt.Sprint(got) != "[late next]" {
		t.Fatalf("delivered in the order %v, want [late next]", got)
	}
}

func TestFutureTimestampIsClampedIntoTheCurrentWindow(t *testing.T) {
	now := utc("2024-01-01T10:20:00Z")
	clk := clockwork.NewFakeClockAt(now)
	s := newTestStore(t, clk)
	mustAppend(t, s, 0, entry(0, "ws", "c", "now", now, webhook.H1), entry(1, "ws", "c", "next-year", now.AddDate(1, 0, 0), webhook.H1))
	clk.Advance(now.Add(2 * time.Hour).Sub(clk.Now()))
	got := drain(t, s, 0, clk.Now())
	if len(got) != 1 || len(got[0].Messages) != 2 {
		t.Fatalf("want one bundle with both messages, got %v", got)
	}
	if !got[0].WindowStart.Equal(utc("2024-01-01T10:00:00Z")) {
		t.Fatalf("window %s", got[0].WindowStart)
	}
	// The payload keeps the message's own timestamp; only its window is clamped.
	if !got[0].Messages[1].At.Equal(now.AddDate(1, 0, 0)) {
		t.Fatalf("timestamp rewritten: %s", got[0].Messages[1].At)
	}
}

func TestGranularityChangeKeepsTheOpenWindowSize(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base.Add(10 * time.Hour))
	s := newTestStore(t, clk)
	mustAppend(t, s, 0, entry(0, "ws", "c", "under-24h", base.Add(9*time.Hour), webhook.H24))
	// The webhook switches to 1h at 10:00; the open 24h window keeps its size and
	// takes the chat's messages until it closes, so the chat stays in order.
	mustAppend(t, s, 0, entry(1, "ws", "c", "after-change", base.Add(10*time.Hour+time.Minute), webhook.H1))
	clk.Advance(base.Add(12 * time.Hour).Sub(clk.Now()))
	if got := drain(t, s, 0, clk.Now()); len(got) != 0 {
		t.Fatalf("a 1h window was flushed while the 24h window was open: %v", got)
	}
	clk.Advance(base.Add(24*time.Hour + 2*time.Minute).Sub(clk.Now()))
	got := drain(t, s, 0, clk.Now())
	if len(got) != 1 || got[0].Granularity != webhook.H24 || fmt.Sprint(ids(got[0])) != "[under-24h after-change]" {
		t.Fatalf("got %+v", got)
	}
	// After it closed, new messages use the new size.
	mustAppend(t, s, 0, entry(2, "ws", "c", "next-day", base.Add(24*time.Hour+5*time.Minute), webhook.H1))
	clk.Advance(base.Add(26 * time.Hour).Sub(clk.Now()))
	got = drain(t, s, 0, clk.Now())
	if len(got) != 1 || got[0].Granularity != webhook.H1 || !got[0].WindowStart.Equal(base.Add(24*time.Hour)) {
		t.Fatalf("got %+v", got)
	}
}

// TestGranularityChangeSplitsABatchByTimestamp: after a change from 6h to 24h,
// one batch holds messages of the same 24h window, some inside the chat's open
// 6h window and some after it. Each goes where its timestamp says, even though
// they share a window of the new size (the store applies such a chat's
// messages one by one instead of as one group).
func TestGranularityChangeSplitsABatchByTimestamp(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base.Add(14 * time.Hour))
	s := newTestStore(t, clk)
	mustAppend(t, s, 0, entry(0, "ws", "c", "6h-open", base.Add(6*time.Hour+time.Minute), webhook.H6))
	mustAppend(t, s, 0,
		entry(1, "ws", "c", "in-6h", base.Add(7*time.Hour), webhook.H24),
		entry(2, "ws", "c", "after-6h", base.Add(13*time.Hour), webhook.H24),
		entry(3, "ws", "c", "in-6h-too", base.Add(8*time.Hour), webhook.H24))
	clk.Advance(base.Add(48 * time.Hour).Sub(clk.Now()))
	var got []string
	for _, b := range drain(t, s, 0, clk.Now()) {
		got = append(got, fmt.Sprint(b.Granularity, ids(b)))
	}
	if want := "[6h[6h-open in-6h in-6h-too] 24h[after-6h]]"; fmt.Sprint(got) != want {
		t.Fatalf("bundles %v, want %s", got, want)
	}
}

// TestAStaleConsumerAppendsOnlyWhatIsNew: a consumer whose view of the
// watermark is behind (a zombie, or the owner before a rebalance) appends a
// batch that overlaps what another consumer applied: only its newer records
// are appended, once, in both granularities.
func TestAStaleConsumerAppendsOnlyWhatIsNew(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	inNoneAndHourly(t, base, func(t *testing.T, g webhook.Granularity, clk *clockwork.FakeClock, s *Store) {
		var es []Entry
		for i := range 8 {
			es = append(es, entry(int64(i), "ws", "c", fmt.Sprint("m", i), base.Add(time.Duration(i)*time.Second), g))
		}
		mustAppend(t, s, 0, es[:5]...)
		res, err := s.Append(context.Background(), 0, es[2:], 7, 1)
		if err != nil || res.Applied != 3 {
			t.Fatalf("the stale append = %+v, %v; want the 3 records past the watermark applied", res, err)
		}
		if wm, _ := s.Watermark(context.Background(), 0); wm != 7 {
			t.Fatalf("watermark %d, want 7", wm)
		}
		clk.Advance(2 * time.Hour)
		if got := drainIDs(t, s, 0, clk.Now()); fmt.Sprint(got) != "[m0 m1 m2 m3 m4 m5 m6 m7]" {
			t.Fatalf("delivered %v, want m0 to m7 once each", got)
		}
	})
}

func TestNoneKeepsPartitionOrderPerChat(t *testing.T) {
	now := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(now)
	s := newTestStore(t, clk)
	ctx := context.Background()
	// One batch, so that each chat queues more messages than the append
	// script passes to one RPUSH (400).
	const n = 1300
	var es []Entry
	for i := range n {
		// Timestamps deliberately out of order: delivery follows the partition.
		es = append(es, entry(int64(i), "ws", fmt.Sprint("c", i%3), fmt.Sprint("m", i), now.Add(-time.Duration(i)*time.Second), webhook.None))
	}
	mustAppend(t, s, 0, es...)
	if w, err := s.Waiting(ctx, 1, "ws"); err != nil || w != (Waiting{Bundles: n}) {
		t.Fatalf("Waiting = %+v, %v; want %d bundles", w, err, n)
	}
	// The buffered index holds each chat's first message.
	if got, err := s.cfg.Redis.ZRangeWithScores(ctx, s.keys(0).buffered(), 0, -1).Result(); err != nil || len(got) != 3 ||
		got[0].Score != 0 || got[1].Score != 1 || got[2].Score != 2 {
		t.Fatalf("buffered index = %v, %v; want the offsets 0, 1 and 2 of the three chats", got, err)
	}
	perChat := map[string][]string{}
	for _, b := range drain(t, s, 0, now) {
		if b.Granularity != webhook.None || len(b.Messages) != 1 {
			t.Fatalf("bundle %+v", b)
		}
		perChat[b.ChatID] = append(perChat[b.ChatID], b.Messages[0].ID)
	}
	for c, got := range perChat {
		var want []string
		for i := range n {
			if fmt.Sprint("c", i%3) == c {
				want = append(want, fmt.Sprint("m", i))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chat %s delivered %v, want %v", c, got, want)
		}
	}
	if cp, err := s.Checkpoint(ctx, 0); err != nil || cp.Oldest != -1 {
		t.Fatalf("Checkpoint after delivering everything = %+v, %v; want nothing buffered", cp, err)
	}
}

// TestSwitchingToNoneMidBatchQueuesEveryMessage: a batch that holds a chat's
// last windowed messages and its first of granularity none (the workspace
// switched) delivers all of them. The none messages used to share a group, of
// which the script reads one message: the others were lost.
func TestSwitchingToNoneMidBatchQueuesEveryMessage(t *testing.T) {
	now := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(now)
	s := newTestStore(t, clk)
	switched := func(e Entry) Entry { e.Epoch = 2; return e }
	mustAppend(t, s, 0,
		entry(0, "ws", "c", "w1", now, webhook.H1), entry(1, "ws", "c", "w2", now, webhook.H1),
		switched(entry(2, "ws", "c", "n1", now, webhook.None)), switched(entry(3, "ws", "c", "n2", now, webhook.None)),
		switched(entry(4, "ws", "c", "n3", now, webhook.None)))
	clk.Advance(2 * time.Hour)
	if got := fmt.Sprint(drainIDs(t, s, 0, clk.Now())); got != "[n1 n2 n3 w1 w2]" {
		t.Fatalf("delivered %s, want the none messages as they came, then the window: [n1 n2 n3 w1 w2]", got)
	}
}

func TestOnlyTheHeadOfAChatIsClaimedAndRetryKeepsOrder(t *testing.T) {
	now := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(now)
	s := newTestStore(t, clk)
	ctx := context.Background()
	mustAppend(t, s, 0, entry(0, "ws", "c", "first", now, webhook.None), entry(1, "ws", "c", "second", now, webhook.None))
	claimed, err := s.Claim(ctx, 0, 10, time.Minute, 0, nil)
	if err != nil || len(claimed) != 1 || claimed[0].Messages[0].ID != "first" {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	if again, _ := s.Claim(ctx, 0, 10, time.Minute, 0, nil); len(again) != 0 {
		t.Fatalf("a leased chat was claimed again: %+v", again)
	}
	if err := s.Retry(ctx, claimed[0], now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(now.Add(10 * time.Second).Sub(clk.Now()))
	claimed, _ = s.Claim(ctx, 0, 10, time.Minute, 0, nil)
	if len(claimed) != 1 || claimed[0].Messages[0].ID != "first" || claimed[0].Attempt != 2 {
		t.Fatalf("after retry: %+v", claimed)
	}
	if claimed[0].ID != s.mustClaimID(t, claimed[0]) {
		t.Fatal("bundle id changed between attempts")
	}
}

func (s *Store) mustClaimID(t *testing.T, c Claimed) string {
	t.Helper()
	return bundleID(c.Workspace, c.ChatID, "msg", c.Messages[0].ID, fmt.Sprint(c.Epoch))
}

func TestExpiredLeaseIsTakenOverAndStaleAckIsANoOp(t *testing.T) {
	now := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(now)
	s := newTestStore(t, clk)
	ctx := context.Background()
	mustAppend(t, s, 0, entry(0, "ws", "c", "a", now, webhook.None), entry(1, "ws", "c", "b", now, webhook.None))
	dead, _ := s.Claim(ctx, 0, 10, 30*time.Second, 0, nil) // this worker dies mid-delivery
	clk.Advance(now.Add(31 * time.Second).Sub(clk.Now()))
	taken, _ := s.Claim(ctx, 0, 10, 30*time.Second, 0, nil)
	if len(dead) != 1 || len(taken) != 1 || taken[0].ID != dead[0].ID {
		t.Fatalf("takeover: dead=%+v taken=%+v", dead, taken)
	}
	if err := s.Ack(ctx, taken[0]); err != nil {
		t.Fatal(err)
	}
	// The zombie acks late: it must not remove the chat's next bundle.
	if err := s.Ack(ctx, dead[0]); err != nil {
		t.Fatal(err)
	}
	next, _ := s.Claim(ctx, 0, 10, 30*time.Second, 0, nil)
	if len(next) != 1 || next[0].Messages[0].ID != "b" {
		t.Fatalf("next bundle lost after a stale ack: %+v", next)
	}
}

// countStateReads counts the reads of chat state that s sends.
func countStateReads(s *Store) *atomic.Int64 {
	h := &stateReads{}
	s.cfg.Redis.AddHook(h)
	return &h.n
}

type stateReads struct{ n atomic.Int64 }

func (h *stateReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *stateReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *stateReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "hmget" && strings.Contains(fmt.Sprint(c.Args()[1]), ":c:") {
				h.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// A chat's next batch takes the chat's state as the previous append left it,
// without reading it. When that is stale (another worker opened a window of
// the chat, a flusher sealed one), the script refuses it and the store reads
// the state again: every message still lands in the window it would have
// without the shortcut.
func TestAppendRemembersChatStateAndRereadsWhatChanged(t *testing.T) {
	base := utc("2024-01-01T10:00:00Z")
	clk := clockwork.NewFakeClockAt(base.Add(10 * time.Minute))
	s := newTestStore(t, clk)
	reads := countStateReads(s)
	mustAppend(t, s, 0, entry(0, "ws", "c", "m1", base.Add(5*time.Minute), webhook.H1))
	mustAppend(t, s, 0, entry(1, "ws", "c", "m2", base.Add(6*time.Minute), webhook.H1),
		entry(2, "ws", "c", "m3", base.Add(7*time.Minute), webhook.H1))
	if n := reads.Load(); n != 1 {
		t.Fatalf("two batches of one chat read its state %d times, want once", n)
	}
	// Another worker (the partition's owner after a rebalance) opens the
	// chat's 11:00 window; this store still remembers 10:00 as open.
	other, err := NewStore(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	mustAppend(t, other, 0, entry(3, "ws", "c", "m4", base.Add(65*time.Minute), webhook.H1))
	mustAppend(t, s, 0, entry(4, "ws", "c", "m5", base.Add(66*time.Minute), webhook.H1))
	// The 10:00 window is sealed; a late 10:30 message must join the open
	// 11:00 window, though this store's memory has no sealed mark.
	clk.Advance(base.Add(90 * time.Minute).Sub(clk.Now()))
	if got := drain(t, s, 0, clk.Now()); len(got) != 1 || fmt.Sprint(ids(got[0])) != "[m1 m2 m3]" {
		t.Fatalf("10:00 window: got %v", got)
	}
	mustAppend(t, s, 0, entry(5, "ws", "c", "late", base.Add(30*time.Minute), webhook.H1))
	clk.Advance(base.Add(3 * time.Hour).Sub(clk.Now()))
	got := drain(t, s, 0, clk.Now())
	if len(got) != 1 || fmt.Sprint(ids(got[0])) != "[late m4 m5]" || !got[0].WindowStart.Equal(base.Add(time.Hour)) {
		t.Fatalf("11:00 window: got %v", got)
	}
	// The other store shares the client, so its one read counts too.
	if n := reads.Load(); n != 4 {
		t.Fatalf("the chat's state was read %d times, want 4: once by each store at first, then once after each change", n)
	}
}

// TestMessagesRacingTheSealAreNeverLost appends into windows while other
// goroutines seal them, many times over: every message must come out in exactly
// one bundle.
func TestMessagesRacingTheSealAreNeverLost(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	ctx := context.Background()
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := range n {
			// Time moves on while messages of the closing window keep arriving.
			clk.Advance(base.Add(time.Duration(i) * 3 * time.Second).Sub(clk.Now()))
			e := entry(int64(i), "ws", fmt.Sprint("c", i%4), fmt.Sprint("m", i), base.Add(time.Duration(i)*2*time.Second), webhook.H1)
			if _, err := s.Append(ctx, 0, []Entry{e}, int64(i), -1); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := make(chan []Bundle, 2)
	for range 2 { // two flushers compete for the same windows
		go func() {
			defer wg.Done()
			var got []Bundle
			for range 400 {
				if _, err := s.Seal(ctx, 0, clk.Now(), -1, 50); err != nil {
					t.Error(err)
					return
				}
				cl, err := s.Claim(ctx, 0, 50, time.Hour, 0, nil)
				if err != nil {
					t.Error(err)
					return
				}
				for _, c := range cl {
					if err := s.Ack(ctx, c); err != nil {
						t.Error(err)
					}
					got = append(got, c.Bundle)
				}
			}
			seen <- got
		}()
	}
	wg.Wait()
	all := append(<-seen, <-seen...)
	clk.Advance(base.Add(1000 * time.Hour).Sub(clk.Now()))
	all = append(all, drain(t, s, 0, clk.Now())...)
	count := map[string]int{}
	bundleIDs := map[string]bool{}
	for _, b := range all {
		if bundleIDs[b.ID] {
			t.Fatalf("bundle %s delivered twice", b.ID)
		}
		bundleIDs[b.ID] = true
		for _, id := range ids(b) {
			count[id]++
		}
	}
	var missing, twice []string
	for i := range n {
		switch count[fmt.Sprint("m", i)] {
		case 0:
			missing = append(missing, fmt.Sprint("m", i))
		case 1:
		default:
			twice = append(twice, fmt.Sprint("m", i))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 || len(twice) > 0 {
		t.Fatalf("%d missing (%v), %d twice (%v)", len(missing), missing, len(twice), twice)
	}
}

func TestDropWorkspaceRemovesOnlyItsPendingWork(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	ctx := context.Background()
	mustAppend(t, s, 0,
		entry(0, "ws", "c1", "a", base, webhook.H1), entry(1, "ws", "c2", "b", base, webhook.H1), // two open windows
		entry(2, "ws", "c3", "c", base, webhook.None), entry(3, "ws", "c3", "d", base, webhook.None), // two queued bundles
		entry(4, "ws2", "c1", "keep", base, webhook.None), entry(5, "ws-other", "c1", "keep-too", base, webhook.H1),
		entry(6, "ws", "c4", "e", base.Add(-2*time.Hour), webhook.H1), // a window sealed below
	)
	if n, err := s.Seal(ctx, 0, base, -1, 10); err != nil || n != 1 {
		t.Fatalf("Seal = %d, %v; want the earlier window sealed", n, err)
	}
	windows, bundles, err := s.DropWorkspace(ctx, 0, "ws")
	if err != nil || windows != 2 || bundles != 3 {
		t.Fatalf("DropWorkspace = %d windows, %d bundles, %v; want 2, 3", windows, bundles, err)
	}
	// Nothing of the workspace's windows, bundles and queues stays behind.
	k := s.keys(0)
	for _, kind := range []string{"w:", "m:", "b:", "q:"} {
		left, err := s.cfg.Redis.Keys(ctx, string(k)+kind+"ws"+sep+"*").Result()
		if err != nil || len(left) > 0 {
			t.Fatalf("keys of ws left after the drop: %q (%v)", left, err)
		}
	}
	clk.Advance(base.Add(3 * time.Hour).Sub(clk.Now()))
	var left []string
	for _, b := range drain(t, s, 0, clk.Now()) {
		left = append(left, b.Workspace+"/"+ids(b)[0])
	}
	sort.Strings(left)
	if fmt.Sprint(left) != "[ws-other/keep-too ws2/keep]" {
		t.Fatalf("left after the drop: %v", left)
	}
}

// A chat whose last bundle is acknowledged between the drop's read of the
// ready index and its read of the queue has nothing left to drop: the drop
// still succeeds (its count change is zero, which Lua would format as "-0").
func TestDropWorkspaceOfAChatWithAnEmptyQueue(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	s := newTestStore(t, clockwork.NewFakeClockAt(base))
	ctx := context.Background()
	mustAppend(t, s, 0, entry(0, "ws", "c1", "a", base, webhook.H1))
	k := s.keys(0)
	// The state the race leaves: the chat still in the ready index, its queue empty.
	if err := s.cfg.Redis.ZAdd(ctx, k.ready(), redis.Z{Score: 0, Member: chatRef("ws", "c2")}).Err(); err != nil {
		t.Fatal(err)
	}
	windows, bundles, err := s.DropWorkspace(ctx, 0, "ws")
	if err != nil || windows != 1 || bundles != 0 {
		t.Fatalf("DropWorkspace = %d windows, %d bundles, %v; want 1, 0", windows, bundles, err)
	}
}

// TestWaitingFollowsSealsDeliveriesAndDrops checks the per-workspace counts
// that the workspace page shows, over two partitions, through every script
// that opens, seals, delivers or drops.
func TestWaitingFollowsSealsDeliveriesAndDrops(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	ctx := context.Background()
	want := func(ws string, w Waiting) {
		t.Helper()
		got, err := s.Waiting(ctx, 2, ws)
		if err != nil || got != w {
			t.Fatalf("Waiting(%s) = %+v, %v; want %+v", ws, got, err, w)
		}
	}
	batch := []Entry{
		entry(0, "ws", "c1", "a", base, webhook.H1), entry(1, "ws", "c2", "b", base, webhook.H1),
		entry(2, "ws", "c1", "a2", base.Add(time.Minute), webhook.H1), // same window as a
		entry(3, "ws", "c3", "c", base, webhook.None), entry(4, "ws", "c3", "d", base, webhook.None),
		entry(5, "ws2", "c1", "e", base, webhook.None),
	}
	mustAppend(t, s, 0, batch...)
	mustAppend(t, s, 1, entry(0, "ws", "c4", "f", base, webhook.H1))
	want("ws", Waiting{Windows: 3, Bundles: 2})
	want("ws2", Waiting{Bundles: 1})
	mustAppend(t, s, 0, batch...) // a replay counts nothing twice
	want("ws", Waiting{Windows: 3, Bundles: 2})

	clk.Advance(2 * time.Hour)
	if n, err := s.Seal(ctx, 0, clk.Now(), -1, 100); err != nil || n != 2 {
		t.Fatalf("Seal = %d, %v; want 2", n, err)
	}
	want("ws", Waiting{Windows: 1, Bundles: 4})

	claimed, err := s.Claim(ctx, 0, 10, time.Minute, 0, nil)
	if err != nil || len(claimed) != 4 { // heads of c1, c2, c3 and ws2's c1
		t.Fatalf("Claim = %d bundles, %v; want 4", len(claimed), err)
	}
	for _, c := range claimed {
		if c.Workspace == "ws" && c.ChatID == "c3" {
			if err := s.Retry(ctx, c, clk.Now()); err != nil { // a retry still waits
				t.Fatal(err)
			}
			continue
		}
		if err := s.Ack(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(ctx, c); err != nil { // a stale ack counts nothing
			t.Fatal(err)
		}
	}
	want("ws", Waiting{Windows: 1, Bundles: 2})
	want("ws2", Waiting{})

	if _, _, err := s.DropWorkspace(ctx, 0, "ws"); err != nil {
		t.Fatal(err)
	}
	want("ws", Waiting{Windows: 1})
	if w, b, err := s.DropWorkspace(ctx, 1, "ws"); err != nil || w != 1 || b != 0 {
		t.Fatalf("DropWorkspace(1) = %d windows, %d bundles, %v; want 1, 0", w, b, err)
	}
	want("ws", Waiting{})
}

func TestClaimHonoursPerWorkspaceHeadroom(t *testing.T) {
	now := utc("2024-01-01T00:00:00Z")
	s := newTestStore(t, clockwork.NewFakeClockAt(now))
	ctx := context.Background()
	var es []Entry
	for i := range 5 {
		es = append(es, entry(int64(i), "busy", fmt.Sprint("c", i), fmt.Sprint("b", i), now, webhook.None))
		es = append(es, entry(int64(10+i), "free", fmt.Sprint("c", i), fmt.Sprint("f", i), now, webhook.None))
	}
	mustAppend(t, s, 0, es...)
	// "busy" has one delivery slot left, every other workspace three.
	claimed, err := s.Claim(ctx, 0, 100, time.Minute, 3, map[string]int{"busy": 1})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, c := range claimed {
		per[c.Workspace]++
	}
	if per["busy"] != 1 || per["free"] != 3 {
		t.Fatalf("claimed %v, want busy:1 free:3", per)
	}
	// What was over the cap is still due for the next claim, not leased.
	rest, _ := s.Claim(ctx, 0, 100, time.Minute, 0, nil)
	if len(rest) != 6 {
		t.Fatalf("%d chats left due, want 6", len(rest))
	}
}

func TestDetailsAreTheLatestSeenAcrossBatchesAndReplays(t *testing.T) {
	base := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	renamed := func(e Entry, name string) Entry { e.Chat.FullName = name; return e }
	// First batch: the chat is renamed on its third message.
	mustAppend(t, s, 0,
		entry(0, "ws", "c", "a", base, webhook.H1), entry(1, "ws", "c", "b", base, webhook.H1),
		renamed(entry(2, "ws", "c", "c", base, webhook.H1), "Renamed"), renamed(entry(3, "ws", "c", "d", base, webhook.H1), "Renamed"))
	// A replay straddling the watermark whose first record (skipped) is the one
	// carrying the details: the new record must still get them.
	mustAppend(t, s, 0, renamed(entry(3, "ws", "c", "d", base, webhook.H1), "Renamed"), renamed(entry(4, "ws", "c", "e", base, webhook.H1), "Renamed"))
	clk.Advance(base.Add(2 * time.Hour).Sub(clk.Now()))
	got := drain(t, s, 0, clk.Now())
	if len(got) != 1 || len(got[0].Messages) != 5 {
		t.Fatalf("want one bundle of 5, got %+v", got)
	}
	if got[0].Chat.FullName != "Renamed" || got[0].Account.FullName != "Amnon Haha" {
		t.Fatalf("details = %+v / %+v, want the latest (Renamed)", got[0].Chat, got[0].Account)
	}
}

// TestWindowBufferedBeforeTheUpgradeIsDeliveredWhole: during a rolling upgrade
// a window holds messages the previous version stored (v1Record) and messages
// this one stores; its bundle carries both, unchanged and in order.
func TestWindowBufferedBeforeTheUpgradeIsDeliveredWhole(t *testing.T) {
	base := utc("2024-01-01T10:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	ctx := context.Background()
	old := entry(7, "ws", "c", v1Message.ID, v1Message.At, webhook.H1)
	old.Message = v1Message
	mustAppend(t, s, 0, old)
	// Store the record as the previous version did: in a field of its own
	// named by its id, not in the window's list.
	member := strings.Join([]string{chatRef("ws", "c"), "1h", fmt.Sprint(base.UnixMilli()),
		fmt.Sprint(base.Add(time.Hour).UnixMilli()), "1"}, sep)
	k := s.keys(0)
	if n, err := s.cfg.Redis.Del(ctx, k.messages(member)).Result(); err != nil || n != 1 {
		t.Fatalf("removing the window's list: %d removed, %v (want 1)", n, err)
	}
	if err := s.cfg.Redis.HDel(ctx, k.window(member), fieldMessages).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.cfg.Redis.HSet(ctx, k.window(member), v1Message.ID, v1Record).Err(); err != nil {
		t.Fatal(err)
	}
	first := entry(8, "ws", "c", "new-first", base.Add(time.Minute), webhook.H1)
	received := entry(9, "ws", "c", "new-received", base.Add(3*time.Minute), webhook.H1)
	received.Message.Direction = schemas.DirectionReceived
	other := entry(10, "ws", "c", "new-other", base.Add(3*time.Minute), webhook.H1)
	other.Message.Direction = "not in the schema"
	mustAppend(t, s, 0, first, received, other)

	clk.Advance(2 * time.Hour)
	bundles := drain(t, s, 0, clk.Now())
	if len(bundles) != 1 {
		t.Fatalf("%d bundles, want 1", len(bundles))
	}
	got := bundles[0].Messages
	want := []Message{first.Message, v1Message, received.Message, other.Message}
	for i := range want {
		want[i].At = want[i].At.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("bundle messages:\n got %+v\nwant %+v", got, want)
	}
}

// TestWindowPackedInChunksBeforeTheUpgradeIsDeliveredWhole: a window that the
// version before lists packed into chunks of its hash (full ones and the open
// one) and that this version appends to delivers both, in order, and leaves no
// key behind once acknowledged.
func TestWindowPackedInChunksBeforeTheUpgradeIsDeliveredWhole(t *testing.T) {
	base := utc("2024-01-01T10:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	ctx := context.Background()
	var before []Entry
	for i := range 3 {
		before = append(before, entry(int64(i), "ws", "c", fmt.Sprint("old", i), base.Add(time.Duration(i)*time.Minute), webhook.H1))
	}
	mustAppend(t, s, 0, before...)
	// Rewrite the window as that version left it: its first message in a
	// full chunk, the other two in the open one, and no list.
	member := strings.Join([]string{chatRef("ws", "c"), "1h", fmt.Sprint(base.UnixMilli()),
		fmt.Sprint(base.Add(time.Hour).UnixMilli()), "1"}, sep)
	k := s.keys(0)
	entries, err := s.cfg.Redis.LRange(ctx, k.messages(member), 0, -1).Result()
	if err != nil || len(entries) != 3 {
		t.Fatalf("the window's list holds %d entries (%v), want 3", len(entries), err)
	}
	pipe := s.cfg.Redis.TxPipeline()
	pipe.Del(ctx, k.messages(member))
	pipe.HDel(ctx, k.window(member), fieldMessages)
	pipe.HSet(ctx, k.window(member), fullChunkPrefix+"1", entries[0], fieldFullChunks, 1, fieldOpenChunk, entries[1]+entries[2])
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	late := entry(3, "ws", "c", "new-late", base.Add(30*time.Minute), webhook.H1)
	early := entry(4, "ws", "c", "new-early", base.Add(90*time.Second), webhook.H1)
	mustAppend(t, s, 0, late, early)

	clk.Advance(2 * time.Hour)
	want := []string{"old0", "old1", "new-early", "old2", "new-late"}
	if got := drainIDs(t, s, 0, clk.Now()); !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for _, key := range []string{k.window(member), k.bundle(member), k.messages(member)} {
		if n, err := s.cfg.Redis.Exists(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("%q left after its bundle was acknowledged (%v)", key, err)
		}
	}
}

// TestTheListMarkerIsRefusedByTheDecoderBefore: a version before lists reads
// every hash field that is not one of its own as a message under its id
// (decodeMessage, which this version still runs for such fields). The field
// that says a bundle's messages are in a list must fail that decoding, so that
// such a worker refuses the bundle, and does not deliver it without them.
func TestTheListMarkerIsRefusedByTheDecoderBefore(t *testing.T) {
	if _, _, err := decodeMessage(fieldMessages, nil); !errors.Is(err, errCorrupt) {
		t.Fatalf("decoding the list marker as a message: %v, want errCorrupt", err)
	}
}

// queueAsBefore queues a message of granularity none as the version before
// inline entries did: a bundle of its own, its member in the chat's queue and
// in the buffered index.
func queueAsBefore(t *testing.T, s *Store, partition int, e Entry) {
	t.Helper()
	ctx := context.Background()
	k := s.keys(partition)
	ref := chatRef(e.Workspace, e.Chat.ChatID)
	member := strings.Join([]string{ref, "none", fmt.Sprint(e.Offset), "0", fmt.Sprint(e.Epoch)}, sep)
	pipe := s.cfg.Redis.TxPipeline()
	pipe.ZAddNX(ctx, k.seen(ref), redis.Z{Score: float64(e.Offset), Member: e.Message.ID})
	pipe.HSet(ctx, k.bundle(member), fieldOpenChunk, encodeEntry(e.Message, e.Offset), fieldDetails, encodeDetails(e.Account, e.Chat))
	pipe.RPush(ctx, k.queue(ref), member)
	pipe.ZAdd(ctx, k.buffered(), redis.Z{Score: float64(e.Offset), Member: member})
	pipe.HIncrBy(ctx, k.waiting(), "b"+e.Workspace, 1)
	pipe.ZAddNX(ctx, k.ready(), redis.Z{Score: float64(s.cfg.Clock.Now().UnixMilli()), Member: ref})
	pipe.Set(ctx, k.watermark(), e.Offset, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNoneQueuedBeforeTheUpgradeIsDeliveredFirst: messages of granularity
// none that the previous version queued as bundles of their own are delivered
// after an upgrade, before the chat's messages queued since, with the same
// webhook ids; the checkpoint holds the oldest until it is delivered.
func TestNoneQueuedBeforeTheUpgradeIsDeliveredFirst(t *testing.T) {
	now := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(now)
	s := newTestStore(t, clk)
	ctx := context.Background()
	queueAsBefore(t, s, 0, entry(0, "ws", "c", "old1", now, webhook.None))
	queueAsBefore(t, s, 0, entry(1, "ws", "c", "old2", now, webhook.None))
	mustAppend(t, s, 0, entry(2, "ws", "c", "new1", now, webhook.None), entry(3, "ws", "c", "new2", now, webhook.None),
		entry(4, "ws", "c", "old1", now, webhook.None)) // an upstream duplicate of a message queued before
	if w, err := s.Waiting(ctx, 1, "ws"); err != nil || w != (Waiting{Bundles: 4}) {
		t.Fatalf("Waiting = %+v, %v; want 4 bundles", w, err)
	}
	var got []string
	for {
		cp := checkpoint(t, s, 0)
		claimed, err := s.Claim(ctx, 0, 10, time.Minute, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) == 0 {
			break
		}
		c := claimed[0]
		if cp.Oldest != int64(len(got)) { // offsets 0-3 go in order
			t.Fatalf("before delivering %v: oldest buffered offset %d, want %d", ids(c.Bundle), cp.Oldest, len(got))
		}
		if c.ID != s.mustClaimID(t, c) || c.Attempt != 1 || c.Chat.FullName != "John Doe" || c.Account.FullName != "Amnon Haha" {
			t.Fatalf("claimed %+v: want its webhook id, attempt 1 and the chat's details", c)
		}
		if err := s.Ack(ctx, c); err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(c.Bundle)...)
	}
	if fmt.Sprint(got) != "[old1 old2 new1 new2]" {
		t.Fatalf("delivered %v, want [old1 old2 new1 new2]", got)
	}
	if cp := checkpoint(t, s, 0); cp.Oldest != -1 {
		t.Fatalf("after delivering everything the oldest buffered offset is %d, want none", cp.Oldest)
	}
}

// TestAClaimTakesMessagesAndBundlesWithinTheCap: a claim takes chats whose
// head is a message of granularity none in one script and chats whose head
// is a bundle in a second; a workspace's cap holds across both, and both work
// after Redis lost its scripts (a restart).
func TestAClaimTakesMessagesAndBundlesWithinTheCap(t *testing.T) {
	now := utc("2024-01-01T00:00:00Z")
	clk := clockwork.NewFakeClockAt(now)
	s := newTestStore(t, clk)
	ctx := context.Background()
	mustAppend(t, s, 0, entry(0, "ws", "w1", "w1", now, webhook.H1), entry(1, "ws", "w2", "w2", now, webhook.H1))
	clk.Advance(2 * time.Hour)
	if n, err := s.Seal(ctx, 0, clk.Now(), -1, 100); err != nil || n != 2 {
		t.Fatalf("Seal = %d, %v; want 2", n, err)
	}
	mustAppend(t, s, 0, entry(2, "ws", "n1", "n1", clk.Now(), webhook.None), entry(3, "ws", "n1", "n1-next", clk.Now(), webhook.None),
		entry(4, "ws", "n2", "n2", clk.Now(), webhook.None))
	if err := s.cfg.Redis.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, step := range []struct {
		perWorkspace, want int
	}{{3, 3}, {0, 1}, {0, 0}} {
		claimed, err := s.Claim(ctx, 0, 10, time.Minute, step.perWorkspace, nil)
		if err != nil || len(claimed) != step.want {
			t.Fatalf("Claim with a cap of %d took %d chats, %v; want %d", step.perWorkspace, len(claimed), err, step.want)
		}
		for _, c := range claimed {
			got = append(got, ids(c.Bundle)...)
		}
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[n1 n2 w1 w2]" {
		t.Fatalf("claimed %v, want each chat's head once: [n1 n2 w1 w2]", got)
	}
}

// TestClaimLooksPastWorkspacesAtTheirCap: chats due at one instant sort by
// workspace, so one workspace's many chats fill the ready index's first
// pages; a claim still takes the other workspaces' chats, only the head of
// each chat, and leases each one once.
func TestClaimLooksPastWorkspacesAtTheirCap(t *testing.T) {
	now := utc("2024-01-01T00:00:00Z")
	s := newTestStore(t, clockwork.NewFakeClockAt(now))
	ctx := context.Background()
	var es []Entry
	for i := range 300 {
		es = append(es, entry(int64(i), "a", fmt.Sprintf("c%03d", i), fmt.Sprint("a", i), now, webhook.None))
	}
	es = append(es, entry(300, "b", "c0", "first", now, webhook.None), entry(301, "b", "c0", "second", now, webhook.None),
		entry(302, "b", "c1", "other", now, webhook.None))
	mustAppend(t, s, 0, es...)
	claimed, err := s.Claim(ctx, 0, 4, time.Minute, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range claimed {
		got = append(got, c.Workspace+"/"+ids(c.Bundle)[0])
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[a/a0 a/a1 b/first b/other]" {
		t.Fatalf("claimed %v, want two chats of each workspace, each chat's head", got)
	}
	// Leased: no other claim gets them, and b/c0's second bundle waits behind
	// its first.
	again, err := s.Claim(ctx, 0, 1000, time.Minute, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Workspace == "b" || ids(c.Bundle)[0] == "a0" || ids(c.Bundle)[0] == "a1" {
			t.Fatalf("%s/%s claimed again while leased", c.Workspace, ids(c.Bundle)[0])
		}
	}
	if len(again) != 298 {
		t.Fatalf("%d chats claimed after the first claim, want the other 298 of a", len(again))
	}
	for _, c := range claimed {
		if err := s.Ack(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	next, err := s.Claim(ctx, 0, 10, time.Minute, 0, nil)
	if err != nil || len(next) != 1 || ids(next[0].Bundle)[0] != "second" {
		t.Fatalf("after the acks claimed %d bundles (%v), want b/c0's second", len(next), err)
	}
}

// TestAWindowPacksItsMessages: a window of a few hundred messages, appended in
// batches as a consumer does, delivers every one of them in order, and holds
// them in Redis at little more than their own bytes. A field per message cost
// about 75 B of Redis's own per message; buffered messages are the bulk of
// Redis memory.
func TestAWindowPacksItsMessages(t *testing.T) {
	base := utc("2024-01-01T10:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	var batch []Entry
	var want []string
	entryBytes := 0
	for i := range 400 {
		e := entry(int64(i), "ws", "c", fmt.Sprintf("wamid.%024d", i), base.Add(time.Duration(i)*time.Second), webhook.H1)
		e.Message.Text = strings.Repeat("word ", 10+i%5*4) // 50 to 130 bytes, one in eight a paragraph
		if i%8 == 0 {
			e.Message.Text = strings.Repeat("word ", 120)
		}
		entryBytes += len(encodeEntry(e.Message, e.Offset))
		want = append(want, e.Message.ID)
		if batch = append(batch, e); len(batch) == 7 || i == 399 {
			mustAppend(t, s, 0, batch...)
			batch = nil
		}
	}
	member := strings.Join([]string{chatRef("ws", "c"), "1h", fmt.Sprint(base.UnixMilli()),
		fmt.Sprint(base.Add(time.Hour).UnixMilli()), "1"}, sep)
	var used int64
	for _, key := range []string{s.keys(0).window(member), s.keys(0).messages(member)} {
		n, err := s.cfg.Redis.MemoryUsage(context.Background(), key, 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		used += n
	}
	over := float64(used-int64(entryBytes)) / 400
	t.Logf("the window takes %d B for %d B of messages: %.1f B per message of its own", used, entryBytes, over)
	if over > 30 {
		t.Errorf("the window takes %d B for %d B of messages: %.1f B per message of its own, want at most 30", used, entryBytes, over)
	}
	clk.Advance(2 * time.Hour)
	if got := drainIDs(t, s, 0, clk.Now()); !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %d messages, want all %d in order:\n got %v", len(got), len(want), got)
	}
}

// TestPackedWindowsMatchAModel appends random batches, as a consumer would see
// them, to windows of three chats: upstream duplicates (a known id at a new
// offset, with other text and maybe another hour), messages larger than a
// chunk, and batches appended twice (a replay). Every bundle must hold exactly
// the model's messages: per chat and hour, the first copy of each id, ordered
// by timestamp and then offset.
func TestPackedWindowsMatchAModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			base := utc("2024-01-01T10:00:00Z")
			clk := clockwork.NewFakeClockAt(base.Add(3 * time.Hour))
			s := newTestStore(t, clk)
			r := rand.New(rand.NewPCG(seed, 14))
			type key struct {
				chat  string
				start time.Time
			}
			want := map[key][]Message{}
			firstOf := map[key]map[string]bool{}
			known := map[string][]string{} // chat -> ids so far
			var batch []Entry
			for off := range 600 {
				chat := fmt.Sprint("c", r.IntN(3))
				id := fmt.Sprintf("m%03d", off)
				if ids := known[chat]; len(ids) > 0 && r.IntN(5) == 0 {
					id = ids[r.IntN(len(ids))]
				} else {
					known[chat] = append(known[chat], id)
				}
				at := base.Add(time.Duration(r.IntN(3*3600)) * time.Second)
				e := entry(int64(off), "ws", chat, id, at, webhook.H1)
				e.Message.Text = fmt.Sprintf("%d ", off) + strings.Repeat("x", r.IntN(200))
				if r.IntN(20) == 0 {
					e.Message.Text += strings.Repeat("y", 5000) // alone in a chunk
				}
				k := key{chat, at.Truncate(time.Hour)}
				if firstOf[k] == nil {
					firstOf[k] = map[string]bool{}
				}
				if !firstOf[k][id] {
					firstOf[k][id] = true
					want[k] = append(want[k], e.Message)
				}
				if batch = append(batch, e); r.IntN(30) == 0 || off == 599 {
					mustAppend(t, s, 0, batch...)
					if r.IntN(5) == 0 {
						mustAppend(t, s, 0, batch...) // a replay changes nothing
					}
					batch = nil
				}
			}
			got := map[key][]Message{}
			for _, b := range drain(t, s, 0, base.Add(5*time.Hour)) {
				got[key{b.ChatID, b.WindowStart}] = b.Messages
			}
			for k, msgs := range want {
				sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].At.Before(msgs[j].At) })
				for i := range msgs {
					msgs[i].At = msgs[i].At.UTC()
				}
				if !reflect.DeepEqual(got[k], msgs) {
					t.Errorf("chat %s, window %s: got %d messages, want %d:\n got %v\nwant %v",
						k.chat, k.start.Format(time.TimeOnly), len(got[k]), len(msgs), texts(got[k]), texts(msgs))
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d bundles, want %d", len(got), len(want))
			}
		})
	}
}

// texts abbreviates messages to their ids and the offset their text starts with.
func texts(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		n, _, _ := strings.Cut(m.Text, " ")
		out[i] = m.ID + "@" + n
	}
	return out
}

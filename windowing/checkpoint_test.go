package windowing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/outbound-webhooks/outbound/webhook"
)

func checkpoint(t *testing.T, s *Store, partition int) Checkpoint {
	t.Helper()
	cp, err := s.Checkpoint(context.Background(), partition)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestCheckpointTracksTheOldestBufferedOffset: the oldest offset is the first
// one of the oldest window or bundle still waiting, through seal, ack and drop.
func TestCheckpointTracksTheOldestBufferedOffset(t *testing.T) {
	base := utc("2024-02-29T10:00:00Z")
	clk := clockwork.NewFakeClockAt(base.Add(30 * time.Minute))
	s := newTestStore(t, clk)
	if cp := checkpoint(t, s, 0); cp != (Checkpoint{Watermark: -1, Oldest: -1}) {
		t.Fatalf("empty partition: %+v", cp)
	}
	mustAppend(t, s, 0,
		entry(3, "ws", "c1", "m1", base.Add(time.Minute), webhook.H1),
		entry(4, "ws", "c2", "m2", base.Add(2*time.Minute), webhook.H24),
		entry(5, "ws", "c1", "m3", base.Add(3*time.Minute), webhook.H1),
		entry(6, "other", "c3", "m4", base.Add(4*time.Minute), webhook.None),
	)
	if cp := checkpoint(t, s, 0); cp != (Checkpoint{Watermark: 6, Oldest: 3}) {
		t.Fatalf("after append: %+v", cp)
	}
	// c1's 1h window (from offset 3) and c3's message are delivered; c2's day
	// window (from offset 4) still waits.
	clk.Advance(2 * time.Hour)
	drain(t, s, 0, clk.Now())
	if cp := checkpoint(t, s, 0); cp != (Checkpoint{Watermark: 6, Oldest: 4}) {
		t.Fatalf("after delivering the 1h window: %+v", cp)
	}
	if _, _, err := s.DropWorkspace(context.Background(), 0, "ws"); err != nil {
		t.Fatal(err)
	}
	if cp := checkpoint(t, s, 0); cp != (Checkpoint{Watermark: 6, Oldest: -1}) {
		t.Fatalf("after dropping the workspace: %+v", cp)
	}
}

// TestAWatermarkBelowTheAppliedOneChangesNothing: once Redis holds less than
// the consumer applied, append and seal refuse with a LostError.
func TestAWatermarkBelowTheAppliedOneChangesNothing(t *testing.T) {
	base := utc("2024-02-29T10:00:00Z")
	clk := clockwork.NewFakeClockAt(base.Add(30 * time.Minute))
	s := newTestStore(t, clk)
	ctx := context.Background()
	mustAppend(t, s, 0, entry(7, "ws", "c1", "m1", base, webhook.H1))
	var lost *LostError
	_, err := s.Append(ctx, 0, []Entry{entry(20, "ws", "c1", "m2", base, webhook.H1)}, 20, 12)
	if !errors.As(err, &lost) || lost.Watermark != 7 || lost.Applied != 12 {
		t.Fatalf("append over a lost watermark: %v", err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := s.Seal(ctx, 0, clk.Now(), 12, 10); !errors.As(err, &lost) {
		t.Fatalf("seal over a lost watermark: %v", err)
	}
	if cp := checkpoint(t, s, 0); cp != (Checkpoint{Watermark: 7, Oldest: 7}) {
		t.Fatalf("changed: %+v", cp)
	}
	if got := drainIDs(t, s, 0, clk.Now()); len(got) != 1 || got[0] != "m1" {
		t.Fatalf("delivered %v, want m1 alone", got)
	}
}

// TestCheckpointNeverPassesAnUndeliveredMessage: whatever mix of granularity
// none and windows a chat's queue holds (a workspace switching between them),
// the oldest buffered offset is never above an offset still undelivered, so an
// offset commit never skips one; once everything is delivered nothing is left
// buffered, and no key is left but the watermark, the chats' seen ids and the
// sealed marks of windowed chats.
func TestCheckpointNeverPassesAnUndeliveredMessage(t *testing.T) {
	base := utc("2024-02-29T10:00:00Z")
	clk := clockwork.NewFakeClockAt(base)
	s := newTestStore(t, clk)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 14))
	offsetOf := map[string]int64{}
	var off int64
	for batch := range 12 {
		var es []Entry
		for range 1 + rng.IntN(20) {
			g := webhook.None
			if rng.IntN(3) == 0 {
				g = webhook.H1
			}
			id := fmt.Sprint("m", off)
			es = append(es, entry(off, "ws", fmt.Sprint("c", rng.IntN(4)), id, clk.Now(), g))
			offsetOf[id] = off
			off++
		}
		mustAppend(t, s, 0, es...)
		if batch%4 == 3 {
			clk.Advance(time.Hour)
		}
	}
	clk.Advance(2 * time.Hour)
	if _, err := s.Seal(ctx, 0, clk.Now(), -1, 10000); err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	for id := range offsetOf {
		pending[id] = true
	}
	check := func(when string) {
		t.Helper()
		oldest := int64(-1)
		for id := range pending {
			if o := offsetOf[id]; oldest < 0 || o < oldest {
				oldest = o
			}
		}
		cp := checkpoint(t, s, 0)
		if oldest >= 0 && (cp.Oldest < 0 || cp.Oldest > oldest) {
			t.Fatalf("%s: checkpoint's oldest buffered offset is %d, but offset %d is undelivered", when, cp.Oldest, oldest)
		}
		if oldest < 0 && cp.Oldest != -1 {
			t.Fatalf("%s: everything delivered, yet offset %d is still buffered", when, cp.Oldest)
		}
	}
	check("before delivery")
	for {
		claimed, err := s.Claim(ctx, 0, 1+rng.IntN(3), time.Minute, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) == 0 {
			break
		}
		for _, c := range claimed {
			if err := s.Ack(ctx, c); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids(c.Bundle) {
				if !pending[id] {
					t.Fatalf("message %s delivered twice, or never appended", id)
				}
				delete(pending, id)
			}
			check(fmt.Sprint("after delivering ", ids(c.Bundle)))
		}
	}
	if len(pending) > 0 {
		t.Fatalf("%d messages never delivered", len(pending))
	}
	k := s.keys(0)
	left, err := s.cfg.Redis.Keys(ctx, string(k)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range left {
		rest := strings.TrimPrefix(key, string(k))
		if rest == "wm" || strings.HasPrefix(rest, "s:") {
			continue
		}
		if strings.HasPrefix(rest, "c:") {
			if f, err := s.cfg.Redis.HKeys(ctx, key).Result(); err != nil || slices.Contains(f, "nd") || slices.Contains(f, "na") {
				t.Fatalf("chat state %q keeps fields %v after its queue drained (%v)", rest, f, err)
			}
			continue
		}
		t.Fatalf("key %q left after everything was delivered", rest)
	}
}

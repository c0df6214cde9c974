package windowing

import (
	"context"
	"errors"
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

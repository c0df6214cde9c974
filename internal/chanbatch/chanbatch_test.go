package chanbatch_test

import (
	"context"
	"slices"
	"testing"

	"github.com/outbound-webhooks/outbound/internal/chanbatch"
)

func TestFirstThenWhatIsQueued(t *testing.T) {
	ch := make(chan int, 10)
	for i := range 5 {
		ch <- i
	}
	first, ok := chanbatch.First(context.Background(), ch)
	if !ok || first != 0 {
		t.Fatalf("First = %d, %v; want 0, true", first, ok)
	}
	batch, open := chanbatch.Fill(ch, []int{first}, 3)
	if !open || !slices.Equal(batch, []int{0, 1, 2}) {
		t.Fatalf("Fill up to 3 = %v, %v; want [0 1 2], true", batch, open)
	}
	// What is queued and no more: Fill does not wait for a fourth item.
	batch, open = chanbatch.Fill(ch, nil, 10)
	if !open || !slices.Equal(batch, []int{3, 4}) {
		t.Fatalf("Fill of the rest = %v, %v; want [3 4], true", batch, open)
	}
	close(ch)
	if batch, open = chanbatch.Fill(ch, batch, 10); open || len(batch) != 2 {
		t.Fatalf("Fill of a closed channel = %v, %v; want the batch unchanged, false", batch, open)
	}
	if _, ok := chanbatch.First(context.Background(), ch); ok {
		t.Fatal("First of a closed channel reported an item")
	}
}

func TestFirstEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := chanbatch.First(ctx, make(chan int)); ok {
		t.Fatal("First of an empty channel reported an item after ctx ended")
	}
}

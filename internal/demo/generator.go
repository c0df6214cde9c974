package demo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// generator publishes a plan's waves on the events topic, as the upstream
// chat services would.
type generator struct {
	plan    plan
	brokers []string
	out     *console

	mu   sync.Mutex
	sent sentCounts
	done bool
}

func newGenerator(plan plan, brokers []string, out *console) *generator {
	return &generator{plan: plan, brokers: brokers, out: out}
}

func (g *generator) counts() sentCounts {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.sent
	c.windowed = maps.Clone(g.sent.windowed)
	c.deliverableIDs = slices.Clone(g.sent.deliverableIDs)
	return c
}

// finished reports whether the generator has stopped publishing.
func (g *generator) finished() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}

// run publishes the plan once, or round after round until ctx ends when follow.
func (g *generator) run(ctx context.Context, follow bool) error {
	defer func() {
		g.mu.Lock()
		g.done = true
		g.mu.Unlock()
	}()
	w := &kafka.Writer{Addr: kafka.TCP(g.brokers...), Topic: eventsTopic,
		// Keyed by chat id, like the upstream services: one chat, one partition.
		Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	for round := 0; round == 0 || follow; round++ {
		for wave := range g.plan.waves {
			if round > 0 || wave > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(g.plan.gap):
				}
			}
			now := time.Now()
			var msgs []kafka.Message
			var lines []int
			for i, l := range g.plan.lines {
				if l.wave == wave {
					msgs = append(msgs, g.plan.record(round, i, now, round == 0 && g.firstInChat(i)))
					lines = append(lines, i)
				}
			}
			// Printed first: the worker delivers some of them before the write
			// returns.
			g.out.event("publishing wave %d of %d%s: %d events on %s", wave+1, g.plan.waves, roundNote(round, follow),
				len(msgs), eventsTopic)
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("publishing wave %d of the demo traffic: %w", wave+1, err)
			}
			g.mu.Lock()
			for _, i := range lines {
				g.plan.tally(&g.sent, round, i)
			}
			g.mu.Unlock()
		}
	}
	return nil
}

func roundNote(round int, follow bool) string {
	if !follow {
		return ""
	}
	return fmt.Sprintf(", round %d", round+1)
}

// firstInChat reports whether line i is its chat's first message in the plan.
func (g *generator) firstInChat(i int) bool {
	for j := range i {
		if g.plan.lines[j].chat == g.plan.lines[i].chat && g.plan.lines[j].malformed == "" {
			return false
		}
	}
	return true
}

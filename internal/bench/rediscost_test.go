package bench

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/redistest"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// BenchmarkRedisCostOfNone measures what the immediate path costs Redis
// itself, apart from the shared machine the bench runs on: a redis-server of
// its own, INFO commandstats read around each phase. One partition's share of
// the full bench's chats (166 of 2 000, in 100 workspaces) gets 100 batches
// of 500 messages of granularity none, about three messages per chat and
// batch as in the bench, which are then claimed 64 at a time and
// acknowledged. Reported in µs of Redis per message spent in the scripts of
// the append, the claims and the acks (see scriptMicros).
//
//	go test ./internal/bench -run '^$' -bench RedisCostOfNone -benchtime 1x
func BenchmarkRedisCostOfNone(b *testing.B) {
	const claim = 64
	rdb, store := newCostStore(b)
	ctx := context.Background()
	for range b.N {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		scriptMicros(b, rdb) // from here
		appendShare(b, store, corpus{workspaces: 100, chats: 2000}, webhook.None)
		appendCost := scriptMicros(b, rdb)
		var claims, acks float64
		for n := 0; n < costBatches*costBatch; {
			claimed, err := store.Claim(ctx, 0, claim, time.Hour, 0, nil)
			if err != nil {
				b.Fatal(err)
			}
			if len(claimed) == 0 {
				b.Fatalf("nothing to claim after %d of %d messages", n, costBatches*costBatch)
			}
			claims += scriptMicros(b, rdb)
			for _, c := range claimed {
				if err := store.Ack(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			acks += scriptMicros(b, rdb)
			n += len(claimed)
		}
		msgs := float64(costBatches * costBatch)
		b.ReportMetric(appendCost/msgs, "append-µs/msg")
		b.ReportMetric(claims/msgs, "claim-µs/msg")
		b.ReportMetric(acks/msgs, "ack-µs/msg")
	}
}

// scriptMicros returns the µs Redis spent running scripts since the last
// call (INFO commandstats, EVALSHA and EVAL: a script's own commands
// included), and resets the counts. What a script costs does not depend on
// how its calls are batched; the round trips around it do, and are left out.
func scriptMicros(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	ctx := context.Background()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\n") {
		name, stats, _ := strings.Cut(strings.TrimSpace(line), ":")
		if name != "cmdstat_evalsha" && name != "cmdstat_eval" {
			continue
		}
		for field := range strings.SplitSeq(stats, ",") {
			if v, ok := strings.CutPrefix(field, "usec="); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("reading %s: %v", line, err)
				}
				total += n
			}
		}
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	return total
}

// BenchmarkRedisCostOfWindows measures what windowed ingest costs Redis: one
// partition's share of the full bench's chats (166 of 2 000, in 100
// workspaces) gets 100 batches of 500 messages into 1h windows, about three
// messages per chat and batch, as in the bench. Reported in µs of Redis per
// message spent in the append script.
//
//	go test ./internal/bench -run '^$' -bench RedisCostOfWindows -benchtime 1x
func BenchmarkRedisCostOfWindows(b *testing.B) {
	rdb, store := newCostStore(b)
	ctx := context.Background()
	for range b.N {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		before := usedMemory(b, rdb)
		scriptMicros(b, rdb)
		appendShare(b, store, corpus{workspaces: 100, chats: 2000}, webhook.H1)
		msgs := float64(costBatches * costBatch)
		b.ReportMetric(scriptMicros(b, rdb)/msgs, "append-µs/msg")
		b.ReportMetric(float64(usedMemory(b, rdb)-before)/msgs, "B/msg")
	}
}

// What the Redis cost benchmarks append: batches of the consumer's size.
const costBatches, costBatch = 100, 500

// costAt is the time of every message the cost benchmarks append, and their
// store's clock.
var costAt = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// newCostStore starts a redis-server of the benchmark's own and a Store on it.
func newCostStore(b *testing.B) (*redis.Client, *windowing.Store) {
	rdb := redistest.Start(b).Client()
	store, err := windowing.NewStore(windowing.Config{Redis: rdb, Clock: clockwork.NewFakeClockAt(costAt)})
	if err != nil {
		b.Fatal(err)
	}
	return rdb, store
}

// appendShare appends costBatches batches of costBatch messages of
// granularity g to partition 0, from its share of k's chats as the bench
// spreads them over 12 partitions.
func appendShare(b *testing.B, store *windowing.Store, k corpus, g webhook.Granularity) {
	const partitions = 12
	perPartition := k.chats / partitions
	for offset := int64(0); offset < costBatches*costBatch; {
		es := make([]windowing.Entry, costBatch)
		for j := range es {
			i := int(offset)
			es[j] = entry(k.event(i, i%perPartition*partitions, costAt), offset, g, 1)
			offset++
		}
		if _, err := store.Append(context.Background(), 0, es, offset-1, offset-1-costBatch); err != nil {
			b.Fatal(err)
		}
	}
}

// usedMemory is Redis's used_memory (INFO memory).
func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info, err := rdb.InfoMap(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	n, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

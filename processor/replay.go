package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/windowing"
)

// commitMeta is the metadata of an offset commit: the partition's watermark in
// Redis and the oldest offset still buffered there (in an open window or a
// queued bundle; the watermark + 1 when nothing was), as of the commit. It is
// what the next owner needs to tell that Redis lost data since, and where
// Kafka still has all of it.
type commitMeta struct {
	Watermark, Oldest int64
}

// metaFormat is version 1 of commitMeta on the wire: short (Kafka keeps up to
// offset.metadata.max.bytes, 4 KiB by default), readable in
// kafka-consumer-groups.sh, and versioned so a later format can tell itself apart.
const metaFormat = "v1 wm=%d oldest=%d"

func (m commitMeta) String() string { return fmt.Sprintf(metaFormat, m.Watermark, m.Oldest) }

// parseCommitMeta reads commit metadata; ok is false for anything else (no
// metadata, or a commit of another tool or version).
func parseCommitMeta(s string) (m commitMeta, ok bool) {
	var rest string
	n, _ := fmt.Sscanf(s+" .", metaFormat+" %s", &m.Watermark, &m.Oldest, &rest)
	return m, n == 3 && rest == "." && m.Watermark >= 0 && m.Oldest >= 0 && m.Oldest <= m.Watermark+1
}

// checkpointMeta is the metadata to commit after applied, from a checkpoint
// read after applied was.
func checkpointMeta(applied int64, cp windowing.Checkpoint) commitMeta {
	m := commitMeta{Watermark: applied, Oldest: applied + 1}
	if cp.Oldest >= 0 && cp.Oldest < m.Oldest {
		m.Oldest = cp.Oldest
	}
	return m
}

// resumption is where an owner starts reading a partition.
type resumption struct {
	start int64 // first offset to read; kafka.FirstOffset when nothing was committed
	// why is set when Redis lost data; start then replays it, up to to.
	why string
	to  int64
}

// resumeAt decides where to read from, given the committed offset (-1: none)
// and its metadata, the watermark Redis holds (-1: none) and the watermark this
// member saw last (-1: none).
//
// Redis keeps a partition's windows, queues and watermark in one slot and
// changes them only in scripts, so whatever it lost, it holds them as they were
// at some earlier moment: a watermark consistent with its windows. Reading on
// from watermark + 1 therefore rebuilds exactly what was lost, and the
// watermark is left as it is: lowering it further would re-apply records whose
// windows Redis still holds sealed, and their messages would land in new
// windows under new bundle ids. That is why a watermark behind the committed
// offset (or behind what this member applied) is a loss: it reads from there.
// Only when the watermark is missing altogether, although the commit says
// there was one (Redis lost the partition's every key), does the replay start
// at the oldest offset the commit recorded as still buffered: everything before
// it had been delivered.
func resumeAt(committed int64, meta string, wm, applied int64) resumption {
	m, ok := parseCommitMeta(meta)
	switch {
	case wm >= 0:
		r := resumption{start: wm + 1}
		switch {
		case wm < applied:
			r.why, r.to = "watermark behind the offset this worker applied", applied
		case wm+1 < committed:
			r.why, r.to = "watermark behind the committed offset", committed-1
		}
		return r
	case ok:
		return resumption{start: m.Oldest, why: "watermark missing, the commit recorded one", to: max(m.Watermark, applied)}
	case applied >= 0:
		// This member applied records but never committed metadata: it
		// cannot know what was buffered, so it reads everything Kafka kept.
		return resumption{start: kafka.FirstOffset, why: "watermark missing, no commit metadata", to: applied}
	case committed >= 0:
		return resumption{start: committed}
	default:
		return resumption{start: kafka.FirstOffset}
	}
}

// resume reads the committed offset with its metadata and the watermark, and
// decides where to read from (see resumeAt). A replay is logged and counted.
// It also returns the watermark, which the applier checks Redis against.
func (c *Consumer) resume(ctx context.Context, log *zap.Logger, partition int, applied int64) (start, wm int64, err error) {
	var committed kafka.OffsetFetchPartition
	err = untilDurable.Do(ctx, log, "reading the committed offset", func() (err error) {
		committed, err = c.fetchCommitted(ctx, partition)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	err = untilDurable.Do(ctx, log, "reading watermark", func() (err error) {
		wm, err = c.cfg.Store.Watermark(ctx, partition)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	r := resumeAt(committed.CommittedOffset, committed.Metadata, wm, applied)
	if r.why != "" {
		c.stats.Replays.Add(1)
		log.Warn("Redis lost acknowledged writes: replaying them from Kafka",
			zap.Int64("from", r.start), zap.Int64("to", r.to), zap.String("why", r.why),
			zap.Int64("watermark", wm), zap.Int64("committed", committed.CommittedOffset),
			zap.String("commit_metadata", committed.Metadata))
	}
	return r.start, wm, nil
}

// fetchCommitted reads the group's committed offset of the partition and its
// metadata; CommittedOffset is -1 when there is none.
func (c *Consumer) fetchCommitted(ctx context.Context, partition int) (kafka.OffsetFetchPartition, error) {
	res, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.cfg.GroupID,
		Topics: map[string][]int{c.cfg.Topic: {partition}}})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return kafka.OffsetFetchPartition{}, fmt.Errorf("reading the committed offset of partition %d: %w", partition, err)
	}
	for _, p := range res.Topics[c.cfg.Topic] {
		if p.Partition == partition {
			return p, p.Error
		}
	}
	return kafka.OffsetFetchPartition{}, fmt.Errorf("reading the committed offset of partition %d: not in the answer", partition)
}

// commit commits the offset after applied for the generation, with the
// checkpoint (read after applied was) as metadata.
func (c *Consumer) commit(ctx context.Context, gen *kafka.Generation, partition int, applied int64, cp windowing.Checkpoint) error {
	res, err := c.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID: c.cfg.GroupID, GenerationID: int(gen.ID), MemberID: gen.MemberID,
		Topics: map[string][]kafka.OffsetCommit{c.cfg.Topic: {{Partition: partition, Offset: applied + 1,
			Metadata: checkpointMeta(applied, cp).String()}}},
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range res.Topics[c.cfg.Topic] {
		errs = append(errs, p.Error)
	}
	return errors.Join(errs...)
}

// Package processor consumes the events topic as one member of a consumer group
// and moves every deliverable message into its window in Redis.
//
// For each partition it owns, it fetches records, decodes and validates them,
// routes them (dead-letter topic, skipped, dropped, or appended) and applies the
// whole batch to Redis in one atomic script that also advances the partition's
// offset watermark. Only then is the offset committed to Kafka. A crash between
// the two replays records that the watermark turns into no-ops, so no message is
// lost and none is stored twice. Ingest never waits for webhooks: delivery runs
// beside it (windowing.Flusher) on the partitions this worker owns.
package processor

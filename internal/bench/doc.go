// Package bench measures outbound against real Kafka and real Redis and puts
// every figure beside the baseline that bounds it, measured in the same run on
// the same machine. Absolute numbers drift on shared machines; the ratios are
// the result.
//
// What runs is the product's own code: processor.Consumer, windowing.Store and
// Flusher, sink.Sink, and for the memory and scale-out rows the `outbound
// worker` binary itself as a subprocess. The baselines are the least a worker
// could do with the same input: a plain kafka-go group consumer that only
// decodes, a pipelined loop of plain Redis writes, a plain Go HTTP client. That
// is why this package, unlike the rest of the tree, imports kafka-go and
// go-redis directly: the baselines must not go through the code they bound.
//
// The bench owns what it creates and nothing else: its topics (deleted at the
// end) and the Redis databases it allocates (flushed at the end). Redis memory
// figures read the server-wide used_memory, so the Redis it is given should
// serve nothing else while it runs (`make bench` starts a private one).
package bench

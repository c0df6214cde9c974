// Package windowing owns the windows: their math (tumbling, aligned to multiples
// of the granularity in UTC, assigned by the message's own timestamp) and their
// state in Redis, from the first append to the acknowledged delivery.
//
// Guarantees, each kept by one Lua script touching one partition's hash slot:
//   - Append applies a fetched batch exactly once: records at or below the
//     partition's offset watermark are skipped, so replays after a crash, stale
//     buffers after a rebalance and zombie consumers change nothing. A window
//     keeps its messages in a list and no index of ids, so a message id
//     already in its window is dropped when the bundle is read (the first copy
//     stays); granularity none drops it on append. The script checks the chat
//     state the caller names its keys from, so Append can take that state as
//     the chat's previous batch left it instead of reading it first.
//   - Seal turns a due window into an immutable bundle for exactly one caller.
//     A message racing the seal is either in the bundle or in the chat's next
//     window, never lost; a message whose window was sealed joins the open one.
//   - Claim leases a chat's head bundle to one worker; Ack and Retry keep a
//     chat's deliveries in order, and a lost lease hands the bundle to another
//     worker: delivery is at-least-once with a stable bundle id.
//
// Flusher runs the seal and claim loop for the partitions a worker owns and
// hands bundles to a Deliverer (the sink), at most Concurrency at once and
// PerWorkspace per workspace. State lives in Redis only: a worker can die at any
// point and another continues from what Redis holds.
package windowing

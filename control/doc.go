// Package control owns the control topic, webhooks.control (key = workspace_id):
// the configuration of every workspace's webhook, how every worker learns it, and
// the owner email sent when a webhook is auto-disabled.
//
// # What it owns
//
//   - Registry: the in-memory map workspace -> Webhook that the processor and the
//     sink read on every event. It changes only by applying control records.
//   - Reader: consumes every partition of the control topic (not as a group
//     member: every worker needs every record) into a Registry, and keeps the
//     Redis materialisation (Keys.Webhooks, Keys.Offsets) up to date.
//   - Publisher: writes control messages (outbound ctl, and the sink's
//     webhook.auto_disabled), refusing what a Reader would reject.
//   - Notifier: a consumer group on the control topic that emails a workspace's
//     owner about each webhook.auto_disabled event.
//
// # Guarantees
//
// Order. Records are keyed by workspace, so one workspace's records sit in one
// partition, and every Reader applies each partition in offset order. Every worker
// therefore goes through the same sequence of states for a workspace. (Adding
// partitions to the control topic moves workspaces to other partitions and breaks
// this for records published around the change; create the topic with its final
// partition count.)
//
// Idempotence. A Registry remembers the last applied offset per partition and
// ignores records at or below it; the Redis apply script does the same, so many
// workers writing the same records, or a lagging worker writing old ones, leave the
// newest state. Applying is deterministic (UpdatedAt comes from the record, not the
// clock), so every worker computes, and writes, the same state.
//
// Invalid records (undecodable, unknown type, bad URL or granularity, no
// workspace, enable or disable of an unknown workspace) are logged, counted per
// reason and skipped; they never stop a Reader, and their offsets count as applied.
//
// Epochs. webhook.configure and webhook.enable give the webhook a new Epoch
// (partition and offset of the record, packed, never 0). The sink keys its
// consecutive-error count by epoch, so an enable starts a fresh count; an
// auto_disabled message carrying an older epoch than the current one is ignored, so
// an auto-disable computed before a re-enable cannot undo it. EnabledSince is the
// epoch at which the webhook last went from off to on: bundles buffered under an
// older epoch were pending at a disable and are dropped.
//
// Freshness. A Reader's fetch is a long poll, so a published change reaches every
// running worker within about one broker round trip (tens of milliseconds), well
// inside a second. WaitCaughtUp returns once everything published before the Reader
// started has been applied; a worker must wait for it before consuming events.
//
// # What survives a restart
//
// Redis holds every webhook (Keys.Webhooks) and, per control partition, the offset
// those webhooks include (Keys.Offsets), read as one snapshot. A restarted Reader
// loads them and consumes from the next offset, so it is ready after reading only
// what it missed; with an empty Redis it reads the topic from the start. The
// control topic must therefore keep its records (compaction or no retention): a
// record lost before any worker applied it is lost for good.
//
// The Notifier commits an event's offset only after its email was accepted (or it
// was found to need none). Before sending it claims outbound:notified:<event id>
// in Redis with SET NX and a TTL, and marks it "sent" afterwards: a republished
// event, a redelivery after a rebalance or a second instance never emails twice,
// and a crash mid-send lets the claim expire so another instance sends it. The
// owner and URL come from the Redis materialisation once it includes the event,
// falling back to the notifier's own view of the records it consumed.
package control

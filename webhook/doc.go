// Package webhook is the leaf that every stage shares about a workspace's webhook:
// its configuration (Webhook), its aggregation period (Granularity), the lookup the
// stages read it through (Lookup), the change feed a stage subscribes to (Feed),
// and the webhook.auto_disabled event the sink emits (AutoDisabledEvent).
//
// It imports no stage and no client library. The control plane (package control)
// builds the values and implements Lookup; processor, windowing and sink consume
// them and never import control. Data therefore flows one way: control feeds this
// package, the stages read it.
package webhook

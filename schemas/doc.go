// Package schemas owns outbound's wire contract: the JSON Schema files (draft
// 2020-12, embedded, see Files) and the Go types that match them, for
//
//   - chat.message.v1, the input event on the Kafka topic chat.messages (Event);
//   - webhook.bundle.v1 and webhook.message.v1, the bodies POSTed to webhooks
//     (BundlePayload, MessagePayload);
//   - webhook.control.v1, the messages on the Kafka topic webhooks.control
//     (ControlMessage).
//
// README.md in this directory documents the contract for receivers, producers and
// operators, delivery headers and signatures included.
//
// # What is stable
//
// Within v1, field names, JSON types, requiredness and the timestamp format do not
// change; fields may only be added. The payload schemas are closed and the Go
// types encode exactly them (tests prove it both ways on the spec's examples), so a
// field added to a payload type must be added to its schema in the same change.
// A breaking change is a new schema name (v2), never an edit of a v1 file.
//
// Input is read strictly on identity and routing (workspace_id, chat.chat_id,
// message.message_id, message.direction, message.timestamp) and leniently on
// details (names, phones, emails, texts may be empty, null or absent). Unknown
// fields are allowed in input events and control messages, for forward
// compatibility; a key twice in one object is invalid JSON. message.text is limited to 65536 characters (code points). Ids
// follow one rule, CheckID: 1 to MaxIDBytes bytes of UTF-8 without control
// characters or U+FFFD.
//
// Timestamps encode as WireLayout in UTC ("2021-02-24T16:25:29+0000") and decode
// from RFC 3339, WireLayout, "2021-02-24 16:25:29 +0000" or a JSON number of epoch
// seconds (< 1e11) or milliseconds (>= 1e11): see ParseTimestamp.
//
// # Errors
//
// DecodeEvent, DecodeControl, ValidateBundlePayload and ValidateMessagePayload
// return errors that wrap ErrInvalidJSON (not one well-formed JSON value) or
// ErrSchema (a schema violation), name the failing fields by path
// ("message.direction: value must be one of \"sent\", \"received\""), never quote
// input values (they may be secrets), and are one line of at most MaxErrorLen
// bytes, ready for a Kafka header. They are deterministic: the same input gives
// the same message.
//
// # Cost
//
// DecodeEvent is on the ingest hot path: it reads the input once, straight into
// the Event, and checks chat.message.v1's rules in Go as it goes. The schema file
// stays the contract: the package's tests run the validator beside DecodeEvent over
// a corpus and a fuzzer, and require the same verdict, error and value. The other
// functions validate with the schemas, compiled once, when the package is
// initialised, with their local $refs inlined; DecodeControl builds the message from
// the document it validated, so what is decoded is exactly what was validated. The
// decoders are safe for concurrent use.
package schemas

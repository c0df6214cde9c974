package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// hostileConsumer is a Consumer whose route can run without Kafka or Redis:
// route has no side effect, and nothing here reaches the network.
func hostileConsumer(t *testing.T) *Consumer {
	t.Helper()
	store, err := windowing.NewStore(windowing.Config{Redis: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})})
	if err != nil {
		t.Fatal(err)
	}
	flusher, err := windowing.NewFlusher(windowing.FlusherConfig{Store: store, Deliverer: nopDeliverer{}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{
		Brokers: []string{"127.0.0.1:1"}, Store: store, Flusher: flusher,
		Clock: clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		Webhooks: webhook.Fixed{
			"ws":     {Workspace: "ws", Enabled: true, Granularity: webhook.H1, Epoch: 1},
			"ws_off": {Workspace: "ws_off", Granularity: webhook.H1, Epoch: 1},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type nopDeliverer struct{}

func (nopDeliverer) Deliver(context.Context, windowing.Bundle) windowing.Outcome {
	return windowing.Outcome{Done: true}
}

// outcome says what route made of one record, as a user would check it: the
// dead letter's kind and reason, or where the event went.
func outcome(r routed) string {
	switch {
	case len(r.dead) == 1:
		return "dead " + header(r.dead[0], HeaderKind) + ": " + header(r.dead[0], HeaderReason)
	case len(r.entries) == 1:
		return "appended"
	case r.attachment == 1:
		return "skipped: attachment"
	case r.noText == 1:
		return "skipped: no text"
	case r.noWebhook == 1:
		return "dropped: no webhook"
	case r.disabled == 1:
		return "dropped: disabled"
	}
	return fmt.Sprintf("unexpected: %+v", r)
}

// hostileEvent is an event of workspace ws, chat c1, with each argument a raw
// JSON value (so tests can write what json.Marshal never would) and extra
// appended to the message object.
func hostileEvent(ws, chat, id, ts, text, extra string) []byte {
	return []byte(`{"workspace_id":` + ws + `,"whatsapp_account":{"full_name":"Amnon"},` +
		`"chat":{"chat_id":` + chat + `,"full_name":"Chat"},` +
		`"message":{"message_id":` + id + `,"direction":"sent","timestamp":` + ts + `,"text":` + text + extra + `}}`)
}

// good is hostileEvent with every argument valid but the one changed.
func good(change func(ws, chat, id, ts, text, extra *string)) []byte {
	ws, chat, id, ts, text, extra := `"ws"`, `"c1"`, `"m1"`, `1614183929`, `"hello"`, ``
	change(&ws, &chat, &id, &ts, &text, &extra)
	return hostileEvent(ws, chat, id, ts, text, extra)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestHostileEvents feeds hostile records through the real decode and route
// path and checks the exact outcome of each: which dead-letter kind and reason,
// or whether it was appended, skipped or dropped. Appended events are checked
// for what reaches the window.
func TestHostileEvents(t *testing.T) {
	big := strings.Repeat("w", 900_000)
	nested := strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100)
	tooDeep := strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001)
	const (
		schemaDead    = "dead schema: validating event: schema violation: "
		badChars      = "must not contain control characters (U+0000-U+001F, U+007F-U+009F) or U+FFFD"
		acceptedForms = `; accepted: RFC 3339 ("2021-02-24T16:25:29Z", "2021-02-24T16:25:29+00:00", fractional seconds allowed), ` +
			`"2021-02-24T16:25:29+0000", "2021-02-24 16:25:29 +0000", or a positive number of epoch seconds (< 1e11) or epoch milliseconds (>= 1e11)`
	)
	tests := []struct {
		name   string
		key    []byte // nil: "c1"
		nilKey bool
		value  []byte
		want   string
		check  func(t *testing.T, e windowing.Entry)
	}{
		// ids
		{name: "a valid event", value: good(func(_, _, _, _, _, _ *string) {}), want: "appended"},
		{name: "message_id is the details field \\x00d", value: good(func(_, _, id, _, _, _ *string) { *id = `"\u0000d"` }), want: schemaDead + "message.message_id: " + badChars},
		{name: "message_id is the new-chat field \\x00n", value: good(func(_, _, id, _, _, _ *string) { *id = `"\u0000n"` }), want: schemaDead + "message.message_id: " + badChars},
		{name: "message_id is the attempt field \\x00a", value: good(func(_, _, id, _, _, _ *string) { *id = `"\u0000a"` }), want: schemaDead + "message.message_id: " + badChars},
		{name: "workspace_id holds the key separator \\x1f", value: good(func(ws, _, _, _, _, _ *string) { *ws = `"ws\u001fc1"` }), want: schemaDead + "workspace_id: " + badChars},
		{name: "chat_id holds the key separator \\x1f", key: []byte("c\x1f1"), value: good(func(_, chat, _, _, _, _ *string) { *chat = `"c\u001f1"` }), want: schemaDead + "chat.chat_id: " + badChars},
		{name: "chat_id holds a newline", key: []byte("c\n1"), value: good(func(_, chat, _, _, _, _ *string) { *chat = `"c\n1"` }), want: schemaDead + "chat.chat_id: " + badChars},
		{name: "message_id holds DEL", value: good(func(_, _, id, _, _, _ *string) { *id = `"m\u007f"` }), want: schemaDead + "message.message_id: " + badChars},
		{name: "message_id holds a C1 control", value: good(func(_, _, id, _, _, _ *string) { *id = `"m\u0085"` }), want: schemaDead + "message.message_id: " + badChars},
		{name: "900 000-byte message_id", value: good(func(_, _, id, _, _, _ *string) { *id = `"` + big + `"` }), want: schemaDead + "message.message_id: too long: 900000 characters, want at most 256"},
		{name: "900 000-byte workspace_id", value: good(func(ws, _, _, _, _, _ *string) { *ws = `"` + big + `"` }), want: schemaDead + "workspace_id: too long: 900000 characters, want at most 256"},
		{name: "257-byte chat_id", key: []byte(strings.Repeat("c", 257)), value: good(func(_, chat, _, _, _, _ *string) { *chat = `"` + strings.Repeat("c", 257) + `"` }), want: schemaDead + "chat.chat_id: too long: 257 characters, want at most 256"},
		{name: "65 emoji message_id: 65 characters but 260 bytes", value: good(func(_, _, id, _, _, _ *string) { *id = `"` + strings.Repeat("😀", 65) + `"` }), want: schemaDead + "message.message_id: too long: 260 bytes, want at most 256"},
		{name: "64 emoji message_id: 256 bytes", value: good(func(_, _, id, _, _, _ *string) { *id = `"` + strings.Repeat("😀", 64) + `"` }), want: "appended"},
		{name: "invalid UTF-8 in message_id", value: good(func(_, _, id, _, _, _ *string) { *id = "\"m\xff\"" }), want: schemaDead + "message.message_id: " + badChars},
		{name: "U+FFFD in message_id", value: good(func(_, _, id, _, _, _ *string) { *id = `"m\ufffd"` }), want: schemaDead + "message.message_id: " + badChars},
		{name: "empty message_id", value: good(func(_, _, id, _, _, _ *string) { *id = `""` }), want: schemaDead + "message.message_id: must not be empty"},
		{name: "right-to-left override in message_id is allowed", value: good(func(_, _, id, _, _, _ *string) { *id = `"m\u202e1"` }), want: "appended",
			check: func(t *testing.T, e windowing.Entry) {
				if e.Message.ID != "m\u202e1" {
					t.Errorf("id = %q", e.Message.ID)
				}
			}},
		// JSON shape
		// A key twice in one object is refused: a producer that reads the first
		// value and outbound would otherwise see two different events.
		{name: "duplicate workspace_id", value: []byte(`{"workspace_id":"ws_off","workspace_id":"ws","whatsapp_account":{},"chat":{"chat_id":"c1"},"message":{"message_id":"m1","direction":"sent","timestamp":1614183929,"text":"hi"}}`), want: "dead invalid_json: decoding event: invalid JSON: duplicate object key at offset 25"},
		{name: "duplicate message_id: a valid one, then a NUL one", value: good(func(_, _, id, _, _, _ *string) { *id = `"m1","message_id":"\u0000d"` }), want: "dead invalid_json: decoding event: invalid JSON: duplicate object key at offset 134"},
		{name: "a differently cased key is another field", value: good(func(ws, _, _, _, _, _ *string) { *ws = `"ws","Workspace_ID":"ws_off"` }), want: "appended",
			check: func(t *testing.T, e windowing.Entry) {
				if e.Workspace != "ws" {
					t.Errorf("workspace = %q", e.Workspace)
				}
			}},
		{name: "deeply nested unknown field", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"x":` + nested }), want: "appended"},
		{name: "nesting beyond 10 000 levels", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"x":` + tooDeep }), want: "dead invalid_json: decoding event: invalid JSON: exceeded max depth at offset 10193"},
		{name: "an unknown event type field is ignored", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"type":"chat.deleted"` }), want: "appended"},
		{name: "root is an array", value: []byte(`[]`), want: schemaDead + "(root): wrong type: got array, want object"},
		{name: "root is null", value: []byte(`null`), want: schemaDead + "(root): wrong type: got null, want object"},
		{name: "trailing data", value: append(good(func(_, _, _, _, _, _ *string) {}), []byte(` {}`)...), want: "dead invalid_json: decoding event: invalid JSON: invalid character '{' after top-level value at offset 193"},
		{name: "byte order mark", value: append([]byte("\xef\xbb\xbf"), good(func(_, _, _, _, _, _ *string) {})...), want: "dead invalid_json: decoding event: invalid JSON: invalid character '\\xef' looking for beginning of value at offset 0"},
		{name: "empty value", value: nil, want: "dead invalid_json: decoding event: invalid JSON: unexpected end of JSON input"},
		{name: "binary garbage", value: []byte{0xff, 0x00, 0xfe}, want: "dead invalid_json: decoding event: invalid JSON: invalid character '\\xff' looking for beginning of value at offset 0"},
		// types and numbers
		{name: "workspace_id is a number", value: good(func(ws, _, _, _, _, _ *string) { *ws = `7` }), want: schemaDead + "workspace_id: wrong type: got number, want string"},
		{name: "text is an object", value: good(func(_, _, _, _, text, _ *string) { *text = `{"a":1}` }), want: schemaDead + "message.text: wrong type: got object, want null or string"},
		{name: "chat is an array", value: []byte(`{"workspace_id":"ws","whatsapp_account":{},"chat":[],"message":{"message_id":"m1","direction":"sent","timestamp":1614183929,"text":"hi"}}`), want: schemaDead + "chat: wrong type: got array, want object"},
		{name: "unknown direction in a second direction key", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"direction":"sideways"` }), want: "dead invalid_json: decoding event: invalid JSON: duplicate object key at offset 191"},
		{name: "timestamp 1e400", value: good(func(_, _, _, ts, _, _ *string) { *ts = `1e400` }), want: schemaDead + "message.timestamp: parsing timestamp \"1e400\": invalid timestamp: not a number" + acceptedForms},
		{name: "timestamp of 400 digits", value: good(func(_, _, _, ts, _, _ *string) { *ts = strings.Repeat("9", 400) }), want: schemaDead + "message.timestamp: parsing timestamp \"9999999999999999999999999999999999999999999999999999999999999…\": invalid timestamp: not a number" + acceptedForms},
		{name: "negative timestamp", value: good(func(_, _, _, ts, _, _ *string) { *ts = `-1` }), want: schemaDead + "message.timestamp: must be > 0"},
		{name: "zero timestamp", value: good(func(_, _, _, ts, _, _ *string) { *ts = `0` }), want: schemaDead + "message.timestamp: must be > 0"},
		{name: "timestamp in the year 10000", value: good(func(_, _, _, ts, _, _ *string) { *ts = `"10000-01-01T00:00:00Z"` }), want: schemaDead + "message.timestamp: not an accepted timestamp (RFC 3339, \"2006-01-02T15:04:05+0000\", \"2006-01-02 15:04:05 +0000\", or epoch seconds/milliseconds as a number)"},
		{name: "February 30th", value: good(func(_, _, _, ts, _, _ *string) { *ts = `"2021-02-30T00:00:00Z"` }), want: schemaDead + "message.timestamp: parsing timestamp \"2021-02-30T00:00:00Z\": invalid timestamp: day out of range" + acceptedForms},
		{name: "epoch milliseconds", value: good(func(_, _, _, ts, _, _ *string) { *ts = `1614183929000` }), want: "appended",
			check: func(t *testing.T, e windowing.Entry) {
				if !e.Message.At.Equal(time.Unix(1614183929, 0)) {
					t.Errorf("at = %s", e.Message.At)
				}
			}},
		{name: "attachment size 1e20", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"attachments":[{"size":1e20}]` }), want: schemaDead + "message.attachments[0].size: must be <= 9007199254740991"},
		{name: "attachment size -1", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"attachments":[{"size":-1}]` }), want: schemaDead + "message.attachments[0].size: must be >= 0"},
		// content
		{name: "an attachment", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"attachments":[{"type":"image","size":10}]` }), want: "skipped: attachment"},
		{name: "empty attachment list", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"attachments":[]` }), want: "appended"},
		{name: "empty text", value: good(func(_, _, _, _, text, _ *string) { *text = `""` }), want: "skipped: no text"},
		{name: "null text", value: good(func(_, _, _, _, text, _ *string) { *text = `null` }), want: "skipped: no text"},
		{name: "65 537 characters of text", value: good(func(_, _, _, _, text, _ *string) { *text = `"` + strings.Repeat("a", 65537) + `"` }), want: schemaDead + "message.text: too long: 65537 characters, want at most 65536"},
		{name: "65 536 emoji of text (256 KiB)", value: good(func(_, _, _, _, text, _ *string) { *text = `"` + strings.Repeat("😀", 65536) + `"` }), want: "appended"},
		{name: "emoji, RTL override, markup and NUL in text pass unchanged", value: good(func(_, _, _, _, text, _ *string) {
			*text = jsonString("👍🏽 \u202eevil <script>alert(1)</script> a\x00b")
		}), want: "appended",
			check: func(t *testing.T, e windowing.Entry) {
				if e.Message.Text != "👍🏽 \u202eevil <script>alert(1)</script> a\x00b" {
					t.Errorf("text = %q", e.Message.Text)
				}
			}},
		{name: "invalid UTF-8 in text becomes U+FFFD", value: good(func(_, _, _, _, text, _ *string) { *text = "\"a\xffb\"" }), want: "appended",
			check: func(t *testing.T, e windowing.Entry) {
				if e.Message.Text != "a\ufffdb" {
					t.Errorf("text = %q", e.Message.Text)
				}
			}},
		{name: "null sender and account details", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"sender":null,"recipient":{"full_name":null}` }), want: "appended"},
		// keys, size, webhooks
		{name: "no record key", nilKey: true, value: good(func(_, _, _, _, _, _ *string) {}), want: "dead bad_key: record has no key; the key must be chat.chat_id"},
		{name: "record key is another chat", key: []byte("c2"), value: good(func(_, _, _, _, _, _ *string) {}), want: "dead bad_key: record key \"c2\" does not match chat.chat_id \"c1\""},
		{name: "record key of 2 000 bytes", key: []byte(strings.Repeat("k", 2000)), value: good(func(_, _, _, _, _, _ *string) {}), want: "dead bad_key: record key \"" + strings.Repeat("k", 125) + "…\" does not match chat.chat_id \"c1\""},
		{name: "more than 1 MiB", value: good(func(_, _, _, _, _, extra *string) { *extra = `,"x":"` + strings.Repeat("x", 1<<20) + `"` }), want: "dead too_large: event is 1048775 bytes, the limit is 1048576"},
		{name: "workspace without a webhook", value: good(func(ws, _, _, _, _, _ *string) { *ws = `"ws_nobody"` }), want: "dropped: no webhook"},
		{name: "workspace with a disabled webhook", value: good(func(ws, _, _, _, _, _ *string) { *ws = `"ws_off"` }), want: "dropped: disabled"},
	}
	c := hostileConsumer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == nil && !tt.nilKey {
				key = []byte("c1")
			}
			r := c.route([]kafka.Message{{Topic: "chat.messages", Offset: 1, Key: key, Value: tt.value}}, -1)
			got := outcome(r)
			if got != tt.want {
				t.Fatalf("outcome %q, want %q", got, tt.want)
			}
			if tt.check != nil && len(r.entries) == 1 {
				tt.check(t, r.entries[0])
			}
		})
	}
}

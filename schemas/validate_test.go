package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// normalise decodes JSON into the generic form, so that two documents compare
// equal whatever their key order and whitespace.
func normalise(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
}

// TestSpecPayloadExamples proves the Go payload types and the payload schemas
// agree both ways: the spec's examples validate, decode into the Go types, and
// re-encode to the same JSON.
func TestSpecPayloadExamples(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		validate func([]byte) error
		decode   func([]byte) (any, error)
	}{
		{
			name:     "bundle",
			file:     "webhook.bundle.v1.spec-example.json",
			validate: ValidateBundlePayload,
			decode: func(b []byte) (any, error) {
				var p BundlePayload
				err := json.Unmarshal(b, &p)
				return p, err
			},
		},
		{
			name:     "single message",
			file:     "webhook.message.v1.spec-example.json",
			validate: ValidateMessagePayload,
			decode: func(b []byte) (any, error) {
				var p MessagePayload
				err := json.Unmarshal(b, &p)
				return p, err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := readTestdata(t, tt.file)
			if err := tt.validate(data); err != nil {
				t.Fatalf("validating the spec example: %v", err)
			}
			v, err := tt.decode(data)
			if err != nil {
				t.Fatalf("decoding into the Go type: %v", err)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.validate(out); err != nil {
				t.Fatalf("validating the re-encoded payload: %v\n%s", err, out)
			}
			if got, want := normalise(t, out), normalise(t, data); !reflect.DeepEqual(got, want) {
				t.Errorf("re-encoded payload differs from the spec example\n got: %s\nwant: %s", out, data)
			}
		})
	}
}

// TestPayloadGoValuesValidate covers what the sink does: build the Go value,
// marshal it, validate it.
func TestPayloadGoValuesValidate(t *testing.T) {
	msg := Message{
		Direction: DirectionReceived,
		Timestamp: Timestamp{wantInstant.In(time.FixedZone("IST", 2*3600))},
		MessageID: "m1",
		Sender:    Party{FullName: "John Doe", Phone: "+972540000000"},
		Recipient: Party{FullName: "Jane Smith"},
		Text:      "hi 👋",
	}
	account := Account{FullName: "Amnon", Email: "a@acme.com", Phone: "+972500000000"}
	chat := Chat{ChatID: "10010001", IsGroup: true}
	tests := []struct {
		name     string
		value    any
		validate func([]byte) error
	}{
		{"bundle", BundlePayload{
			WhatsAppAccount:       account,
			Chat:                  chat,
			Messages:              []Message{msg, msg},
			FirstMessageTimestamp: msg.Timestamp,
			LastMessageTimestamp:  msg.Timestamp,
		}, ValidateBundlePayload},
		{"single message", MessagePayload{WhatsAppAccount: account, Chat: chat, Message: msg}, ValidateMessagePayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.validate(data); err != nil {
				t.Errorf("validating %s: %v", data, err)
			}
		})
	}
}

func TestDecodeEventExample(t *testing.T) {
	ev, err := DecodeEvent(readTestdata(t, "chat.message.v1.example.json"))
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	want := Event{
		WorkspaceID:     "ws_1",
		WhatsAppAccount: Account{FullName: "Amnon Haha", Email: "Amnon@acme.com", Phone: "+972500000000"},
		Chat: Chat{
			FullName: "John Doe", ResponsibleName: "Amnon", ResponsibleEmail: "Amnon@acme.com",
			ChatURL: "https://app.timelines.ai/chat/10010001/messages/", ChatID: "10010001",
			IsNewChat: true, IsGroup: false, Phone: "+97254000000",
		},
		Message: EventMessage{
			MessageID:   "ddfskhsd76dsfs6dsd5skjsdhf",
			Direction:   DirectionSent,
			Timestamp:   Timestamp{wantInstant},
			Sender:      Party{FullName: "John Doe", Phone: "+972540000000"},
			Recipient:   Party{FullName: "Jane Smith", Phone: "+972550000000"},
			Text:        "lorem ipsum",
			Attachments: []Attachment{},
			Permalink:   "https://app.timelines.ai/permalink/77a28d55-5345-5435-8c72-3a7bcad8ded9/",
		},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("DecodeEvent =\n%+v\nwant\n%+v", ev, want)
	}
}

// TestEventGoValueValidates proves an Event built in Go (by a producer, or the
// `produce` command) passes the schema after json.Marshal.
func TestEventGoValueValidates(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
	}{
		{"minimal", Event{
			WorkspaceID: "ws_1",
			Chat:        Chat{ChatID: "c1"},
			Message:     EventMessage{MessageID: "m1", Direction: DirectionReceived, Timestamp: Timestamp{wantInstant}},
		}},
		{"with attachment and permalink", Event{
			WorkspaceID:     "ws_1",
			WhatsAppAccount: Account{FullName: "A", Email: "a@b.c", Phone: "+1"},
			Chat:            Chat{ChatID: "c1", IsGroup: true},
			Message: EventMessage{
				MessageID: "m1", Direction: DirectionSent, Timestamp: Timestamp{wantInstant},
				Text:        strings.Repeat("é", 65536),
				Attachments: []Attachment{{Type: "image", Filename: "a.png", Mimetype: "image/png", Size: 10, URL: "https://x/a.png"}},
				Permalink:   "https://app/p/1",
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEvent(data)
			if err != nil {
				t.Fatalf("DecodeEvent(json.Marshal(ev)): %v", err)
			}
			if !got.Message.Timestamp.Equal(tt.ev.Message.Timestamp.Time) || got.Message.MessageID != tt.ev.Message.MessageID {
				t.Errorf("round trip changed the message: got %+v", got.Message)
			}
		})
	}
}

// mutateJSON decodes doc, applies f to the generic form and re-encodes it.
func mutateJSON(t *testing.T, doc []byte, f func(m map[string]any)) []byte {
	t.Helper()
	m := normalise(t, doc).(map[string]any)
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func TestDecodeEventVariants(t *testing.T) {
	example := readTestdata(t, "chat.message.v1.example.json")
	tests := []struct {
		name    string
		mutate  func(m map[string]any)
		wantErr []string // substrings of the error; nil means valid
	}{
		{"example", func(map[string]any) {}, nil},
		{"missing workspace_id", func(m map[string]any) { delete(m, "workspace_id") },
			[]string{"workspace_id: missing required field"}},
		{"empty workspace_id", func(m map[string]any) { m["workspace_id"] = "" },
			[]string{"workspace_id: must not be empty"}},
		{"workspace_id a number", func(m map[string]any) { m["workspace_id"] = 7 },
			[]string{"workspace_id: wrong type: got number, want string"}},
		{"missing chat.chat_id", func(m map[string]any) { delete(obj(m, "chat"), "chat_id") },
			[]string{"chat.chat_id: missing required field"}},
		{"missing message.message_id", func(m map[string]any) { delete(obj(m, "message"), "message_id") },
			[]string{"message.message_id: missing required field"}},
		{"bad direction", func(m map[string]any) { obj(m, "message")["direction"] = "forwarded" },
			[]string{`message.direction: value must be one of "sent", "received"`}},
		{"missing timestamp", func(m map[string]any) { delete(obj(m, "message"), "timestamp") },
			[]string{"message.timestamp: missing required field"}},
		{"garbage timestamp", func(m map[string]any) { obj(m, "message")["timestamp"] = "yesterday" },
			[]string{"message.timestamp: not an accepted timestamp"}},
		{"timestamp a bool", func(m map[string]any) { obj(m, "message")["timestamp"] = true },
			[]string{"message.timestamp: wrong type: got boolean, want number or string"}},
		{"negative epoch", func(m map[string]any) { obj(m, "message")["timestamp"] = -5 },
			[]string{"message.timestamp: must be > 0"}},
		{"calendar-invalid timestamp passes the pattern, fails the decode",
			func(m map[string]any) { obj(m, "message")["timestamp"] = "2021-13-24T16:25:29Z" },
			[]string{"message.timestamp: parsing timestamp", "month out of range"}},
		{"epoch seconds timestamp", func(m map[string]any) { obj(m, "message")["timestamp"] = 1614183929 }, nil},
		{"epoch milliseconds timestamp", func(m map[string]any) { obj(m, "message")["timestamp"] = 1614183929000 }, nil},
		{"text too long", func(m map[string]any) { obj(m, "message")["text"] = strings.Repeat("a", 65537) },
			[]string{"message.text: too long: 65537 characters, want at most 65536"}},
		{"text a number", func(m map[string]any) { obj(m, "message")["text"] = 5 },
			[]string{"message.text: wrong type"}},
		{"is_group a string", func(m map[string]any) { obj(m, "chat")["is_group"] = "no" },
			[]string{"chat.is_group: wrong type: got string, want null or boolean"}},
		{"sender name a number", func(m map[string]any) { obj(obj(m, "message"), "sender")["full_name"] = 1 },
			[]string{"message.sender.full_name: wrong type"}},
		{"attachment size negative", func(m map[string]any) {
			obj(m, "message")["attachments"] = []any{map[string]any{"type": "image", "size": -1}}
		}, []string{"message.attachments[0].size: must be >= 0"}},
		{"chat missing", func(m map[string]any) { delete(m, "chat") },
			[]string{"chat: missing required field"}},
		{"several errors are sorted and counted", func(m map[string]any) {
			delete(m, "workspace_id")
			obj(m, "message")["direction"] = "x"
			obj(m, "message")["timestamp"] = "x"
			obj(m, "chat")["chat_id"] = ""
		}, []string{"chat.chat_id: must not be empty; message.direction: value must be", "; message.timestamp: not an accepted timestamp", "(+1 more)"}},
		{"details may be empty, null or absent", func(m map[string]any) {
			delete(m, "whatsapp_account")
			m["whatsapp_account"] = map[string]any{}
			c := obj(m, "chat")
			c["full_name"] = ""
			c["phone"] = nil
			delete(c, "is_new_chat")
			msg := obj(m, "message")
			delete(msg, "sender")
			msg["recipient"] = nil
			delete(msg, "text")
			msg["attachments"] = nil
			delete(msg, "permalink")
		}, nil},
		{"unknown fields are allowed", func(m map[string]any) {
			m["schema_version"] = 2
			obj(m, "chat")["labels"] = []any{"vip"}
			obj(m, "message")["reactions"] = map[string]any{"👍": 1}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := mutateJSON(t, example, tt.mutate)
			_, err := DecodeEvent(data)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("DecodeEvent: %v\n%s", err, data)
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeEvent succeeded, want an error containing %q\n%s", tt.wantErr, data)
			}
			checkWireError(t, err, ErrSchema, "validating event: schema violation: ", tt.wantErr...)
		})
	}
}

// checkWireError checks that there is an error, that it has the properties
// every Decode/Validate error has, and that it contains each of wants.
func checkWireError(t *testing.T, err, kind error, prefix string, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want a %v error containing %q", kind, wants)
	}
	msg := err.Error()
	if !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", msg, kind)
	}
	for _, other := range []error{ErrInvalidJSON, ErrSchema} {
		if other != kind && errors.Is(err, other) {
			t.Errorf("error %q is also %v", msg, other)
		}
	}
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("error %q does not start with %q", msg, prefix)
	}
	if len(msg) > MaxErrorLen {
		t.Errorf("error is %d bytes, want at most %d", len(msg), MaxErrorLen)
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error %q spans several lines", msg)
	}
	for _, want := range wants {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

func TestDecodeEventInvalidJSON(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"truncated", `{"workspace_id": "ws_1"`},
		{"not json", `hello`},
		{"trailing data", `{} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tt.data))
			checkWireError(t, err, ErrInvalidJSON, "decoding event: invalid JSON: ")
		})
	}
}

func TestErrorsAreShortAndOneLine(t *testing.T) {
	// Unknown keys are reported by the closed payload schemas, so a hostile key
	// (long, with newlines) reaches the message: it must stay one bounded line.
	longKeys := map[string]any{}
	for i := range 20 {
		longKeys[strings.Repeat("a", 300)+"\n"+string(rune('a'+i))] = i
	}
	longKeysJSON, _ := json.Marshal(longKeys)
	longText, _ := json.Marshal(map[string]any{"workspace_id": "w", "whatsapp_account": map[string]any{}, "chat": map[string]any{"chat_id": "c"},
		"message": map[string]any{"message_id": "m", "direction": "sent", "timestamp": 1, "text": strings.Repeat("x\n", 70000)}})
	tests := []struct {
		name     string
		validate func([]byte) error
		data     []byte
		prefix   string
	}{
		{"event without fields", eventError, []byte(`{}`), "validating event: schema violation: "},
		{"event with a long text", eventError, longText, "validating event: schema violation: "},
		{"event not an object", eventError, []byte(`[1,2,3]`), "validating event: schema violation: "},
		{"bundle with long keys and newlines", ValidateBundlePayload, longKeysJSON, "validating bundle payload: schema violation: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.validate(tt.data)
			checkWireError(t, err, ErrSchema, tt.prefix)
		})
	}
}

func eventError(data []byte) error {
	_, err := DecodeEvent(data)
	return err
}

func TestPayloadViolations(t *testing.T) {
	bundle := readTestdata(t, "webhook.bundle.v1.spec-example.json")
	single := readTestdata(t, "webhook.message.v1.spec-example.json")
	tests := []struct {
		name     string
		doc      []byte
		validate func([]byte) error
		mutate   func(m map[string]any)
		wantErr  string
	}{
		{"bundle missing aggregation", bundle, ValidateBundlePayload,
			func(m map[string]any) { delete(m, "aggregation") }, "aggregation: missing required field"},
		{"bundle empty messages", bundle, ValidateBundlePayload,
			func(m map[string]any) { m["messages"] = []any{} }, "messages: must not be empty"},
		{"bundle message missing text", bundle, ValidateBundlePayload,
			func(m map[string]any) { delete(m["messages"].([]any)[1].(map[string]any), "text") }, "messages[1].text: missing required field"},
		{"bundle message timestamp in RFC 3339", bundle, ValidateBundlePayload,
			func(m map[string]any) {
				m["messages"].([]any)[0].(map[string]any)["timestamp"] = "2021-02-24T16:25:29Z"
			},
			`messages[0].timestamp: must be a UTC timestamp like "2021-02-24T16:25:29+0000"`},
		{"bundle first_message_timestamp not UTC", bundle, ValidateBundlePayload,
			func(m map[string]any) { m["first_message_timestamp"] = "2021-02-24T18:25:29+0200" },
			"first_message_timestamp: must be a UTC timestamp"},
		{"bundle is_new_chat a string", bundle, ValidateBundlePayload,
			func(m map[string]any) { obj(m, "chat")["is_new_chat"] = "true" }, "chat.is_new_chat: wrong type: got string, want boolean"},
		{"bundle unknown field", bundle, ValidateBundlePayload,
			func(m map[string]any) { obj(m, "chat")["extra"] = 1 }, "chat.extra: field not allowed"},
		{"bundle missing account phone", bundle, ValidateBundlePayload,
			func(m map[string]any) { delete(obj(m, "whatsapp_account"), "phone") }, "whatsapp_account.phone: missing required field"},
		{"message missing message", single, ValidateMessagePayload,
			func(m map[string]any) { delete(m, "message") }, "message: missing required field"},
		{"message bad direction", single, ValidateMessagePayload,
			func(m map[string]any) { obj(m, "message")["direction"] = "in" }, `message.direction: value must be one of "sent", "received"`},
		{"message sender missing phone", single, ValidateMessagePayload,
			func(m map[string]any) { delete(obj(obj(m, "message"), "sender"), "phone") }, "message.sender.phone: missing required field"},
		{"message chat_id empty", single, ValidateMessagePayload,
			func(m map[string]any) { obj(m, "chat")["chat_id"] = "" }, "chat.chat_id: must not be empty"},
		{"message with bundle fields", single, ValidateMessagePayload,
			func(m map[string]any) { m["aggregation"] = "" }, "aggregation: field not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.validate(mutateJSON(t, tt.doc, tt.mutate))
			checkWireError(t, err, ErrSchema, "validating ", tt.wantErr)
		})
	}
}

func TestDecodeControl(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    ControlMessage // checked when wantErr is empty
		wantErr string
	}{
		{
			name: "configure",
			json: `{"type":"webhook.configure","id":"c1","at":"2021-02-24T16:25:29Z","workspace_id":"ws_1","url":"https://hooks.example.com/x?token=abc","granularity":"6h","enabled":true,"owner_email":"owner@acme.com","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`,
			want: ControlMessage{Type: TypeConfigure, ID: "c1", At: &Timestamp{wantInstant}, WorkspaceID: "ws_1",
				URL: "https://hooks.example.com/x?token=abc", Granularity: "6h", Enabled: ptr(true),
				OwnerEmail: "owner@acme.com", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		},
		{
			name: "configure without secret, raw http url, disabled",
			json: `{"type":"webhook.configure","workspace_id":"ws_1","url":"http://localhost:8080/hook","granularity":"none","enabled":false,"owner_email":"o@acme.com"}`,
			want: ControlMessage{Type: TypeConfigure, WorkspaceID: "ws_1", URL: "http://localhost:8080/hook",
				Granularity: "none", Enabled: ptr(false), OwnerEmail: "o@acme.com"},
		},
		{
			name: "configure with raw secret",
			json: `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"24h","enabled":true,"owner_email":"o@acme.com","secret":"plain secret"}`,
			want: ControlMessage{Type: TypeConfigure, WorkspaceID: "ws_1", URL: "https://x.io",
				Granularity: "24h", Enabled: ptr(true), OwnerEmail: "o@acme.com", Secret: "plain secret"},
		},
		{
			name: "enable",
			json: `{"type":"webhook.enable","workspace_id":"ws_1"}`,
			want: ControlMessage{Type: TypeEnable, WorkspaceID: "ws_1"},
		},
		{
			name: "disable with reason",
			json: `{"type":"webhook.disable","workspace_id":"ws_1","reason":"maintenance","at":1614183929}`,
			want: ControlMessage{Type: TypeDisable, WorkspaceID: "ws_1", Reason: "maintenance", At: &Timestamp{wantInstant}},
		},
		{
			name: "delete",
			json: `{"type":"webhook.delete","workspace_id":"ws_1","id":"d1"}`,
			want: ControlMessage{Type: TypeDelete, WorkspaceID: "ws_1", ID: "d1"},
		},
		{
			name: "auto_disabled",
			json: `{"type":"webhook.auto_disabled","workspace_id":"ws_1","consecutive_errors":11,"last_error":"POST: 500 Internal Server Error","at":"2021-02-24T16:25:29+0000","epoch":3}`,
			want: ControlMessage{Type: TypeAutoDisabled, WorkspaceID: "ws_1", ConsecutiveErrors: 11,
				LastError: "POST: 500 Internal Server Error", At: &Timestamp{wantInstant}, Epoch: 3},
		},
		{
			name: "auto_disabled with an epoch above 2^53 is exact",
			json: `{"type":"webhook.auto_disabled","workspace_id":"ws_1","consecutive_errors":11,"last_error":"x","at":"2021-02-24T16:25:29+0000","epoch":1125899906842625001}`,
			want: ControlMessage{Type: TypeAutoDisabled, WorkspaceID: "ws_1", ConsecutiveErrors: 11,
				LastError: "x", At: &Timestamp{wantInstant}, Epoch: 1125899906842625001},
		},
		{
			name: "unknown fields are allowed",
			json: `{"type":"webhook.enable","workspace_id":"ws_1","requested_by":"ops"}`,
			want: ControlMessage{Type: TypeEnable, WorkspaceID: "ws_1"},
		},
		{name: "unknown type", json: `{"type":"webhook.pause","workspace_id":"ws_1"}`,
			wantErr: `type: value must be one of "webhook.configure", "webhook.enable"`},
		{name: "missing type", json: `{"workspace_id":"ws_1"}`, wantErr: "type: missing required field"},
		{name: "missing workspace_id", json: `{"type":"webhook.enable"}`, wantErr: "workspace_id: missing required field"},
		{name: "empty workspace_id", json: `{"type":"webhook.delete","workspace_id":""}`, wantErr: "workspace_id: must not be empty"},
		{name: "bad granularity",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"2h","enabled":true,"owner_email":"o@acme.com"}`,
			wantErr: `granularity: value must be one of "none", "1h", "6h", "12h", "24h"`},
		{name: "ftp url",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"ftp://x.io/hook","granularity":"1h","enabled":true,"owner_email":"o@acme.com"}`,
			wantErr: "url: must be an http:// or https:// URL"},
		{name: "relative url",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"/hook","granularity":"1h","enabled":true,"owner_email":"o@acme.com"}`,
			wantErr: "url: "},
		{name: "url with a space in the host",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://bad host/","granularity":"1h","enabled":true,"owner_email":"o@acme.com"}`,
			wantErr: "url: not a valid uri"},
		{name: "bad owner_email",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"1h","enabled":true,"owner_email":"owner"}`,
			wantErr: "owner_email: not a valid email"},
		{name: "configure missing enabled",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"1h","owner_email":"o@acme.com"}`,
			wantErr: "enabled: missing required field"},
		{name: "configure enabled a string",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"1h","enabled":"yes","owner_email":"o@acme.com"}`,
			wantErr: "enabled: wrong type: got string, want boolean"},
		{name: "whsec_ secret that is not base64",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"1h","enabled":true,"owner_email":"o@acme.com","secret":"whsec_not base64!"}`,
			wantErr: "secret: must be standard base64 (with padding) after the whsec_ prefix"},
		{name: "whsec_ secret with bad padding",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"1h","enabled":true,"owner_email":"o@acme.com","secret":"whsec_abc"}`,
			wantErr: "secret: must be standard base64"},
		{name: "empty secret",
			json:    `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"1h","enabled":true,"owner_email":"o@acme.com","secret":""}`,
			wantErr: "secret: must not be empty"},
		{name: "auto_disabled missing consecutive_errors",
			json:    `{"type":"webhook.auto_disabled","workspace_id":"ws_1","last_error":"x","at":"2021-02-24T16:25:29+0000"}`,
			wantErr: "consecutive_errors: missing required field"},
		{name: "auto_disabled fractional epoch",
			json:    `{"type":"webhook.auto_disabled","workspace_id":"ws_1","consecutive_errors":11,"last_error":"x","at":"2021-02-24T16:25:29+0000","epoch":1.5}`,
			wantErr: "epoch: wrong type: got number, want integer"},
		{name: "calendar-invalid at", json: `{"type":"webhook.enable","workspace_id":"ws_1","at":"2021-02-30T16:25:29Z"}`,
			wantErr: "at: parsing timestamp"},
		{name: "consecutive_errors out of range",
			json:    `{"type":"webhook.auto_disabled","workspace_id":"ws_1","consecutive_errors":1e12,"last_error":"x","at":"2021-02-24T16:25:29+0000"}`,
			wantErr: "consecutive_errors: must be <= 2147483647"},
		{name: "epoch beyond int64",
			json:    `{"type":"webhook.auto_disabled","workspace_id":"ws_1","consecutive_errors":11,"last_error":"x","at":"2021-02-24T16:25:29+0000","epoch":9223372036854775808}`,
			wantErr: "epoch: must be <= 9223372036854775807"},
		{name: "bad at", json: `{"type":"webhook.enable","workspace_id":"ws_1","at":"noon"}`,
			wantErr: "at: not an accepted timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeControl([]byte(tt.json))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeControl: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("DecodeControl =\n%+v\nwant\n%+v", got, tt.want)
				}
				// The Go value re-encodes to a valid control message.
				out, err := json.Marshal(got)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := DecodeControl(out); err != nil {
					t.Errorf("DecodeControl(json.Marshal(msg)): %v\n%s", err, out)
				}
				return
			}
			checkWireError(t, err, ErrSchema, "validating control message: schema violation: ", tt.wantErr)
		})
	}
}

func TestDecodeControlErrorsDoNotLeakValues(t *testing.T) {
	tests := []struct {
		name   string
		json   string
		secret string
	}{
		{"secret", `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"1h","enabled":true,"owner_email":"o@acme.com","secret":"whsec_TOPSECRET!!"}`, "TOPSECRET"},
		{"url token, bad scheme", `{"type":"webhook.configure","workspace_id":"ws_1","url":"ftp://x.io/?token=TOPSECRET","granularity":"1h","enabled":true,"owner_email":"o@acme.com"}`, "TOPSECRET"},
		{"url token, bad uri", `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://bad host/?token=TOPSECRET","granularity":"1h","enabled":true,"owner_email":"o@acme.com"}`, "TOPSECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeControl([]byte(tt.json))
			if err == nil {
				t.Fatal("DecodeControl succeeded, want an error")
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q quotes the value", err)
			}
		})
	}
}

func TestDecodeControlInvalidJSON(t *testing.T) {
	_, err := DecodeControl([]byte(`{"type":`))
	checkWireError(t, err, ErrInvalidJSON, "decoding control message: invalid JSON: ")
}

// TestPayloadSchemasShareDefinitions keeps the two standalone payload schemas
// from drifting apart: their shared definitions must be identical.
func TestPayloadSchemasShareDefinitions(t *testing.T) {
	defs := func(name string) map[string]any {
		data, err := fs.ReadFile(Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		return normalise(t, data).(map[string]any)["$defs"].(map[string]any)
	}
	bundle, single := defs(SchemaBundlePayload+".schema.json"), defs(SchemaMessagePayload+".schema.json")
	for _, name := range []string{"string", "timestamp", "account", "chat", "party", "message"} {
		t.Run(name, func(t *testing.T) {
			if bundle[name] == nil || !reflect.DeepEqual(bundle[name], single[name]) {
				t.Errorf("$defs/%s differs between the bundle and the message payload schemas", name)
			}
		})
	}
}

// TestReadmeExamples validates every JSON example of README.md against the schema
// it illustrates, so the receiver's documentation cannot drift from the contract.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(readme, -1)
	counts := map[string]int{}
	for i, b := range blocks {
		doc := b[1]
		m, ok := normalise(t, doc).(map[string]any)
		if !ok {
			t.Errorf("example %d is not an object", i)
			continue
		}
		var kind string
		var err error
		switch {
		case m["type"] != nil:
			kind = "control"
			_, err = DecodeControl(doc)
		case m["workspace_id"] != nil:
			kind = "event"
			_, err = DecodeEvent(doc)
		case m["messages"] != nil:
			kind = "bundle"
			err = ValidateBundlePayload(doc)
		default:
			kind = "message"
			err = ValidateMessagePayload(doc)
		}
		counts[kind]++
		if err != nil {
			t.Errorf("README example %d (%s): %v\n%s", i, kind, err, doc)
		}
	}
	for _, kind := range []string{"bundle", "message", "event", "control"} {
		if counts[kind] == 0 {
			t.Errorf("README has no %s example", kind)
		}
	}
	if counts["control"] < 5 {
		t.Errorf("README has %d control examples, want one per type (5)", counts["control"])
	}
}

func ptr[T any](v T) *T { return &v }

// TestHugeExponentIsASchemaViolation: the validator panics on a bounded number
// that big.Rat cannot read (see errValidatorPanicked); a record must get an
// error, not take the worker down.
func TestHugeExponentIsASchemaViolation(t *testing.T) {
	_, err := DecodeControl([]byte(`{"type":"webhook.disable","workspace_id":"ws_1","at":1e10000000}`))
	checkWireError(t, err, ErrSchema, "validating control message: schema violation: ")
	_, err = DecodeEvent([]byte(`{"workspace_id":"w","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"m","direction":"sent","timestamp":1e10000000}}`))
	checkWireError(t, err, ErrSchema, "validating event: schema violation: message.timestamp: ")
}

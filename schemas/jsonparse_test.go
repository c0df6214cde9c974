package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/outbound-webhooks/outbound/internal/clip"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// jsonCorpus holds inputs on which parseJSON must agree with the library's own
// decoder (except that it refuses duplicate keys): valid and invalid JSON,
// escapes, bad UTF-8, odd numbers.
var jsonCorpus = []struct {
	name string
	in   string
}{
	{"empty input", ``},
	{"whitespace only", " \n\t\r "},
	{"vertical tab is not whitespace", "\v1"},
	{"form feed is not whitespace", "[1,\f2]"},
	{"non-breaking space is not whitespace", "\u00a01"},
	{"null", `null`},
	{"true", ` true `},
	{"false", `false`},
	{"bad literal", `tru`},
	{"bad literal 2", `nul1`},
	{"zero", `0`},
	{"negative", `-12`},
	{"fraction", `3.25`},
	{"exponent", `1e9`},
	{"signed exponent", `-1.5E-3`},
	{"big integer", `123456789012345678901234567890`},
	{"leading zero", `01`},
	{"minus only", `-`},
	{"dot without digits", `1.`},
	{"exponent without digits", `1e`},
	{"plus sign", `+1`},
	{"string", `"hello"`},
	{"empty string", `""`},
	{"escapes", `"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"`},
	{"lone surrogate", `"\ud83d"`},
	{"bad escape", `"\x"`},
	{"short unicode escape", `"\u12"`},
	{"raw newline in string", "\"a\nb\""},
	{"unterminated string", `"abc`},
	{"escaped quote at end", `"abc\"`},
	{"utf8", `"héllo 👋"`},
	{"invalid utf8", "\"a\xffb\""},
	{"truncated utf8", "\"a\xe2\x82\""},
	{"empty object", `{}`},
	{"empty array", `[]`},
	{"nested", `{"a":[1,{"b":null}],"c":{"d":"e"}}`},
	{"duplicate keys", `{"a":1,"a":2}`},
	{"duplicate nested keys", `[{"a":{"b":1,"c":2,"b":3}}]`},
	{"duplicate escaped key", `{"ab":1,"a\u0062":2}`},
	{"same key in two objects", `{"a":{"a":1},"b":{"a":1}}`},
	{"trailing comma object", `{"a":1,}`},
	{"trailing comma array", `[1,]`},
	{"missing colon", `{"a" 1}`},
	{"unquoted key", `{a:1}`},
	{"missing value", `{"a":}`},
	{"unterminated object", `{"a":1`},
	{"unterminated array", `[1,2`},
	{"trailing data", `{} x`},
	{"two values", `1 2`},
	{"escaped key", `{"a\u0062":1}`},
	{"bom", "\xef\xbb\xbf{}"},
	{"nul byte", "{\"a\":1}\x00"},
	{"deep", strings.Repeat("[", 200) + strings.Repeat("]", 200)},
	{"too deep", strings.Repeat("[", 10001) + strings.Repeat("]", 10001)},
	{"single quote", `'a'`},
}

func TestParseJSONMatchesLibrary(t *testing.T) {
	for _, tt := range jsonCorpus {
		t.Run(tt.name, func(t *testing.T) {
			compareParsers(t, []byte(tt.in))
		})
	}
	for _, name := range []string{"chat.message.v1.example.json", "webhook.bundle.v1.spec-example.json", "webhook.message.v1.spec-example.json"} {
		t.Run(name, func(t *testing.T) {
			compareParsers(t, readTestdata(t, name))
		})
	}
}

func compareParsers(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	got, err := parseJSON(data)
	if err != nil && wantErr == nil && strings.HasPrefix(err.Error(), "duplicate object key") {
		if !hasDuplicateKey(data) {
			t.Fatalf("parseJSON(%q) = %v, but no object has a key twice", clip.String(string(data), 80), err)
		}
		return // refused on purpose; the library lets the last value win
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("parseJSON(%q) error = %v, library error = %v", clip.String(string(data), 80), err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("parseJSON(%q) = %#v, library = %#v", clip.String(string(data), 80), got, want)
	}
}

// FuzzParseJSON checks parseJSON against the library's decoder on any input.
// Run it with: go test -fuzz FuzzParseJSON ./schemas/
func FuzzParseJSON(f *testing.F) {
	for _, tt := range jsonCorpus {
		f.Add([]byte(tt.in))
	}
	if data, err := os.ReadFile("testdata/chat.message.v1.example.json"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareParsers(t, data)
	})
}

// checkDecodeError checks the promises every Decode error keeps.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrSchema) {
		t.Fatalf("error %q is neither ErrInvalidJSON nor ErrSchema", err)
	}
	if len(err.Error()) > MaxErrorLen || strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("error %q is too long or spans lines", err)
	}
}

// eventFuzzSeeds start the event fuzzers, and join the differential corpus.
var eventFuzzSeeds = [][]byte{
	readTestdataNoT("chat.message.v1.example.json"),
	[]byte(`{"workspace_id":"w","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"m","direction":"received","timestamp":1614183929.5,"attachments":[{"size":3.0}]}}`),
	[]byte(`{"workspace_id":"w","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"\u0000d","direction":"sent","timestamp":"2021-02-24T16:25:29Z"}}`),
	[]byte(`{"workspace_id":"w\u001fx","whatsapp_account":null,"chat":{"chat_id":"😀"},"message":{"message_id":"\u202e","direction":"sent","timestamp":1e400}}`),
	[]byte("{\"workspace_id\":\"\xff\",\"workspace_id\":\"w\",\"whatsapp_account\":{},\"chat\":{\"chat_id\":\"c\"},\"message\":{\"message_id\":\"m\",\"direction\":\"sent\",\"timestamp\":-1}}"),
	[]byte(`{}`),
}

// FuzzDecodeEvent checks that DecodeEvent never panics, that its errors keep their
// promises, that every id of an accepted event passes CheckID, and that an
// accepted event survives a round trip through json.Marshal.
func FuzzDecodeEvent(f *testing.F) {
	for _, data := range eventFuzzSeeds {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		for _, id := range []string{ev.WorkspaceID, ev.Chat.ChatID, ev.Message.MessageID} {
			if err := CheckID(id); err != nil {
				t.Fatalf("accepted an event with id %q: %v", id, err)
			}
		}
		again := redecode(t, ev, DecodeEvent)
		ev.Message.Timestamp.Time = ev.Message.Timestamp.Truncate(1e9) // the wire form has seconds only
		if len(ev.Message.Attachments) == 0 {
			ev.Message.Attachments = nil // omitempty
		}
		if !reflect.DeepEqual(again, ev) {
			t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", again, ev)
		}
	})
}

// redecode encodes v with encoding/json and decodes the result with decode,
// which must accept it.
func redecode[T any](t *testing.T, v T, decode func([]byte) (T, error)) T {
	t.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	again, err := decode(out)
	if err != nil {
		t.Fatalf("re-decoding %s: %v", out, err)
	}
	return again
}

// FuzzDecodeControl is FuzzDecodeEvent for control messages.
func FuzzDecodeControl(f *testing.F) {
	f.Add([]byte(`{"type":"webhook.configure","id":"c1","at":"2021-02-24T16:25:29.5Z","workspace_id":"ws_1","url":"https://hooks.example.com/x?token=abc","granularity":"6h","enabled":true,"owner_email":"owner@acme.com","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`))
	f.Add([]byte(`{"type":"webhook.auto_disabled","workspace_id":"ws_1","consecutive_errors":11,"last_error":"503","at":1614183929,"epoch":9223372036854775807}`))
	f.Add([]byte(`{"type":"webhook.disable","workspace_id":"ws\u001f1","reason":"x"}`))
	f.Add([]byte(`{"type":"webhook.delete","workspace_id":"ws","id":"\u0000a","consecutive_errors":1e30}`))
	f.Add([]byte(`{"type":"webhook.enable","workspace_id":"ws","Workspace_ID":"other","epoch":1.5}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := DecodeControl(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if err := CheckID(msg.WorkspaceID); err != nil {
			t.Fatalf("accepted workspace_id %q: %v", msg.WorkspaceID, err)
		}
		if msg.ID != "" && CheckID(msg.ID) != nil {
			t.Fatalf("accepted id %q: %v", msg.ID, CheckID(msg.ID))
		}
		again := redecode(t, msg, DecodeControl)
		if msg.At != nil {
			msg.At.Time = msg.At.Truncate(1e9) // the wire form has seconds only
		}
		if !reflect.DeepEqual(again, msg) {
			t.Fatalf("round trip changed the control message:\n got %+v\nwant %+v", again, msg)
		}
	})
}

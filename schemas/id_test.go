package schemas

import (
	"io/fs"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckID(t *testing.T) {
	tests := []struct {
		name, id string
		wantErr  string // "" means valid
	}{
		{"plain", "ddfskhsd76dsfs6dsd5skjsdhf", ""},
		{"spaces and punctuation", "ws 1/chat:2", ""},
		{"emoji", "chat-😀", ""},
		{"right-to-left text", "שלום", ""},
		{"right-to-left override is a format character, not a control one", "a\u202eb", ""},
		{"at the limit", strings.Repeat("a", MaxIDBytes), ""},
		{"emoji at the limit", strings.Repeat("😀", MaxIDBytes/4), ""},
		{"empty", "", "must not be empty"},
		{"one byte over", strings.Repeat("a", MaxIDBytes+1), "too long: 257 bytes, want at most 256"},
		{"emoji over the limit in bytes, not in characters", strings.Repeat("😀", MaxIDBytes/4+1), "too long: 260 bytes"},
		{"900 000 bytes", strings.Repeat("w", 900_000), "too long: 900000 bytes"},
		{"invalid UTF-8", "a\xffb", "must be valid UTF-8"},
		{"NUL-prefixed (a window hash's reserved field)", "\x00d", idCharsMessage},
		{"unit separator (joins workspace and chat in keys)", "ws\x1fchat", idCharsMessage},
		{"newline", "a\nb", idCharsMessage},
		{"DEL", "a\x7f", idCharsMessage},
		{"C1 next line", "a\u0085", idCharsMessage},
		{"replacement character", "a\ufffd", idCharsMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckID(tt.id)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckID = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("CheckID = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// idDef returns the "id" definition of a schema file.
func idDef(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := fs.ReadFile(Files(), name+".schema.json")
	if err != nil {
		t.Fatal(err)
	}
	def, ok := normalise(t, data).(map[string]any)["$defs"].(map[string]any)["id"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no $defs/id", name)
	}
	return def
}

// TestSchemaIDMatchesCheckID proves the schema files state CheckID's rule: both
// files define ids alike, the pattern refuses exactly the characters CheckID
// refuses (every code point is tried), and maxLength is the byte limit (a bound
// on characters that the decoder tightens to bytes).
func TestSchemaIDMatchesCheckID(t *testing.T) {
	event, ctl := idDef(t, SchemaEvent), idDef(t, SchemaControl)
	if !reflect.DeepEqual(event, ctl) {
		t.Fatalf("$defs/id differs between %s and %s", SchemaEvent, SchemaControl)
	}
	if got := event["maxLength"]; got == nil || got.(interface{ String() string }).String() != "256" || MaxIDBytes != 256 {
		t.Errorf("maxLength = %v, MaxIDBytes = %d; want both 256", got, MaxIDBytes)
	}
	re := regexp.MustCompile(event["pattern"].(string))
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue // surrogates cannot be in a Go string
		}
		s := string(r)
		if schemaOK, checkOK := re.MatchString(s), CheckID(s) == nil; schemaOK != checkOK {
			t.Fatalf("U+%04X: schema pattern accepts it: %v, CheckID accepts it: %v", r, schemaOK, checkOK)
		}
	}
}

// TestDecodersRejectBadIDs: every id of an event and of a control message is held
// to CheckID at decode, whichever of the schema and the byte bound catches it, and
// the error names the field and kind without quoting the value.
func TestDecodersRejectBadIDs(t *testing.T) {
	bad := []struct {
		name, json string // json is the id as a JSON string literal
		want       string
	}{
		{"NUL-prefixed", `"\u0000d"`, idCharsMessage},
		{"unit separator", `"ws\u001fchat"`, idCharsMessage},
		{"C1", `"a\u0085"`, idCharsMessage},
		{"invalid UTF-8", "\"a\xffb\"", idCharsMessage}, // decoded as U+FFFD
		{"257 ASCII bytes", `"` + strings.Repeat("a", 257) + `"`, "too long: 257 characters, want at most 256"},
		{"900 000 bytes", `"` + strings.Repeat("w", 900_000) + `"`, "too long: 900000 characters"},
		{"65 emoji: 65 characters, 260 bytes", `"` + strings.Repeat("😀", 65) + `"`, "too long: 260 bytes, want at most 256"},
		{"empty", `""`, "must not be empty"},
	}
	event := func(ws, chat, msg string) string {
		return `{"workspace_id":` + ws + `,"whatsapp_account":{},"chat":{"chat_id":` + chat +
			`},"message":{"message_id":` + msg + `,"direction":"sent","timestamp":1614183929,"text":"hi"}}`
	}
	control := func(ws, id string) string {
		return `{"type":"webhook.delete","workspace_id":` + ws + `,"id":` + id + `}`
	}
	ok := `"ok"`
	for _, b := range bad {
		cases := []struct {
			path, doc string
			decode    func([]byte) error
			prefix    string
		}{
			{"workspace_id", event(b.json, ok, ok), func(d []byte) error { _, err := DecodeEvent(d); return err }, "validating event: "},
			{"chat.chat_id", event(ok, b.json, ok), func(d []byte) error { _, err := DecodeEvent(d); return err }, "validating event: "},
			{"message.message_id", event(ok, ok, b.json), func(d []byte) error { _, err := DecodeEvent(d); return err }, "validating event: "},
			{"workspace_id", control(b.json, ok), func(d []byte) error { _, err := DecodeControl(d); return err }, "validating control message: "},
			{"id", control(ok, b.json), func(d []byte) error { _, err := DecodeControl(d); return err }, "validating control message: "},
		}
		for _, c := range cases {
			t.Run(b.name+"/"+c.prefix+c.path, func(t *testing.T) {
				err := c.decode([]byte(c.doc))
				checkWireError(t, err, ErrSchema, c.prefix+"schema violation: ", c.path+": "+b.want)
			})
		}
	}
	if _, err := DecodeEvent([]byte(event(`"`+strings.Repeat("😀", 64)+`"`, ok, ok))); err != nil {
		t.Errorf("64 emoji (256 bytes) refused: %v", err)
	}
	if _, err := DecodeControl([]byte(`{"type":"webhook.delete","workspace_id":"ws"}`)); err != nil {
		t.Errorf("a control message without id refused: %v", err)
	}
}

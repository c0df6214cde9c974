package schemas

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// fullEvent sets every field of Event to a non-zero value.
const fullEvent = `{"workspace_id":"ws_1",
 "whatsapp_account":{"full_name":"Amnon Haha","email":"Amnon@acme.com","phone":"+972500000000"},
 "chat":{"chat_id":"10010001","full_name":"John \u00e9 Doe","responsible_name":"Amnon","responsible_email":"Amnon@acme.com",
         "chat_url":"https://app.timelines.ai/chat/10010001/messages/","is_new_chat":true,"is_group":true,"phone":"+97254000000"},
 "message":{"message_id":"m1","direction":"received","timestamp":"2021-02-24T18:25:29.250+02:00",
            "sender":{"full_name":"John Doe","phone":"+972540000000"},"recipient":{"full_name":"Jane Smith","phone":"+972550000000"},
            "text":"line 1\nline 2 👋",
            "attachments":[{"type":"image","filename":"a.png","mimetype":"image/png","size":1024,"url":"https://x/a.png"},{}],
            "permalink":"https://app.timelines.ai/permalink/1/"},
 "extra":{"ignored":true}}`

// TestDecodeEventMatchesUnmarshal keeps DecodeEvent in step with the Event type:
// on valid inputs it must give what encoding/json gives.
func TestDecodeEventMatchesUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"every field set", fullEvent},
		{"spec example", string(readTestdataNoT("chat.message.v1.example.json"))},
		{"epoch seconds", `{"workspace_id":"w","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"m","direction":"sent","timestamp":1614183929}}`},
		{"epoch milliseconds with fraction", `{"workspace_id":"w","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"m","direction":"sent","timestamp":1614183929000.5}}`},
		{"nulls", `{"workspace_id":"w","whatsapp_account":{"full_name":null},"chat":{"chat_id":"c","is_group":null,"phone":null},"message":{"message_id":"m","direction":"sent","timestamp":"2021-02-24 16:25:29 +0000","sender":null,"text":null,"attachments":null,"permalink":null}}`},
		{"empty attachments", `{"workspace_id":"w","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"m","direction":"sent","timestamp":"2021-02-24T16:25:29Z","attachments":[]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMatchesUnmarshal(t, "DecodeEvent", DecodeEvent, tt.json, func(want *Event) {
				want.Message.Timestamp.Time = want.Message.Timestamp.UTC()
			})
		})
	}
}

// checkMatchesUnmarshal requires decode, named name, to give for data what
// encoding/json gives once utc has put its timestamps in UTC, as the decoders do.
func checkMatchesUnmarshal[T any](t *testing.T, name string, decode func([]byte) (T, error), data string, utc func(*T)) {
	t.Helper()
	got, err := decode([]byte(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var want T
	if err := json.Unmarshal([]byte(data), &want); err != nil {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	utc(&want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s =\n%#v\njson.Unmarshal =\n%#v", name, got, want)
	}
}

// TestFullEventCoversEveryField fails when Event gains a field that fullEvent does
// not set, so that TestDecodeEventMatchesUnmarshal keeps covering all of them.
func TestFullEventCoversEveryField(t *testing.T) {
	var ev Event
	if err := json.Unmarshal([]byte(fullEvent), &ev); err != nil {
		t.Fatal(err)
	}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[Timestamp]() {
				if v.Interface().(Timestamp).IsZero() {
					t.Errorf("%s is zero in fullEvent", path)
				}
				return
			}
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice:
			if v.Len() == 0 {
				t.Errorf("%s is empty in fullEvent", path)
				return
			}
			walk(v.Index(0), path+"[0]")
		default:
			if v.IsZero() {
				t.Errorf("%s is zero in fullEvent", path)
			}
		}
	}
	walk(reflect.ValueOf(ev), "Event")
}

func readTestdataNoT(name string) []byte {
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		panic(err)
	}
	return data
}

// fullControl sets every field of ControlMessage to a non-zero value (it mixes
// variants, which the schema allows: fields of other variants are ignored).
const fullControl = `{"type":"webhook.auto_disabled","id":"c1","at":"2021-02-24T18:25:29+02:00","workspace_id":"ws_1",
 "url":"https://x.io/h","granularity":"1h","enabled":false,"owner_email":"o@acme.com","secret":"raw",
 "reason":"why","consecutive_errors":11,"last_error":"503","epoch":7,"extra":1}`

func TestControlFromDocMatchesUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"every field set", fullControl},
		{"enable", `{"type":"webhook.enable","workspace_id":"ws_1"}`},
		{"configure", `{"type":"webhook.configure","workspace_id":"ws_1","url":"https://x.io","granularity":"none","enabled":true,"owner_email":"o@acme.com"}`},
		{"epoch seconds at", `{"type":"webhook.delete","workspace_id":"ws_1","at":1614183929}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMatchesUnmarshal(t, "DecodeControl", DecodeControl, tt.json, func(want *ControlMessage) {
				if want.At != nil {
					want.At.Time = want.At.UTC()
				}
			})
		})
	}
}

func TestFullControlCoversEveryField(t *testing.T) {
	var msg ControlMessage
	if err := json.Unmarshal([]byte(fullControl), &msg); err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(msg)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("ControlMessage.%s is zero in fullControl", v.Type().Field(i).Name)
		}
	}
}

// TestDecodedIsWhatWasValidated: encoding/json matches keys case-insensitively;
// the decoders must not, or a message could be validated as one workspace and
// routed as another.
func TestDecodedIsWhatWasValidated(t *testing.T) {
	ev, err := DecodeEvent([]byte(`{"workspace_id":"ws_1","WORKSPACE_ID":"ws_2","whatsapp_account":{},
		"chat":{"chat_id":"c1","Chat_Id":"c2"},"message":{"message_id":"m","direction":"sent","timestamp":1614183929,"Direction":"bogus"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.WorkspaceID != "ws_1" || ev.Chat.ChatID != "c1" || ev.Message.Direction != DirectionSent {
		t.Errorf("DecodeEvent read differently cased keys: %+v", ev)
	}
	msg, err := DecodeControl([]byte(`{"type":"webhook.enable","workspace_id":"ws_1","Workspace_ID":"ws_2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if msg.WorkspaceID != "ws_1" {
		t.Errorf("DecodeControl read a differently cased key: workspace %q", msg.WorkspaceID)
	}
}

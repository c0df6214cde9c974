package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/outbound-webhooks/outbound/internal/clip"
)

// The schema file chat.message.v1.schema.json is the contract; DecodeEvent
// checks its rules in Go (eventDecoder). The tests here run the validator beside
// it, as referenceDecodeEvent, and require the same verdict, the same error
// message, and the same Event.

// referenceDecodeEvent is DecodeEvent as it was before eventDecoder: the generic
// parser, the validator, eventFromDoc, then CheckID.
func referenceDecodeEvent(data []byte) (Event, error) {
	ev, err := validateInto(compiled.event, "event", data, eventFromDoc, "message.timestamp")
	if err != nil {
		return Event{}, err
	}
	if err := checkEventIDs(ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// compareWithSchema requires DecodeEvent and referenceDecodeEvent to agree on data.
func compareWithSchema(t *testing.T, data []byte) {
	t.Helper()
	got, err := DecodeEvent(data)
	want, wantErr := referenceDecodeEvent(data)
	in := clip.String(string(data), 200)
	switch {
	case errors.Is(wantErr, errValidatorPanicked):
		// DecodeEvent compares no big.Rat and says which field is at fault.
		if !errors.Is(err, ErrSchema) {
			t.Fatalf("DecodeEvent(%q) = %v; the validator could not compare a number, want a schema violation", in, err)
		}
	case (err == nil) != (wantErr == nil):
		t.Fatalf("verdicts differ on %q\n DecodeEvent: %v\n   validator: %v", in, err, wantErr)
	case err != nil:
		if err.Error() != wantErr.Error() {
			t.Fatalf("errors differ on %q\n DecodeEvent: %v\n   validator: %v", in, err, wantErr)
		}
		for _, kind := range []error{ErrInvalidJSON, ErrSchema} {
			if errors.Is(err, kind) != errors.Is(wantErr, kind) {
				t.Fatalf("error kinds differ on %q: DecodeEvent %v, validator %v", in, err, wantErr)
			}
		}
	case !reflect.DeepEqual(got, want):
		t.Fatalf("values differ on %q\n DecodeEvent: %+v\n   validator: %+v", in, got, want)
	}
}

// eventJSON writes an event with the given raw JSON values in place: ids,
// timestamp and text, and extra fields appended to message.
func eventJSON(ws, chat, id, ts, text, extra string) []byte {
	return []byte(`{"workspace_id":` + ws + `,"whatsapp_account":{"full_name":"A","email":"a@acme.com","phone":"+1"},` +
		`"chat":{"chat_id":` + chat + `,"full_name":"C","is_group":false,"is_new_chat":null},` +
		`"message":{"message_id":` + id + `,"direction":"received","timestamp":` + ts +
		`,"sender":{"full_name":"S","phone":"+2"},"recipient":null,"text":` + text + extra + `}}`)
}

// goodEvent is eventJSON with one change, made by f on the raw values.
func goodEvent(f func(ws, chat, id, ts, text, extra *string)) []byte {
	ws, chat, id, ts, text, extra := `"ws"`, `"c1"`, `"m1"`, `1614183929`, `"hi"`, ``
	f(&ws, &chat, &id, &ts, &text, &extra)
	return eventJSON(ws, chat, id, ts, text, extra)
}

// differentialCorpus: the schema examples, an input for every reason the
// processor dead-letters an event for (processor/dlq_test.go and
// processor/hostile_test.go), the fuzz seeds, the generic JSON corpus, and every
// input the fuzzers have stored under testdata/fuzz.
func differentialCorpus(t *testing.T) map[string][]byte {
	t.Helper()
	corpus := map[string][]byte{}
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		corpus[f] = readTestdata(t, filepath.Base(f))
	}
	big := strings.Repeat("x", 900000)
	nested := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	tooDeep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	set := func(v string) func(*string) { return func(p *string) { *p = v } }
	cases := map[string]struct {
		field func(ws, chat, id, ts, text, extra *string) *string
		value string
	}{
		"id NUL":                {func(_, _, id, _, _, _ *string) *string { return id }, `"\u0000d"`},
		"workspace unit sep":    {func(ws, _, _, _, _, _ *string) *string { return ws }, `"ws\u001fc1"`},
		"chat newline":          {func(_, chat, _, _, _, _ *string) *string { return chat }, `"c\n1"`},
		"id DEL":                {func(_, _, id, _, _, _ *string) *string { return id }, `"m\u007f"`},
		"id C1":                 {func(_, _, id, _, _, _ *string) *string { return id }, `"m\u0085"`},
		"id huge":               {func(_, _, id, _, _, _ *string) *string { return id }, `"` + big + `"`},
		"workspace huge":        {func(ws, _, _, _, _, _ *string) *string { return ws }, `"` + big + `"`},
		"chat 257":              {func(_, chat, _, _, _, _ *string) *string { return chat }, `"` + strings.Repeat("c", 257) + `"`},
		"id 65 emoji":           {func(_, _, id, _, _, _ *string) *string { return id }, `"` + strings.Repeat("😀", 65) + `"`},
		"id 64 emoji":           {func(_, _, id, _, _, _ *string) *string { return id }, `"` + strings.Repeat("😀", 64) + `"`},
		"id bad utf8":           {func(_, _, id, _, _, _ *string) *string { return id }, "\"m\xff\""},
		"id U+FFFD":             {func(_, _, id, _, _, _ *string) *string { return id }, `"m\ufffd"`},
		"id empty":              {func(_, _, id, _, _, _ *string) *string { return id }, `""`},
		"id RTL":                {func(_, _, id, _, _, _ *string) *string { return id }, `"m\u202e1"`},
		"id number":             {func(_, _, id, _, _, _ *string) *string { return id }, `7`},
		"workspace null":        {func(ws, _, _, _, _, _ *string) *string { return ws }, `null`},
		"duplicate id":          {func(_, _, id, _, _, _ *string) *string { return id }, `"m1","message_id":"\u0000d"`},
		"cased key":             {func(ws, _, _, _, _, _ *string) *string { return ws }, `"ws","Workspace_ID":"ws_off"`},
		"nested unknown":        {func(_, _, _, _, _, extra *string) *string { return extra }, `,"x":` + nested},
		"too deep":              {func(_, _, _, _, _, extra *string) *string { return extra }, `,"x":` + tooDeep},
		"unknown type field":    {func(_, _, _, _, _, extra *string) *string { return extra }, `,"type":"chat.deleted"`},
		"second direction":      {func(_, _, _, _, _, extra *string) *string { return extra }, `,"direction":"sideways"`},
		"unknown direction":     {func(_, _, _, _, _, extra *string) *string { return extra }, `,"direction_x":1`},
		"text object":           {func(_, _, _, _, text, _ *string) *string { return text }, `{"a":1}`},
		"text number":           {func(_, _, _, _, text, _ *string) *string { return text }, `42`},
		"text huge":             {func(_, _, _, _, text, _ *string) *string { return text }, `"` + strings.Repeat("a", 70000) + `"`},
		"text 65537":            {func(_, _, _, _, text, _ *string) *string { return text }, `"` + strings.Repeat("a", 65537) + `"`},
		"text 65536 emoji":      {func(_, _, _, _, text, _ *string) *string { return text }, `"` + strings.Repeat("😀", 65536) + `"`},
		"text escapes":          {func(_, _, _, _, text, _ *string) *string { return text }, `"\ud83d\udc4d \u202eevil <b> a\u0000b \ud800"`},
		"text bad utf8":         {func(_, _, _, _, text, _ *string) *string { return text }, "\"a\xffb\""},
		"text empty":            {func(_, _, _, _, text, _ *string) *string { return text }, `""`},
		"text null":             {func(_, _, _, _, text, _ *string) *string { return text }, `null`},
		"ts 1e400":              {func(_, _, _, ts, _, _ *string) *string { return ts }, `1e400`},
		"ts 400 digits":         {func(_, _, _, ts, _, _ *string) *string { return ts }, strings.Repeat("9", 400)},
		"ts huge exponent":      {func(_, _, _, ts, _, _ *string) *string { return ts }, `1e100000000`},
		"ts negative":           {func(_, _, _, ts, _, _ *string) *string { return ts }, `-1`},
		"ts zero":               {func(_, _, _, ts, _, _ *string) *string { return ts }, `0`},
		"ts minus zero":         {func(_, _, _, ts, _, _ *string) *string { return ts }, `-0.0e5`},
		"ts tiny":               {func(_, _, _, ts, _, _ *string) *string { return ts }, `1e-400`},
		"ts fraction":           {func(_, _, _, ts, _, _ *string) *string { return ts }, `1614183929.25`},
		"ts millis":             {func(_, _, _, ts, _, _ *string) *string { return ts }, `1614183929000`},
		"ts beyond 9999":        {func(_, _, _, ts, _, _ *string) *string { return ts }, `253402300800000`},
		"ts year 10000":         {func(_, _, _, ts, _, _ *string) *string { return ts }, `"10000-01-01T00:00:00Z"`},
		"ts February 30":        {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-30T00:00:00Z"`},
		"ts month 13":           {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-13-24T16:25:29Z"`},
		"ts yesterday":          {func(_, _, _, ts, _, _ *string) *string { return ts }, `"yesterday"`},
		"ts wire":               {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-24T16:25:29+0000"`},
		"ts spaced":             {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-24 18:25:29.5 +0200"`},
		"ts spaced colon":       {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-24 18:25:29 +02:00"`},
		"ts offset":             {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-24T18:25:29.123+02:00"`},
		"ts hour 24":            {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-24T24:00:00Z"`},
		"ts lower z":            {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-24T16:25:29z"`},
		"ts trailing newline":   {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-24T16:25:29Z\n"`},
		"ts offset 99":          {func(_, _, _, ts, _, _ *string) *string { return ts }, `"2021-02-24T16:25:29+9999"`},
		"ts bool":               {func(_, _, _, ts, _, _ *string) *string { return ts }, `true`},
		"ts null":               {func(_, _, _, ts, _, _ *string) *string { return ts }, `null`},
		"attachment":            {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[{"type":"image","size":10}]`},
		"attachments empty":     {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[]`},
		"attachments null":      {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":null`},
		"attachments object":    {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":{}`},
		"attachment not object": {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[1,null,{}]`},
		"size 1e20":             {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[{"size":1e20}]`},
		"size -1":               {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[{"size":-1}]`},
		"size 3.0":              {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[{"size":3.0},{"size":1e2},{"size":-0.0}]`},
		"size 1.5":              {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[{"size":1.5}]`},
		"size max":              {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[{"size":9007199254740991},{"size":9007199254740992}]`},
		"size huge exponent":    {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[{"size":1e100000000}]`},
		"size string":           {func(_, _, _, _, _, extra *string) *string { return extra }, `,"attachments":[{"size":"1"}]`},
		"null parties":          {func(_, _, _, _, _, extra *string) *string { return extra }, `,"sender":null,"recipient":{"full_name":null}`},
		"party array":           {func(_, _, _, _, _, extra *string) *string { return extra }, `,"sender":[]`},
		"permalink number":      {func(_, _, _, _, _, extra *string) *string { return extra }, `,"permalink":1`},
		"direction null":        {func(_, _, _, _, _, extra *string) *string { return extra }, `,"direction":null`},
		"many unknown keys":     {func(_, _, _, _, _, extra *string) *string { return extra }, manyKeys(40, false)},
		"many keys duplicated":  {func(_, _, _, _, _, extra *string) *string { return extra }, manyKeys(40, true)},
	}
	for name, c := range cases {
		corpus[name] = goodEvent(func(ws, chat, id, ts, text, extra *string) { set(c.value)(c.field(ws, chat, id, ts, text, extra)) })
	}
	// The DLQ kinds of processor/dlq_test.go and the shapes of hostile_test.go
	// that goodEvent cannot write.
	good := goodEvent(func(_, _, _, _, _, _ *string) {})
	for name, data := range map[string][]byte{
		"valid":                           good,
		"truncated":                       good[:40],
		"binary garbage":                  {0xff, 0x00, 0xfe, 0x13, 0x37},
		"empty value":                     nil,
		"trailing data":                   append(bytes.Clone(good), " {}"...),
		"byte order mark":                 append([]byte("\xef\xbb\xbf"), good...),
		"root array":                      []byte(`[]`),
		"root null":                       []byte(`null`),
		"root string":                     []byte(`"x"`),
		"empty object":                    []byte(`{}`),
		"duplicate workspace":             []byte(`{"workspace_id":"ws_off","workspace_id":"ws","whatsapp_account":{},"chat":{"chat_id":"c1"},"message":{"message_id":"m1","direction":"sent","timestamp":1614183929,"text":"hi"}}`),
		"chat array":                      []byte(`{"workspace_id":"ws","whatsapp_account":{},"chat":[],"message":{"message_id":"m1","direction":"sent","timestamp":1614183929,"text":"hi"}}`),
		"account null":                    []byte(`{"workspace_id":"ws","whatsapp_account":null,"chat":{"chat_id":"c"},"message":{"message_id":"m1","direction":"sent","timestamp":1}}`),
		"everything missing":              []byte(`{"whatsapp_account":{},"chat":{},"message":{}}`),
		"several errors":                  []byte(`{"whatsapp_account":{},"chat":{"chat_id":""},"message":{"message_id":"\u0000","direction":"x","timestamp":"x","text":5}}`),
		"bad ids and bad calendar":        []byte(`{"workspace_id":"` + strings.Repeat("w", 300) + `","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"` + strings.Repeat("é", 200) + `","direction":"sent","timestamp":"2021-02-30T00:00:00Z"}}`),
		"bad ids":                         []byte(`{"workspace_id":"` + strings.Repeat("w", 300) + `","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"` + strings.Repeat("é", 200) + `","direction":"sent","timestamp":1}}`),
		"syntax error after schema error": []byte(`{"workspace_id":1,"chat":{"chat_id":"c"},"message":{"message_id":"m","direction":"sent","timestamp":1,"text":"a}}`),
	} {
		corpus[name] = data
	}
	for i, data := range eventFuzzSeeds {
		corpus["fuzz seed "+strconv.Itoa(i)] = data
	}
	for _, tt := range jsonCorpus {
		corpus["json "+tt.name] = []byte(tt.in)
	}
	stored, _ := filepath.Glob("testdata/fuzz/*/*")
	for _, f := range stored {
		if data, ok := readFuzzCorpusFile(t, f); ok {
			corpus[f] = data
		}
	}
	return corpus
}

// manyKeys writes n unknown fields to add to an object, the last a repeat of
// the first when dup is set: beyond keySet's small array.
func manyKeys(n int, dup bool) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`,"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i))
	}
	if dup {
		b.WriteString(`,"k0":0`)
	}
	return b.String()
}

// readFuzzCorpusFile reads a file that go test -fuzz stored: a version line and
// one []byte value. Files of other shapes are not inputs of one byte slice.
func readFuzzCorpusFile(t *testing.T, name string) ([]byte, bool) {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		return nil, false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []byte(s), true
}

func TestDecodeEventMatchesSchema(t *testing.T) {
	for name, data := range differentialCorpus(t) {
		t.Run(name, func(t *testing.T) {
			compareWithSchema(t, data)
		})
	}
}

// FuzzDecodeEventMatchesSchema runs DecodeEvent and the validator on any input:
// same verdict, same error, same Event.
func FuzzDecodeEventMatchesSchema(f *testing.F) {
	for _, data := range eventFuzzSeeds {
		f.Add(data)
	}
	f.Add(goodEvent(func(_, _, _, _, _, extra *string) {
		*extra = `,"attachments":[{"type":"image","size":1e2,"url":null}],"permalink":"p","sender":{"phone":"+1"}`
	}))
	f.Add(goodEvent(func(_, _, _, ts, _, _ *string) { *ts = `"2021-02-24 18:25:29.5 +0200"` }))
	f.Fuzz(func(t *testing.T, data []byte) {
		compareWithSchema(t, data)
	})
}

// TestEventDecoderReadsTheSchemaFile: the limits and the pattern eventDecoder
// checks are the ones the schema file states.
func TestEventDecoderReadsTheSchemaFile(t *testing.T) {
	raw, err := schemaFiles.ReadFile("json/" + SchemaEvent + ".schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs struct {
			ID         struct{ MaxLength int }
			Timestamp  struct{ Pattern string }
			Attachment struct {
				Properties struct{ Size struct{ Maximum int64 } }
			}
			Message struct {
				Properties struct{ Text struct{ MaxLength int } }
			}
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema.Defs
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"id maxLength", maxIDChars, defs.ID.MaxLength},
		{"timestamp pattern", eventTimestampPattern, defs.Timestamp.Pattern},
		{"attachment size maximum", int64(maxSafeInteger), defs.Attachment.Properties.Size.Maximum},
		{"text maxLength", maxTextChars, defs.Message.Properties.Text.MaxLength},
	} {
		if c.got != c.want {
			t.Errorf("%s: eventDecoder has %v, the schema file %v", c.name, c.got, c.want)
		}
	}
}

// TestEventTimestampShape holds isEventTimestampShape to the schema's pattern.
func TestEventTimestampShape(t *testing.T) {
	pattern := regexp.MustCompile(eventTimestampPattern)
	for _, s := range []string{
		"2021-02-24T16:25:29Z", "2021-02-24T16:25:29+0000", "2021-02-24T16:25:29+00:00", "2021-02-24T16:25:29-0530",
		"2021-02-24T16:25:29.123456789Z", "2021-02-24 16:25:29 +0000", "2021-02-24 16:25:29.5 -0100",
		"", "2021-02-24", "2021-02-24T16:25:29", "2021-02-24T16:25:29.Z", "2021-02-24T16:25:29+00:0", "2021-02-24T16:25:29+000",
		"2021-02-24T16:25:29+00:000", "2021-02-24 16:25:29 +00:00", "2021-02-24 16:25:29Z", "2021-02-24T16:25:29 +0000",
		"2021-02-24t16:25:29Z", "2021-02-24T16:25:29z", "202a-02-24T16:25:29Z", "2021-02-24T16:25:29Z\n", " 2021-02-24T16:25:29Z",
		"2021-02-24T16:25:29ZZ", "2021-02-24T16:25:29+0000x", "2021/02/24T16:25:29Z", "2021-02-24T16-25-29Z", "٢٠٢١-02-24T16:25:29Z",
		"2021-02-24 16:25:29 0000", "2021-02-24T16:25:29.5+02:00",
	} {
		if got, want := isEventTimestampShape(s), pattern.MatchString(s); got != want {
			t.Errorf("isEventTimestampShape(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}

// TestDecodeEventRefusesDuplicateKeys: with two values for one key, a producer
// and outbound could read different events from the same record.
func TestDecodeEventRefusesDuplicateKeys(t *testing.T) {
	for _, data := range []string{
		`{"workspace_id":"a","workspace_id":"b","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"m","direction":"sent","timestamp":1}}`,
		`{"workspace_id":"a","whatsapp_account":{},"chat":{"chat_id":"c"},"message":{"message_id":"m","direction":"sent","timestamp":1,"x":{"y":1,"y":1}}}`,
		string(goodEvent(func(_, _, _, _, _, extra *string) { *extra = manyKeys(40, true) })),
	} {
		_, err := DecodeEvent([]byte(data))
		checkWireError(t, err, ErrInvalidJSON, "decoding event: invalid JSON: duplicate object key at offset ")
	}
}

// hasDuplicateKey reports whether some object in data, which must be valid JSON,
// has a key twice; encoding/json's tokens tell keys from values.
func hasDuplicateKey(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys     map[string]bool
		isObject bool
		wantKey  bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := len(stack) - 1
		if delim, ok := tok.(json.Delim); ok && (delim == '}' || delim == ']') {
			stack = stack[:top]
			if top > 0 && stack[top-1].isObject {
				stack[top-1].wantKey = true
			}
			continue
		}
		if top >= 0 && stack[top].isObject && stack[top].wantKey {
			key := tok.(string)
			if stack[top].keys[key] {
				return true
			}
			stack[top].keys[key] = true
			stack[top].wantKey = false
			continue
		}
		if delim, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{keys: map[string]bool{}, isObject: delim == '{', wantKey: delim == '{'})
			continue
		}
		if top >= 0 && stack[top].isObject {
			stack[top].wantKey = true
		}
	}
}

// eventFromDoc builds an Event from a generic document the validator has
// accepted: the reference value DecodeEvent must give. It reads exactly the keys
// the schema checked; absent and null fields become zero values.
func eventFromDoc(doc any) (Event, error) {
	root, _ := doc.(map[string]any)
	account := object(root, "whatsapp_account")
	chat := object(root, "chat")
	msg := object(root, "message")
	ev := Event{
		WorkspaceID: str(root, "workspace_id"),
		WhatsAppAccount: Account{
			FullName: str(account, "full_name"),
			Email:    str(account, "email"),
			Phone:    str(account, "phone"),
		},
		Chat: Chat{
			FullName:         str(chat, "full_name"),
			ResponsibleName:  str(chat, "responsible_name"),
			ResponsibleEmail: str(chat, "responsible_email"),
			ChatURL:          str(chat, "chat_url"),
			ChatID:           str(chat, "chat_id"),
			IsNewChat:        boolean(chat, "is_new_chat"),
			IsGroup:          boolean(chat, "is_group"),
			Phone:            str(chat, "phone"),
		},
		Message: EventMessage{
			MessageID: str(msg, "message_id"),
			Direction: str(msg, "direction"),
			Sender:    party(object(msg, "sender")),
			Recipient: party(object(msg, "recipient")),
			Text:      str(msg, "text"),
			Permalink: str(msg, "permalink"),
		},
	}
	ts, err := ParseTimestamp(msg["timestamp"])
	if err != nil {
		return Event{}, err
	}
	ev.Message.Timestamp = Timestamp{ts}
	if list, ok := msg["attachments"].([]any); ok {
		ev.Message.Attachments = make([]Attachment, len(list))
		for i, item := range list {
			a, _ := item.(map[string]any)
			ev.Message.Attachments[i] = Attachment{
				Type:     str(a, "type"),
				Filename: str(a, "filename"),
				Mimetype: str(a, "mimetype"),
				Size:     integer(a, "size"),
				URL:      str(a, "url"),
			}
		}
	}
	return ev, nil
}

func party(m map[string]any) Party {
	return Party{FullName: str(m, "full_name"), Phone: str(m, "phone")}
}

func object(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

func boolean(m map[string]any, key string) bool {
	v, _ := m[key].(bool)
	return v
}

package schemas

import (
	"cmp"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/outbound-webhooks/outbound/internal/ctrlchar"
)

// eventDecoder reads a chat.message.v1 event straight into an Event in one pass
// over the input: no generic tree, no validator. Each field is held, as it is
// read, to the rule chat.message.v1.schema.json states for it, with the
// validator's words for what is wrong. The schema file stays the contract:
// TestDecodeEventMatchesSchema and FuzzDecodeEventMatchesSchema run the
// validator beside this decoder and require the same verdict, error and value,
// and TestEventDecoderReadsTheSchemaFile its limits and pattern.
//
// Syntax errors (and duplicate keys) stop the decoding and are ErrInvalidJSON,
// with the same message the generic parser gives; schema violations are
// collected, so that the error names every failing field, as the validator's does.
type eventDecoder struct {
	jsonParser
	errs    []fieldError
	badTime error // a timestamp that has the schema's shape but is no instant
}

// DecodeEvent checks data against chat.message.v1 and decodes it, in one pass
// with no generic tree (see eventDecoder). Errors wrap ErrInvalidJSON or
// ErrSchema, name the failing fields by path ("message.direction: value must be
// one of \"sent\", \"received\""), are one line and at most MaxErrorLen bytes.
// The returned Event's timestamp is in UTC.
func DecodeEvent(data []byte) (Event, error) {
	d := eventDecoder{jsonParser: jsonParser{s: string(data)}}
	var ev Event
	d.skipSpace()
	err := d.root(&ev)
	if err == nil {
		d.skipSpace()
		if d.i < len(d.s) {
			err = d.syntaxError("after top-level value")
		}
	}
	if err != nil {
		return Event{}, newWireError(ErrInvalidJSON, err, "decoding event: "+ErrInvalidJSON.Error()+": "+err.Error())
	}
	// In the order of the validator path: the schema's rules, then the
	// calendar (only a timestamp that has the schema's shape gets there), then
	// CheckID. The differential tests compare the messages too.
	const what = "event"
	if len(d.errs) > 0 {
		return Event{}, newWireError(ErrSchema, nil, "validating "+what+": "+ErrSchema.Error()+": "+renderFieldErrors(d.errs))
	}
	if d.badTime != nil {
		return Event{}, badInstant(what, "message.timestamp", d.badTime)
	}
	if err := checkEventIDs(ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// checkEventIDs holds the ids of a decoded event to CheckID.
func checkEventIDs(ev Event) error {
	return checkIDs("event",
		idField{"workspace_id", ev.WorkspaceID},
		idField{"chat.chat_id", ev.Chat.ChatID},
		idField{"message.message_id", ev.Message.MessageID},
	)
}

// Words of the validator (see kindMessage) for the rules checked here.
const (
	missingMessage       = "missing required field"
	emptyMessage         = "must not be empty"
	wantPositive         = "must be > 0"
	wantNonNegative      = "must be >= 0"
	wantAtMostMaxSafeInt = "must be <= 9007199254740991"
)

// The limits and the timestamp pattern of chat.message.v1.schema.json.
const (
	maxTextChars          = 65536
	maxIDChars            = 256
	maxSafeInteger        = 1<<53 - 1
	eventTimestampPattern = `^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2})| [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)? [+-][0-9]{4})$`
)

var directionMessage = "value must be " + oneOf([]any{DirectionSent, DirectionReceived})

func (d *eventDecoder) fail(path, msg string) {
	d.errs = append(d.errs, fieldError{path, msg})
}

// kindAt names the JSON type of the value at d.i as the validator does, or ""
// when no value starts there (d.value then reports the syntax error).
func (d *eventDecoder) kindAt() string {
	if d.i >= len(d.s) {
		return ""
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return ""
}

// mismatch reports that the value at d.i is not of the types want lists, then
// skips it (still checking its syntax).
func (d *eventDecoder) mismatch(path, want string) error {
	if got := d.kindAt(); got != "" {
		d.fail(path, typeMessage(got, want))
	}
	_, err := d.value()
	return err
}

// skip reads a value no rule applies to: an unknown field, or a null.
func (d *eventDecoder) skip() error {
	_, err := d.value()
	return err
}

// keySet holds the keys of one object. An event's objects have a handful of
// keys, compared in a small array; a map takes over beyond that, so that a
// hostile object of many keys costs linear time.
type keySet struct {
	few  [12]string
	n    int
	many map[string]struct{}
}

// add reports whether key is new, and remembers it.
func (s *keySet) add(key string) bool {
	if s.many == nil {
		for _, k := range s.few[:s.n] {
			if k == key {
				return false
			}
		}
		if s.n < len(s.few) {
			s.few[s.n] = key
			s.n++
			return true
		}
		s.many = make(map[string]struct{}, 2*len(s.few))
		for _, k := range s.few {
			s.many[k] = struct{}{}
		}
	}
	if _, dup := s.many[key]; dup {
		return false
	}
	s.many[key] = struct{}{}
	return true
}

// A field is a key of one of the event's objects and where its value goes:
// into detail when it is a free-form string that may be null (most are), else
// by read. read gets the object's path and the key, so that a value's own path
// is built only when the value is at fault; a value at a fixed path (the
// message's, chat_id) is given that path as a constant instead.
type field struct {
	key      string
	required bool
	detail   *string
	read     func(parent, key string) error
}

// fields reads the object at d.i, found at path, by the table of its known
// keys: other keys are skipped, and each required key it lacks is reported.
// With nullable, a null may stand in its place.
func (d *eventDecoder) fields(path string, nullable bool, fs []field) error {
	switch kind := d.kindAt(); {
	case kind == "object":
	case nullable && kind == "null":
		return d.skip()
	case nullable:
		return d.mismatch(path, "null or object")
	default:
		return d.mismatch(path, "object")
	}
	seen, err := d.members(path, fs)
	for i := range fs {
		if seen&(1<<i) == 0 && fs[i].required {
			// A clone of the key, so that the table does not escape to the
			// heap with it: escape analysis does not tell a struct's fields
			// apart, and the table's closures would go along.
			d.fail(childPath(path, strings.Clone(fs[i].key)), missingMessage)
		}
	}
	return err
}

// members reads the members of the object at d.i: a key of fs by its read,
// any other key skipped. Bit i of seen tells whether fs[i]'s key was there.
// A key seen twice is a syntax error.
func (d *eventDecoder) members(path string, fs []field) (seen uint64, err error) {
	empty, err := d.open('}')
	if err != nil || empty {
		return 0, err
	}
	var others keySet // the keys not in fs
	next := 0         // where find starts: keys tend to come in the table's order
	for {
		keyAt := d.i
		key, err := d.key()
		if err != nil {
			return seen, err
		}
		switch i := find(fs, key, next); {
		case i >= 0 && seen&(1<<i) != 0, i < 0 && !others.add(key):
			return seen, duplicateKey(keyAt)
		case i < 0:
			err = d.skip()
		default:
			seen |= 1 << i
			next = i + 1
			if fs[i].detail != nil {
				err = d.detail(path, key, fs[i].detail)
			} else {
				err = fs[i].read(path, key)
			}
		}
		if err != nil {
			return seen, err
		}
		more, err := d.more('}', "after object key:value pair")
		if err != nil || !more {
			return seen, err
		}
	}
}

// find returns the index of key in fs, or -1. It looks from start on, and
// then from the beginning.
func find(fs []field, key string, start int) int {
	for j := range fs {
		i := start + j
		if i >= len(fs) {
			i -= len(fs)
		}
		if fs[i].key == key {
			return i
		}
	}
	return -1
}

func (d *eventDecoder) root(ev *Event) error {
	return d.fields(rootPath, false, []field{
		{key: "workspace_id", required: true, read: func(_, k string) error { return d.id(k, &ev.WorkspaceID) }},
		{key: "whatsapp_account", required: true, read: func(_, k string) error { return d.account(k, &ev.WhatsAppAccount) }},
		{key: "chat", required: true, read: func(_, k string) error { return d.chat(k, &ev.Chat) }},
		{key: "message", required: true, read: func(_, k string) error { return d.message(k, &ev.Message) }},
	})
}

func (d *eventDecoder) account(path string, a *Account) error {
	return d.fields(path, false, []field{
		{key: "full_name", detail: &a.FullName},
		{key: "email", detail: &a.Email},
		{key: "phone", detail: &a.Phone},
	})
}

func (d *eventDecoder) chat(path string, c *Chat) error {
	return d.fields(path, false, []field{
		{key: "chat_id", required: true, read: func(string, string) error { return d.id("chat.chat_id", &c.ChatID) }},
		{key: "full_name", detail: &c.FullName},
		{key: "responsible_name", detail: &c.ResponsibleName},
		{key: "responsible_email", detail: &c.ResponsibleEmail},
		{key: "chat_url", detail: &c.ChatURL},
		{key: "is_new_chat", read: func(p, k string) error { return d.flag(p, k, &c.IsNewChat) }},
		{key: "is_group", read: func(p, k string) error { return d.flag(p, k, &c.IsGroup) }},
		{key: "phone", detail: &c.Phone},
	})
}

// message reads the event's message: its fields are at fixed paths.
func (d *eventDecoder) message(path string, m *EventMessage) error {
	return d.fields(path, false, []field{
		{key: "message_id", required: true, read: func(string, string) error { return d.id("message.message_id", &m.MessageID) }},
		{key: "direction", required: true, read: func(string, string) error { return d.direction("message.direction", &m.Direction) }},
		{key: "timestamp", required: true, read: func(string, string) error { return d.timestamp("message.timestamp", &m.Timestamp) }},
		{key: "sender", read: func(string, string) error { return d.party("message.sender", &m.Sender) }},
		{key: "recipient", read: func(string, string) error { return d.party("message.recipient", &m.Recipient) }},
		{key: "text", read: func(p, k string) error { return d.text(p, k, &m.Text) }},
		{key: "attachments", read: func(string, string) error { return d.attachments("message.attachments", &m.Attachments) }},
		{key: "permalink", detail: &m.Permalink},
	})
}

func (d *eventDecoder) party(path string, p *Party) error {
	return d.fields(path, true, []field{
		{key: "full_name", detail: &p.FullName},
		{key: "phone", detail: &p.Phone},
	})
}

func (d *eventDecoder) attachments(path string, list *[]Attachment) error {
	switch d.kindAt() {
	case "null":
		return d.skip()
	case "array":
	default:
		return d.mismatch(path, "null or array")
	}
	*list = []Attachment{}
	empty, err := d.open(']')
	if err != nil || empty {
		return err
	}
	for {
		*list = append(*list, Attachment{})
		if err := d.attachment(path+"["+strconv.Itoa(len(*list)-1)+"]", &(*list)[len(*list)-1]); err != nil {
			return err
		}
		more, err := d.more(']', "after array element")
		if err != nil || !more {
			return err
		}
	}
}

func (d *eventDecoder) attachment(path string, a *Attachment) error {
	return d.fields(path, false, []field{
		{key: "type", detail: &a.Type},
		{key: "filename", detail: &a.Filename},
		{key: "mimetype", detail: &a.Mimetype},
		{key: "size", read: func(p, k string) error { return d.size(p, k, &a.Size) }},
		{key: "url", detail: &a.URL},
	})
}

// detail reads a free-form string that may be null.
func (d *eventDecoder) detail(parent, key string, dst *string) error {
	switch d.kindAt() {
	case "string":
		s, err := d.str()
		*dst = s
		return err
	case "null":
		return d.skip()
	}
	return d.mismatch(childPath(parent, key), "null or string")
}

// flag reads a boolean that may be null.
func (d *eventDecoder) flag(parent, key string, dst *bool) error {
	switch d.kindAt() {
	case "boolean":
		*dst = d.s[d.i] == 't' // skip checks the rest of true or false
	case "null":
	default:
		return d.mismatch(childPath(parent, key), "null or boolean")
	}
	return d.skip()
}

// id reads an identifier by the schema's "id" definition: 1 to 256 characters,
// none a control character or U+FFFD (DecodeEvent then applies CheckID).
func (d *eventDecoder) id(path string, dst *string) error {
	if d.kindAt() != "string" {
		return d.mismatch(path, "string")
	}
	s, err := d.str()
	if err != nil {
		return err
	}
	if s == "" {
		d.fail(path, emptyMessage)
	}
	if msg, ok := tooLong(s, maxIDChars); ok {
		d.fail(path, msg)
	}
	if ctrlchar.Contains(s) || strings.ContainsRune(s, utf8.RuneError) {
		d.fail(path, idCharsMessage)
	}
	*dst = s
	return nil
}

// tooLong says what is wrong with s when it has more than max code points.
func tooLong(s string, max int) (string, bool) {
	if len(s) <= max { // no more bytes than max, so no more code points
		return "", false
	}
	if n := utf8.RuneCountInString(s); n > max {
		return tooLongMessage(n, max), true
	}
	return "", false
}

func (d *eventDecoder) direction(path string, dst *string) error {
	if d.kindAt() == "string" {
		s, err := d.str()
		if err != nil {
			return err
		}
		if s == DirectionSent || s == DirectionReceived {
			*dst = s
		} else {
			d.fail(path, directionMessage)
		}
		return nil
	}
	// An enum refuses any other type with the same words.
	if d.kindAt() != "" {
		d.fail(path, directionMessage)
	}
	return d.skip()
}

// text reads message.text: a detail of at most maxTextChars code points.
func (d *eventDecoder) text(parent, key string, dst *string) error {
	err := d.detail(parent, key, dst)
	if msg, ok := tooLong(*dst, maxTextChars); ok {
		d.fail(childPath(parent, key), msg)
	}
	return err
}

// timestamp reads message.timestamp: a string of the schema's pattern or a
// number > 0, which ParseTimestamp must then accept (the pattern lets a month 13
// through, and a number can be beyond year 9999).
func (d *eventDecoder) timestamp(path string, dst *Timestamp) error {
	var err error
	switch d.kindAt() {
	case "string":
		s, serr := d.str()
		if serr != nil {
			return serr
		}
		if !isEventTimestampShape(s) {
			d.fail(path, patternMessages[eventTimestampPattern])
			return nil
		}
		dst.Time, err = parseTimestampString(s)
	case "number":
		lit, nerr := d.number()
		if nerr != nil {
			return nerr
		}
		if !positive(lit) {
			d.fail(path, wantPositive)
			return nil
		}
		dst.Time, err = parseEpochLiteral(lit)
	default:
		return d.mismatch(path, "number or string")
	}
	if err != nil {
		d.badTime = err
	}
	return nil
}

// positive reports whether a JSON number literal is above zero: no minus sign,
// and a non-zero digit before the exponent.
func positive(lit string) bool {
	if lit[0] == '-' {
		return false
	}
	for i := 0; i < len(lit) && lit[i] != 'e' && lit[i] != 'E'; i++ {
		if lit[i] >= '1' && lit[i] <= '9' {
			return true
		}
	}
	return false
}

// isEventTimestampShape reports whether s matches eventTimestampPattern:
// YYYY-MM-DD, then Thh:mm:ss[.f] and Z, ±hh:mm or ±hhmm, or " hh:mm:ss[.f] ±hhmm".
func isEventTimestampShape(s string) bool {
	digits := func(from, n int) bool {
		if from+n > len(s) {
			return false
		}
		for _, c := range []byte(s[from : from+n]) {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	is := func(at int, c byte) bool { return at < len(s) && s[at] == c }
	if !digits(0, 4) || !is(4, '-') || !digits(5, 2) || !is(7, '-') || !digits(8, 2) ||
		!(is(10, 'T') || is(10, ' ')) ||
		!digits(11, 2) || !is(13, ':') || !digits(14, 2) || !is(16, ':') || !digits(17, 2) {
		return false
	}
	i := 19
	if is(i, '.') {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if s[10] == ' ' {
		return len(s) == i+6 && is(i, ' ') && (is(i+1, '+') || is(i+1, '-')) && digits(i+2, 4)
	}
	switch {
	case len(s) == i+1:
		return is(i, 'Z')
	case !is(i, '+') && !is(i, '-'):
		return false
	case len(s) == i+5:
		return digits(i+1, 4)
	case len(s) == i+6:
		return digits(i+1, 2) && is(i+3, ':') && digits(i+4, 2)
	}
	return false
}

// size reads an attachment size: an integer from 0 to 2^53-1, or null. The
// validator counts 3.0 and 3e2 as integers, and so does this.
func (d *eventDecoder) size(parent, key string, dst *int64) error {
	switch d.kindAt() {
	case "number":
	case "null":
		return d.skip()
	default:
		return d.mismatch(childPath(parent, key), "null or integer")
	}
	lit, err := d.number()
	if err != nil {
		return err
	}
	sign, inRange := 0, false
	if n, perr := strconv.ParseInt(lit, 10, 64); perr == nil {
		sign, inRange = cmp.Compare(n, 0), n <= maxSafeInteger
		*dst = n
	} else if r, ok := new(big.Rat).SetString(lit); ok && r.IsInt() {
		sign, inRange = r.Sign(), r.Cmp(big.NewRat(maxSafeInteger, 1)) <= 0
		*dst = r.Num().Int64()
	} else {
		d.fail(childPath(parent, key), typeMessage("number", "null or integer"))
		return nil
	}
	if sign < 0 {
		d.fail(childPath(parent, key), wantNonNegative)
	}
	if !inRange {
		d.fail(childPath(parent, key), wantAtMostMaxSafeInt)
	}
	return nil
}

package schemas

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/outbound-webhooks/outbound/internal/ctrlchar"
)

// MaxIDBytes bounds every identifier from outside: workspace, chat and message
// ids of events, and the workspace_id and id of control messages. Ids become
// parts of Redis keys, hash fields and Kafka keys, so an unbounded one would make
// every key that holds it as large as the attacker likes.
const MaxIDBytes = 256

// idCharsMessage says what the id pattern of the schema files refuses; the
// schema's error and CheckID's use the same words.
const idCharsMessage = "must not contain control characters (U+0000-U+001F, U+007F-U+009F) or U+FFFD"

// CheckID is the one rule for identifiers from outside: non-empty, valid UTF-8, at
// most MaxIDBytes bytes, free of control characters and of U+FFFD. The schema files'
// "id" definitions state the same rule as far as JSON Schema can (a code-point
// maxLength and a pattern); DecodeEvent and DecodeControl apply this function on
// top, so the byte bound holds too.
//
// Why each part:
//   - control characters delimit the stages' Redis keys (\x1f joins a workspace
//     and a chat) and start the reserved fields of a window hash (\x00d, \x00a,
//     \x00n), so a valid id can never collide with either;
//   - U+FFFD is what invalid UTF-8 in a JSON string decodes to: two different
//     malformed ids would otherwise become one id.
//
// The error never quotes the id: it may be huge or hold anything.
func CheckID(id string) error {
	switch {
	case id == "":
		return errors.New("must not be empty")
	case len(id) > MaxIDBytes:
		return fmt.Errorf("too long: %d bytes, want at most %d", len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return errors.New("must be valid UTF-8")
	case ctrlchar.Contains(id) || strings.ContainsRune(id, utf8.RuneError):
		return errors.New(idCharsMessage)
	}
	return nil
}

// idField is an identifier of a decoded message and its path in the document.
type idField struct{ path, value string }

// checkIDs applies CheckID to the ids a decoder read; a failure is an ErrSchema
// error that names every bad field, like a schema violation.
func checkIDs(what string, fields ...idField) error {
	var bad []string
	for _, f := range fields {
		if err := CheckID(f.value); err != nil {
			bad = append(bad, f.path+": "+err.Error())
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return newWireError(ErrSchema, nil, "validating "+what+": "+ErrSchema.Error()+": "+strings.Join(bad, "; "))
}

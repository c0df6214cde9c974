package ctrlchar

import (
	"strings"
	"unicode"
)

// Contains reports whether s holds a control character.
func Contains(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

// ToSpace returns s with every control character replaced by a space, so that a
// value from outside cannot break a log line, a header or a message in two.
func ToSpace(s string) string {
	if !Contains(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// Package clip shortens strings that go into bounded places (error messages,
// Kafka headers) without splitting a character.
package clip

import "unicode/utf8"

// Mark ends a string that String cut.
const Mark = "…"

// String cuts s to at most n bytes, on a rune boundary, ending with Mark when
// it cut.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len(Mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Mark
}

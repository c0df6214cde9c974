package ctrlchar_test

import (
	"testing"

	"github.com/outbound-webhooks/outbound/internal/ctrlchar"
)

func TestControlCharacters(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		contains bool
		spaced   string
	}{
		{name: "plain text", in: "ws_1 café", contains: false, spaced: "ws_1 café"},
		{name: "empty", in: "", contains: false, spaced: ""},
		{name: "newline", in: "a\nb", contains: true, spaced: "a b"},
		{name: "carriage return and tab", in: "a\r\tb", contains: true, spaced: "a  b"},
		{name: "NUL", in: "a\x00", contains: true, spaced: "a "},
		{name: "unit separator", in: "ws\x1fchat", contains: true, spaced: "ws chat"},
		{name: "DEL", in: "a\x7f", contains: true, spaced: "a "},
		{name: "C1 next line", in: "a\u0085b", contains: true, spaced: "a b"},
		{name: "right-to-left text is not control", in: "שלום", contains: false, spaced: "שלום"},
		{name: "invalid UTF-8 is not control", in: "a\xffb", contains: false, spaced: "a\xffb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ctrlchar.Contains(tc.in); got != tc.contains {
				t.Errorf("Contains(%q) = %v, want %v", tc.in, got, tc.contains)
			}
			if got := ctrlchar.ToSpace(tc.in); got != tc.spaced {
				t.Errorf("ToSpace(%q) = %q, want %q", tc.in, got, tc.spaced)
			}
		})
	}
}

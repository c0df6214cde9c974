package webhook

import "testing"

func TestParseGranularity(t *testing.T) {
	for _, g := range []string{"none", "1h", "6h", "12h", "24h"} {
		if _, err := ParseGranularity(g); err != nil {
			t.Errorf("ParseGranularity(%q): %v", g, err)
		}
	}
	for _, g := range []string{"", "2h", "1H", "daily"} {
		if _, err := ParseGranularity(g); err == nil {
			t.Errorf("ParseGranularity(%q) accepted an unknown value", g)
		}
	}
}

package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatValue(t *testing.T) {
	for in, want := range map[float64]string{
		0.123: "0.12", 9.876: "9.88", 12.34: "12.3", 123.4: "123",
		1234.5: "1 235", 1234567: "1 234 567", -2500: "-2 500",
	} {
		if got := formatValue(in); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n          int
		what, want string
	}{
		{1, "event", "1 event"},
		{2500, "event", "2 500 events"},
		{3, "subprocess", "3 subprocesses"},
	} {
		if got := plural(tc.n, tc.what); got != tc.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tc.n, tc.what, got, tc.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	l := latencyResult{ms: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	for q, want := range map[float64]float64{0.5: 5, 0.95: 10, 0.99: 10, 1: 10, 0.1: 1} {
		if got := l.quantile(q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
}

// The JSON is read by scripts: every row has a ratio field (null without a
// baseline), and a row is found by its name.
func TestReportJSON(t *testing.T) {
	rep := &Report{Quick: true, Machine: Machine{CPUs: 2}}
	rep.add(row("ingest_windowed", 600, "events/s", "higher", 1000, "plain").target(">= 50%", true).with("a", "", "b"))
	rep.add(row("worker_rss_0", 27, "MB", "lower", 0, "").with("idle"))
	path := filepath.Join(t.TempDir(), "results", "latest.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if r := got.Rows[0]; r["name"] != "ingest_windowed" || r["ratio"] != 0.6 || r["settings"] != "a; b" || r["met"] != true {
		t.Errorf("first row = %v", r)
	}
	if r := got.Rows[1]; r["ratio"] != nil || r["baseline"] != nil {
		t.Errorf("a row without baseline has ratio %v and baseline %v, want null", r["ratio"], r["baseline"])
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| ingest_windowed | 600 | events/s | 1 000 (plain) | 0.60 | >= 50%: met | a; b |", "| worker_rss_0 | 27.0 | MB | – | – | – | idle |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, md.String())
		}
	}
}

// The ingest rows report the round whose ratio is the median, as it ran: the
// medians of each side would pair a plain run with a windowed run of another
// moment (here 81 000 / 88 000, 0.92, a ratio no round had).
func TestIngestRowsReportTheRoundOfMedianRatio(t *testing.T) {
	plains := []ingestResult{{rate: 80000}, {rate: 88000}, {rate: 93000}}
	wins := []ingestResult{{rate: 81000}, {rate: 62000}, {rate: 85000}}
	if got := medianPair(plains, wins); got != 2 {
		t.Fatalf("round %d, want 3 (ratios 1.01, 0.70, 0.91)", got+1)
	}
	if got, want := roundsNote("windowed", plains, wins), "(plain / windowed events/s): 80 000 / 81 000 (1.01), 88 000 / 62 000 (0.70), 93 000 / 85 000 (0.91)"; !strings.HasSuffix(got, want) {
		t.Fatalf("rounds note %q, want it to end with %q", got, want)
	}
}

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Row is one figure. Names are stable across runs and modes (--quick keeps the
// names and says its smaller counts in Settings), so scripts can follow them:
//
//	jq '.rows[] | select(.name=="ingest_windowed") | .ratio' bench/results/latest.json
type Row struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Baseline is the figure that bounds Value, measured in the same run; nil
	// when the row has none.
	Baseline *float64 `json:"baseline"`
	// BaselineName says what the baseline is.
	BaselineName string `json:"baseline_name,omitempty"`
	// Ratio is Value / Baseline.
	Ratio *float64 `json:"ratio"`
	// Better is "higher" or "lower": which way Value and Ratio improve.
	Better string `json:"better"`
	// Target is the goal in words, Met whether this run reached it (nil when
	// the row has no goal).
	Target   string `json:"target,omitempty"`
	Met      *bool  `json:"met"`
	Settings string `json:"settings"`
}

// Report is one run.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	Seconds   float64   `json:"seconds"`
	Quick     bool      `json:"quick"`
	Machine   Machine   `json:"machine"`
	Rows      []Row     `json:"rows"`
	// Failures are phases that could not be measured; their rows are missing.
	Failures []string `json:"failures,omitempty"`
}

func (r *Report) add(row Row) { r.Rows = append(r.Rows, row) }

// row builds a Row; baseline <= 0 means none.
func row(name string, value float64, unit, better string, baseline float64, baselineName string) Row {
	r := Row{Name: name, Value: value, Unit: unit, Better: better}
	if baseline > 0 {
		ratio := value / baseline
		r.Baseline, r.BaselineName, r.Ratio = &baseline, baselineName, &ratio
	}
	return r
}

// target sets the row's goal.
func (r Row) target(goal string, met bool) Row {
	r.Target, r.Met = goal, &met
	return r
}

func (r Row) with(settings ...string) Row {
	r.Settings = strings.Join(nonEmpty(settings), "; ")
	return r
}

func nonEmpty(ss []string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// WriteJSON writes the report to path, creating its directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating the results directory: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// WriteMarkdown writes the machine line and the table.
func (r *Report) WriteMarkdown(w io.Writer) error {
	m := r.Machine
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(w, "Run %s (%s mode, %s): %d CPUs (%s), %d MB memory, Linux %s, %s; load average %.2f %.2f %.2f before, %.2f %.2f %.2f after.\n\n",
		r.StartedAt.UTC().Format(time.RFC3339), mode, (time.Duration(r.Seconds) * time.Second).String(),
		m.CPUs, m.CPUModel, m.MemoryMB, m.Kernel, m.GoVersion,
		m.LoadBefore[0], m.LoadBefore[1], m.LoadBefore[2], m.LoadAfter[0], m.LoadAfter[1], m.LoadAfter[2])
	fmt.Fprintln(w, "| name | value | unit | baseline | ratio | target | settings |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---|---|")
	for _, x := range r.Rows {
		base, ratio := "–", "–"
		if x.Baseline != nil {
			base = formatValue(*x.Baseline) + " (" + x.BaselineName + ")"
			ratio = strconv.FormatFloat(*x.Ratio, 'f', 2, 64)
		}
		goal := "–"
		if x.Met != nil {
			mark := "met"
			if !*x.Met {
				mark = "MISSED"
			}
			goal = x.Target + ": " + mark
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", x.Name, formatValue(x.Value), x.Unit,
			base, ratio, goal, strings.ReplaceAll(x.Settings, "|", "/"))
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "\nNOT MEASURED: %s\n", f)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// formatValue keeps three significant digits, and whole numbers whole.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return groupThousands(int64(math.Round(v)))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

package console

import (
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// The chart's geometry, in SVG user units; the SVG scales to the page width.
const (
	chartW, chartH = 480, 140
	chartTop       = 10
	chartBottom    = 120 // the baseline; hour labels go below it
	slotW          = float64(chartW) / 24
)

// chart is the last 24 hours of attempts, one slot per hour, oldest first.
type chart struct {
	Slots              []slot
	Deliveries, Errors int
	Max                int
	W, H, Baseline     int
	From, To           time.Time
	Covered            bool // the request log reaches back 24h
	OldestLogged       time.Time
	Summary            string
}

type slot struct {
	X, W                 float64
	OKY, OKH, ErrY, ErrH float64
	Label                string // every 6th hour, else empty
	LabelX               float64
	Title                string
}

// hourly counts the request log's attempts per hour over the 24 hours up to
// now: a 2xx answer is a delivery, anything else an error. The log keeps the
// 100 most recent attempts, so a busy webhook's chart covers less than 24
// hours; Covered says whether it does.
func hourly(reqs []webhooklog.Request, now time.Time) chart {
	to := now.UTC().Truncate(time.Hour).Add(time.Hour)
	ch := chart{W: chartW, H: chartH, Baseline: chartBottom, From: to.Add(-24 * time.Hour), To: to, Covered: true}
	var ok, failed [24]int
	for _, q := range reqs {
		i := int(q.At.Sub(ch.From) / time.Hour)
		if q.At.Before(ch.From) || i >= 24 {
			continue
		}
		if q.Error == "" && q.Response != nil && q.Response.Status/100 == 2 {
			ok[i]++
			ch.Deliveries++
		} else {
			failed[i]++
			ch.Errors++
		}
	}
	if len(reqs) == webhooklog.RequestsSize {
		ch.OldestLogged = reqs[len(reqs)-1].At
		ch.Covered = !ch.OldestLogged.After(ch.From)
	}
	for i := range 24 {
		ch.Max = max(ch.Max, ok[i]+failed[i])
	}
	scale := float64(chartBottom-chartTop) / float64(max(ch.Max, 1))
	for i := range 24 {
		start := ch.From.Add(time.Duration(i) * time.Hour)
		s := slot{X: float64(i)*slotW + 1, W: slotW - 2, LabelX: float64(i)*slotW + slotW/2,
			Title: fmt.Sprintf("%s–%s UTC: %d delivered, %d failed", start.Format("15:04"), start.Add(time.Hour).Format("15:04"), ok[i], failed[i])}
		s.OKH = float64(ok[i]) * scale
		s.OKY = chartBottom - s.OKH
		s.ErrH = float64(failed[i]) * scale
		s.ErrY = s.OKY - s.ErrH
		if start.Hour()%6 == 0 {
			s.Label = start.Format("15h")
		}
		ch.Slots = append(ch.Slots, s)
	}
	ch.Summary = fmt.Sprintf("Last 24 hours: %d deliveries and %d errors, most in one hour %d.", ch.Deliveries, ch.Errors, ch.Max)
	return ch
}

// nextDue says when the next bundle of granularity g goes out: windows are
// aligned to multiples of their length (UTC) and flushed after the grace
// period, spread by a per-chat stagger (windowing's design).
func (c *Console) nextDue(g webhook.Granularity, now time.Time) string {
	length := time.Duration(float64(g.Duration()) / c.cfg.TimeScale)
	if length == 0 {
		return "Messages are not aggregated: each one is sent as soon as the worker has stored it."
	}
	closes := windowing.WindowStart(now, length).Add(length)
	grace := time.Duration(float64(c.cfg.Grace) / c.cfg.TimeScale)
	return fmt.Sprintf("The current %s window closes at %s; its bundles are sent from %s (after the grace period for late messages), spread over a few minutes per chat.",
		g, stamp(closes), stamp(closes.Add(grace)))
}

// stamp is how the page writes an instant.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

var funcs = template.FuncMap{
	"stamp": stamp,
	"headers": func(h map[string][]string) string {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(h)) {
			for _, v := range h[k] {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			}
		}
		return b.String()
	},
	"f":        func(x float64) string { return fmt.Sprintf("%.1f", x) },
	"action":   func(a string) string { return strings.ReplaceAll(a, "_", " ") },
	"describe": webhooklog.Activity.Describe,
}

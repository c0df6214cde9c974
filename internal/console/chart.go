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
)

// chartHours is how many hours the chart draws.
const chartHours = 24

// chart is the last 24 hours of attempts, one slot per hour, oldest first.
type chart struct {
	Slots              []slot
	Deliveries, Errors int
	Max                int
	W, H, Baseline     int
	Summary            string
}

type slot struct {
	X, W                 float64
	OKY, OKH, ErrY, ErrH float64
	Label                string // every 6th hour, else empty
	LabelX               float64
	Title                string
}

// hourly draws the workspace's hourly counts (webhooklog.Log.Hours), which
// hold every attempt however busy the webhook: a 2xx answer is a delivery,
// anything else an error.
func hourly(hours []webhooklog.Hour) chart {
	ch := chart{W: chartW, H: chartH, Baseline: chartBottom}
	for _, h := range hours {
		ch.Deliveries += h.Delivered
		ch.Errors += h.Failed
		ch.Max = max(ch.Max, h.Delivered+h.Failed)
	}
	scale := float64(chartBottom-chartTop) / float64(max(ch.Max, 1))
	slotW := float64(chartW) / float64(len(hours))
	for i, h := range hours {
		s := slot{X: float64(i)*slotW + 1, W: slotW - 2, LabelX: float64(i)*slotW + slotW/2,
			Title: fmt.Sprintf("%s–%s UTC: %d delivered, %d failed", h.Start.Format("15:04"), h.Start.Add(time.Hour).Format("15:04"), h.Delivered, h.Failed)}
		s.OKH = float64(h.Delivered) * scale
		s.OKY = chartBottom - s.OKH
		s.ErrH = float64(h.Failed) * scale
		s.ErrY = s.OKY - s.ErrH
		if h.Start.Hour()%6 == 0 {
			s.Label = h.Start.Format("15h")
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

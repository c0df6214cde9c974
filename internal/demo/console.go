package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// console prints the demo's own output, one event at a time, each stamped
// with the time since the start.
type console struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newConsole(w io.Writer) *console { return &console{w: w, start: time.Now()} }

// line prints a line without a time stamp.
func (c *console) line(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, format+"\n", args...)
}

// event prints a time-stamped line.
func (c *console) event(format string, args ...any) { c.eventWith(nil, format, args...) }

// eventWith prints a time-stamped line with detail lines indented under it, with
// no other output in between.
func (c *console) eventWith(details []string, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "%6.2fs  %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
	for _, l := range details {
		fmt.Fprintf(c.w, "         %s\n", l)
	}
}

// plural is "1 message", "2 messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// clip shortens s to n runes for display.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}

// showSkipped prints the attachments the processor skipped since the last call.
// The processor counts them but does not say which: the generator knows.
func (d *demo) showSkipped() {
	n := d.worker.ProcessorStats().SkippedAttachment.Load()
	d.mu.Lock()
	shown := d.skippedShown
	d.skippedShown = n
	d.mu.Unlock()
	if n > shown {
		d.out.eventWith(d.plan.attachmentNotes(), "skipped %s with an attachment (processor stats: %d in total); only text and emoji are delivered",
			plural(int(n-shown), "message"), n)
	}
}

// showEmails prints the emails not shown yet, each after the auto-disable event
// it is about, so the output reads in causal order; an email whose event does not
// show up within a second is printed anyway, as is every email when all is true.
func (d *demo) showEmails(all bool) {
	d.mu.Lock()
	var show []email
	for _, e := range d.emails[d.emailsShown:] {
		if !all && len(d.autoDisabled) <= d.emailsShown && time.Since(e.at) < time.Second {
			break
		}
		show = append(show, e)
		d.emailsShown++
	}
	d.mu.Unlock()
	for _, m := range show {
		more := []string{"Subject: " + m.Subject, ""}
		lines := strings.Split(strings.TrimSpace(m.Body), "\n")
		for i, l := range lines {
			if i == 6 {
				more = append(more, "...")
				break
			}
			more = append(more, strings.TrimRight(l, "\r"))
		}
		d.out.eventWith(more, "email to %s (caught by the in-process SMTP server, from %s):", strings.Join(m.To, ", "), m.From)
	}
}

// summary prints the totals, checks them against what the generator sent and
// returns what does not match.
func (d *demo) summary() []string {
	sent := d.gen.counts()
	st := d.worker.ProcessorStats()
	sk := d.worker.SinkStats()
	var disabled []string
	for _, w := range d.worker.Webhooks() {
		if !w.Enabled {
			disabled = append(disabled, fmt.Sprintf("%s (%s)", w.Workspace, w.DisabledReason))
		}
	}
	d.mu.Lock()
	emails := len(d.emails)
	d.mu.Unlock()
	bundles, singles := d.recv.counts()

	consumed, skipped, dead := st.Consumed.Load(), st.SkippedAttachment.Load()+st.SkippedNoText.Load(), st.DeadLettered.Load()
	delivered := sk.Delivered.Load()

	d.out.line("")
	d.out.line("Summary")
	d.out.line("  events in          %4d  (published %d)", consumed, sent.Events)
	d.out.line("  deliveries         %4d  (webhook calls answered 2xx)", delivered)
	if d.opts.WebhookURL == "" {
		d.out.line("    bundles          %4d", bundles)
		d.out.line("    single messages  %4d", singles)
	} else {
		d.out.line("    bundles and single messages: counted by your receiver at %s", d.opts.WebhookURL)
	}
	d.out.line("  skipped            %4d  (with an attachment or without text)", skipped)
	d.out.line("  dead-lettered      %4d", dead)
	d.out.line("  disabled webhooks  %4d%s", len(disabled), strings.Join(append([]string{""}, disabled...), "  "))
	d.out.line("  failed attempts    %4d", sk.Failed.Load())
	d.out.line("  owner emails       %4d", emails)
	d.out.line("  worker log         %s", d.logPath)

	var problems []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	check(consumed == int64(sent.Events), "the worker consumed %d events of %d published", consumed, sent.Events)
	check(skipped == int64(sent.Attachments), "%d messages were skipped, %d had an attachment", skipped, sent.Attachments)
	check(dead == int64(sent.Malformed), "%d events were dead-lettered, %d were malformed", dead, sent.Malformed)
	failing := 0
	if sent.ForFailing > 0 {
		failing = len(d.plan.failing())
	}
	check(len(disabled) == failing, "%d webhooks are disabled, %d receivers always fail", len(disabled), failing)
	check(emails == failing, "%d owner emails were sent for %d auto-disabled webhooks", emails, failing)
	if !d.opts.Follow {
		check(delivered >= int64(sent.MinDeliveries()), "%d deliveries, fewer than the %d the traffic needs at least", delivered, sent.MinDeliveries())
	}
	if len(problems) == 0 && !d.opts.Follow {
		d.out.line("")
		d.out.line("Everything the traffic should cause happened. Run `go run ./cmd/outbound-demo --follow` to keep it going,")
		d.out.line("or `go run ./cmd/outbound-demo --webhook-url https://...` to see the deliveries in your own receiver.")
	}
	return problems
}

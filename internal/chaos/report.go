package chaos

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Result is what a run observed.
type Result struct {
	Events      int // produced, valid or not
	Deliverable int // text and emoji events of configured workspaces
	Delivered   int // distinct deliverable messages the receiver got
	Lost        int // deliverable messages never delivered
	// Duplicated counts messages in more than one bundle (distinct
	// webhook-ids), or twice in one.
	Duplicated int
	// Redeliveries counts deliveries of a webhook-id delivered before;
	// ChangedBodies those among them whose body differs from the first.
	Redeliveries, ChangedBodies int
	// OrderViolations counts messages that arrived after a later message of
	// their chat, redeliveries aside.
	OrderViolations int
	// Strangers counts delivered message ids of no deliverable event.
	Strangers int

	Deliveries int // webhook calls answered 200
	Undecoded  int // bodies that were not a payload of the spec
	Faults     []string
	Exits      []string // workers that exited on their own, or not cleanly at the end
	Elapsed    time.Duration

	Findings []string // the first few lost, duplicated or out-of-order messages
}

// Failed says why the run breaks the guarantees, or "" when it does not.
func (r *Result) Failed() string {
	switch {
	case r.Lost > 0:
		return fmt.Sprintf("%d messages lost", r.Lost)
	case r.Duplicated > 0:
		return fmt.Sprintf("%d messages duplicated inside bundles", r.Duplicated)
	case r.OrderViolations > 0:
		return fmt.Sprintf("%d per-chat order violations", r.OrderViolations)
	case r.ChangedBodies > 0:
		return fmt.Sprintf("%d redeliveries changed the body of their webhook-id", r.ChangedBodies)
	case r.Strangers > 0 || r.Undecoded > 0:
		return fmt.Sprintf("%d deliveries of messages never sent, %d undecodable bodies", r.Strangers, r.Undecoded)
	case len(r.Exits) > 0:
		return fmt.Sprintf("%d unexpected worker exits", len(r.Exits))
	}
	return ""
}

// check compares the deliveries, in arrival order, with the plan.
func check(p *plan, deliveries []delivery) *Result {
	res := &Result{Events: len(p.chat), Deliveries: len(deliveries)}
	finding := func(format string, args ...any) {
		if len(res.Findings) < 10 {
			res.Findings = append(res.Findings, fmt.Sprintf(format, args...))
		}
	}
	bodies := map[string][32]byte{} // webhook-id -> body of its first delivery
	count := make([]int, len(p.chat))
	last := map[string]int{} // chat -> the latest event index delivered
	for _, d := range deliveries {
		if body, ok := bodies[d.ID]; ok {
			res.Redeliveries++
			if body != d.body {
				res.ChangedBodies++
				finding("webhook-id %s delivered again with a different body", d.ID)
			}
			continue
		}
		bodies[d.ID] = d.body
		for _, m := range d.Messages {
			i, ok := eventIndex(m)
			if !ok || !p.deliverable(i) || chatID(p.chat[i]) != d.Chat {
				res.Strangers++
				finding("%s delivered in chat %s (webhook-id %s), but no such message was sent", m, d.Chat, d.ID)
				continue
			}
			count[i]++
			if count[i] == 2 {
				finding("%s of %s in a second bundle (webhook-id %s)", m, d.Chat, d.ID)
			}
			if prev, ok := last[d.Chat]; ok && i < prev {
				res.OrderViolations++
				finding("%s of %s arrived after %s (webhook-id %s)", m, d.Chat, messageID(prev), d.ID)
			}
			last[d.Chat] = max(last[d.Chat], i)
		}
	}
	for i, n := range count {
		if !p.deliverable(i) {
			continue
		}
		res.Deliverable++
		switch {
		case n == 0:
			res.Lost++
			finding("%s of %s never delivered", messageID(i), chatID(p.chat[i]))
		case n > 1:
			res.Duplicated++
		}
		if n > 0 {
			res.Delivered++
		}
	}
	return res
}

// Print writes the table, then what the table rests on.
func (r *Result) Print(w io.Writer, cfg Config) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, v int, note string) { fmt.Fprintf(tw, "%s\t%7d\t%s\n", name, v, note) }
	fmt.Fprintln(w)
	row("events in", r.Events, "")
	row("deliverable", r.Deliverable, "text and emoji; attachments, empty texts and invalid JSON are not")
	row("delivered (distinct messages)", r.Delivered, fmt.Sprintf("in %d webhook calls", r.Deliveries))
	row("lost", r.Lost, "must be 0")
	row("duplicated inside bundles", r.Duplicated, "must be 0")
	row("whole-bundle redeliveries", r.Redeliveries, fmt.Sprintf("allowed; %d with a different body (must be 0)", r.ChangedBodies))
	row("per-chat order violations", r.OrderViolations, "must be 0")
	tw.Flush()
	fmt.Fprintf(w, "\n%d workers, %d partitions, %d chats in %d workspaces (none, 1h, 6h, 12h, 24h), load %s at time scale %v, %s in all\n",
		cfg.Workers, cfg.Partitions, cfg.Chats, cfg.Workspaces, cfg.Load, cfg.TimeScale, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "faults (%d):\n", len(r.Faults))
	for _, f := range r.Faults {
		fmt.Fprintf(w, "  - %s\n", f)
	}
	if r.Strangers > 0 || r.Undecoded > 0 {
		fmt.Fprintf(w, "deliveries of messages never sent: %d, undecodable bodies: %d\n", r.Strangers, r.Undecoded)
	}
	for _, e := range r.Exits {
		fmt.Fprintf(w, "worker exit: %s\n", e)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "finding: %s\n", f)
	}
}
